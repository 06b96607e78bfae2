"""paynet bank nodes: commercial banks (issuer and acquirer) and the settlement bank.

Entry points: :func:`bank.app.create_bank_app` and :func:`bank.app.create_settlement_app`.
Audit totals: :mod:`bank.audit`.
"""
