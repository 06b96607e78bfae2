"""The customer's side of a purchase: the client that orders, seals, signs and pays
(:mod:`customer.client`), its cheque books and cheques (:mod:`customer.cheques`),
the whole purchase narrated step by step (:mod:`customer.shop`), and the profile a
client in another language reads (:mod:`customer.profile`). It uses the runtime
core (:mod:`payment`) and the contracts; no node imports it."""
