"""The electronic cheque's cases of the idempotency table.

========================================  ==========  ==========  ===============================
RPC                                       caller      node        effect observed (rules)
========================================  ==========  ==========  ===============================
ChequeService.IssueChequeBook             alice       alfa        one book of 10 serials (1-4)
ChequeService.StopCheque                  alice       alfa        one stop-payment order (1-4)
ChequeService.CloseChequeAccount          a closer    alfa        the cheque account closed (1-4)
ChequeService.DepositCheque               shop        beta        alice's cheque paid once: alice
                                                                  debited, the shop credited (1-4)
SettlementService.SubmitChequePresentments beta       settlement  an entry: alice's cheque paid,
                                                                  window +1 (1-4)
ClearingService.ReceiveChequePresentments settlement  alfa        an entry: alice debited once
                                                                  (1-4)
OrderService.SubmitCheque                 alice       shop        the order paid once by cheque,
                                                                  delivered (1-4)
========================================  ==========  ==========  ===============================

A cheque account is closed once, so each CloseChequeAccount case is another customer's
(a "closer" at alfa, :data:`tests.idempotency.conftest.CHEQUE_CLOSERS`); a customer has
one cheque account, so its variant names another holder's: alone it would be refused
CHEQUE_NOT_FOUND, and its IDEMPOTENCY_KEY_REUSED shows the key is judged first.

DepositCheque and SubmitCheque answer a repeat with their subject as it is now, not
with the stored first answer: the deposit of a cheque on another bank is IN_CLEARING
when first answered and PAID once the drawee has paid it; the order is PAYMENT_PENDING,
then SETTLED and DELIVERY_CONFIRMED. A repeat must name the same deposit (or order) in
the same or a later state, and once the network has come to rest, the final one.

The two cash-letter RPCs are batches: each case is one entry (its own request_id), sent
alone; the presentments are of cheques no deposit at beta accounts for, so, like the
other interbank cases, they leave beta's books short of what the settlement bank
settled for it.
"""

from __future__ import annotations

import uuid
from functools import partial

from google.protobuf.message import Message
from interbank.v1 import cheque_pb2, order_pb2
from interbank.v1 import settlement_pb2 as pb

from .case import Case, Prepared, Snapshot, delta
from .conftest import CHEQUE_CLOSERS
from .harness import ALFA, ALICE, BETA, SETTLEMENT, SHOP, Net, money, new_request_id

__all__ = ["CHEQUE_CASES"]

STATE = cheque_pb2.ChequeState
OS = order_pb2.OrderStatus


# -- the drawer's desk (customer -> its bank) ----------------------------------------------------


def _books_of(net: Net, reference: bytes) -> list[tuple[int, int]]:
    """(first, last) serial of every book of a cheque account, at alfa."""
    rows = net.bank_rows(
        ALFA,
        "SELECT first_serial, last_serial FROM cheque_books WHERE account_reference = ?"
        " ORDER BY first_serial",
        reference,
    )
    return [(int(first), int(last)) for first, last in rows]


async def issue_cheque_book(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """IssueChequeBook of 10 serials on alice's account; the variant asks for 11."""
    reference = (await net.cheque_book(ALICE, 1)).account_reference

    def ask(size: int) -> cheque_pb2.IssueChequeBookRequest:
        return cheque_pb2.IssueChequeBookRequest(
            request_id=request_id,
            account_id=net.network.customer(ALICE).account_id,
            book_size=size,
        )

    async def observe() -> Snapshot:
        return {"books": _books_of(net, reference)}

    async def effect(
        before: Snapshot, after: Snapshot, reply: cheque_pb2.IssueChequeBookResponse
    ) -> None:
        book = reply.book
        assert (book.account_reference, book.bank_code) == (reference, net.code(ALFA))
        assert after["books"] == [*before["books"], (book.first_serial, book.last_serial)]
        assert book.last_serial - book.first_serial + 1 == 10

    return Prepared(ask(10), observe, effect, [ask(11)] if with_variants else [])


async def stop_cheque(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """StopCheque of the first serial of a new book of alice's; the variant stops the next."""
    book = await net.cheque_book(ALICE, 5)
    serials = [book.first_serial, book.first_serial + 1]

    def stop(serial: int) -> cheque_pb2.StopChequeRequest:
        return cheque_pb2.StopChequeRequest(
            request_id=request_id, account_reference=book.account_reference, serial=serial
        )

    async def observe() -> Snapshot:
        rows = net.bank_rows(
            ALFA,
            "SELECT serial, stopped_at FROM cheque_stops WHERE account_reference = ?"
            " AND serial BETWEEN ? AND ?",
            book.account_reference,
            book.first_serial,
            book.last_serial,
        )
        return {"stops": sorted(rows)}

    async def effect(
        before: Snapshot, after: Snapshot, reply: cheque_pb2.StopChequeResponse
    ) -> None:
        assert before["stops"] == []
        assert [serial for serial, _ in after["stops"]] == [serials[0]]
        assert reply.serial == serials[0] and reply.HasField("stopped_at")

    return Prepared(stop(serials[0]), observe, effect, [stop(serials[1])] if with_variants else [])


def _cheque_account(net: Net, customer: str) -> tuple[bytes, str | None] | None:
    rows = net.bank_rows(
        ALFA,
        "SELECT account_reference, closed_at FROM cheque_accounts WHERE customer_name = ?",
        customer,
    )
    return (bytes(rows[0][0]), rows[0][1]) if rows else None


async def close_cheque_account(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """CloseChequeAccount of a closer's cheque account (one not closed yet); the variant
    names alice's (module docstring)."""
    closer = next(
        (name for name in CHEQUE_CLOSERS if (_cheque_account(net, name) or (b"", None))[1] is None),
        None,
    )
    assert closer is not None, "every closer's cheque account is closed: add closers"
    reference = (await net.cheque_book(closer, 1)).account_reference
    others = (await net.cheque_book(ALICE, 1)).account_reference

    def close(account_reference: bytes) -> cheque_pb2.CloseChequeAccountRequest:
        return cheque_pb2.CloseChequeAccountRequest(
            request_id=request_id, account_reference=account_reference
        )

    async def observe() -> Snapshot:
        return {"closer": _cheque_account(net, closer), "alice": _cheque_account(net, ALICE)}

    async def effect(
        before: Snapshot, after: Snapshot, reply: cheque_pb2.CloseChequeAccountResponse
    ) -> None:
        assert before["closer"] == (reference, None)
        assert after["closer"][0] == reference and after["closer"][1] is not None
        assert after["alice"] == before["alice"] and after["alice"][1] is None
        assert reply.HasField("closed_at")

    variants = [close(others)] if with_variants else []
    return Prepared(close(reference), observe, effect, variants, caller=closer)


# -- the acquirer (merchant -> its bank) ----------------------------------------------------------


def _deposit_identity(deposit: cheque_pb2.ChequeDeposit) -> tuple[object, ...]:
    return (
        deposit.deposit_id,
        deposit.drawee_bank_code,
        deposit.serial,
        deposit.amount.amount_minor,
        deposit.order_id,
    )


def deposit_repeat(first: Message, again: Message, at_rest: bool) -> str | None:
    """A repeated DepositCheque answers the same deposit, as it is now: IN_CLEARING or
    PAID while the cheque clears, PAID once the network has come to rest."""
    assert isinstance(first, cheque_pb2.DepositChequeResponse)
    assert isinstance(again, cheque_pb2.DepositChequeResponse)
    if _deposit_identity(again.deposit) != _deposit_identity(first.deposit):
        return f"another deposit: {_deposit_identity(again.deposit)}"
    states = (
        {STATE.CHEQUE_STATE_PAID}
        if at_rest
        else {
            STATE.CHEQUE_STATE_IN_CLEARING,
            STATE.CHEQUE_STATE_PAID,
        }
    )
    if again.deposit.state not in states:
        return f"the deposit is {STATE.Name(again.deposit.state)}"
    return None


async def deposit_cheque(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """DepositCheque of alice's 7.00 EUR cheque on alfa, endorsed to beta (it clears
    through the settlement bank); the variant deposits another of her cheques (8.00 EUR)."""
    book = await net.cheque_book(ALICE, 2)
    references = [f"idempotency-deposit-{uuid.uuid4()}" for _ in range(2)]
    cheques = [
        net.cheque(book, book.first_serial + n, amount, references[n])
        for n, amount in enumerate((700, 800))
    ]
    request, variant = (
        cheque_pb2.DepositChequeRequest(
            request_id=request_id,
            signed_cheque=signed,
            signed_certificate=book.signed_certificate,
            signed_endorsement=net.endorsed(signed),
        )
        for signed in cheques
    )

    async def observe() -> Snapshot:
        # The shop's balance first: it is read once its cheques are collected (paid at alfa).
        return {
            "shop": await net.collected(SHOP),
            "alice": await net.balance(ALICE),
            "lines": await net.statement(SHOP, references),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: cheque_pb2.DepositChequeResponse
    ) -> None:
        deposit = reply.deposit
        assert _deposit_identity(deposit)[1:] == (
            net.code(ALFA),
            book.first_serial,
            700,
            references[0],
        )
        assert deposit.state in (STATE.CHEQUE_STATE_IN_CLEARING, STATE.CHEQUE_STATE_PAID)
        assert delta(before, after, "shop") == (700, 700, 0)
        assert delta(before, after, "alice") == (-700, -700, 0)
        assert len(after["lines"]) == len(before["lines"]) + 1

    return Prepared(request, observe, effect, [variant] if with_variants else [])


# -- the cash letters (acquirer -> settlement bank -> drawee) -----------------------------------


async def _presentments(net: Net, amounts: tuple[int, ...]) -> list[cheque_pb2.ChequePresentment]:
    """beta presenting new cheques of alice's to the shop, endorsed to beta, one per amount."""
    book = await net.cheque_book(ALICE, len(amounts))
    made = []
    for n, amount in enumerate(amounts):
        reference = f"idempotency-presentment-{uuid.uuid4()}"
        signed = net.cheque(book, book.first_serial + n, amount, reference)
        made.append(
            cheque_pb2.ChequePresentment(
                presentment_id=str(uuid.uuid4()),
                presenting_agent=net.code(BETA),
                drawee_agent=net.code(ALFA),
                amount=money(amount),
                end_to_end_id=reference,
                signed_cheque=signed,
                signed_certificate=book.signed_certificate,
                signed_endorsement=net.endorsed(signed),
            )
        )
    return made


async def submit_cheque_presentment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """An entry of SubmitChequePresentments: beta presents alice's 7.00 EUR cheque, which
    alfa pays; the variant presents another of her cheques (8.00 EUR)."""
    presentments = await _presentments(net, (700, 800) if with_variants else (700,))
    request, *variants = (
        pb.SubmitChequePresentmentRequest(request_id=request_id, presentment=p)
        for p in presentments
    )
    ids = [p.presentment_id for p in presentments]

    async def observe() -> Snapshot:
        window = await net.window()
        return {
            "alice": await net.balance(ALICE),
            "statuses": [await net.transfer_status(BETA, i) for i in ids],
            "window": (window.window_id, window.transfer_count),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.SubmitChequePresentmentResponse
    ) -> None:
        assert (reply.presentment_id, reply.status) == (ids[0], pb.TRANSFER_STATUS_ACCEPTED)
        assert delta(before, after, "alice") == (-700, -700, 0)
        assert after["statuses"][0] == "TRANSFER_STATUS_ACCEPTED"
        assert after["statuses"][1:] == before["statuses"][1:] == [None] * len(variants)
        assert after["window"] == (before["window"][0], before["window"][1] + 1)
        assert reply.window_id == after["window"][0]

    return Prepared(request, observe, effect, variants, partial(_close_window, net))


async def _close_window(net: Net) -> None:
    """Close the open settlement window (a replay must then not join the next one)."""
    await net.ok(
        SETTLEMENT,
        SETTLEMENT,
        "/interbank.v1.SettlementService/CloseSettlementWindow",
        pb.CloseSettlementWindowRequest(request_id=new_request_id()),
    )


async def receive_cheque_presentment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """An entry of ReceiveChequePresentments at alfa: alice's 7.00 EUR cheque presented by
    beta is paid; the variant is another of her cheques (8.00 EUR)."""
    presentments = await _presentments(net, (700, 800) if with_variants else (700,))
    request, *variants = (
        pb.ReceiveChequePresentmentRequest(request_id=request_id, presentment=p)
        for p in presentments
    )
    references = [p.end_to_end_id for p in presentments]

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "lines": await net.statement(ALICE, references),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.ReceiveChequePresentmentResponse
    ) -> None:
        assert (reply.presentment_id, reply.status) == (
            presentments[0].presentment_id,
            pb.TRANSFER_STATUS_ACCEPTED,
        )
        assert delta(before, after, "alice") == (-700, -700, 0)
        assert len(after["lines"]) == len(before["lines"]) + 1

    return Prepared(request, observe, effect, variants)


# -- the storefront (customer -> merchant) ------------------------------------------------------


def order_repeat(first: Message, again: Message, at_rest: bool) -> str | None:
    """A repeated SubmitCheque answers the same order, as it is now: PAYMENT_PENDING while
    the cheque clears, then SETTLED, DELIVERY_CONFIRMED once the network has come to rest."""
    assert isinstance(first, order_pb2.SubmitChequeResponse)
    assert isinstance(again, order_pb2.SubmitChequeResponse)
    a, b = first.order, again.order
    if (b.order_id, b.total) != (a.order_id, a.total):
        return f"another order: {b.order_id}"
    statuses = {OS.ORDER_STATUS_DELIVERY_CONFIRMED}
    if not at_rest:
        statuses |= {OS.ORDER_STATUS_PAYMENT_PENDING, OS.ORDER_STATUS_SETTLED}
    if b.status not in statuses:
        return f"the order is {OS.Name(b.status)}"
    return None


async def submit_cheque(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """SubmitCheque of a 45.00 EUR order with alice's cheque on alfa; the variant pays
    another order (32.50 EUR) with another of her cheques."""
    book = await net.cheque_book(ALICE, 2)
    placed = [await net.place_order([("book-001", 1)])]
    if with_variants:
        placed.append(await net.place_order([("lamp-002", 1)]))
    request, *variants = (
        order_pb2.SubmitChequeRequest(
            request_id=request_id,
            order_id=p.order.order_id,
            signed_cheque=net.cheque(
                book, book.first_serial + n, p.order.total.amount_minor, p.order.order_id
            ),
            signed_certificate=book.signed_certificate,
        )
        for n, p in enumerate(placed)
    )
    order_ids = [p.order.order_id for p in placed]

    async def observe() -> Snapshot:
        # The orders first: each is read once it has come to rest, and the balances then.
        orders = [await net.order(o) for o in order_ids]
        return {
            "orders": orders,
            "shop": await net.collected(SHOP),
            "alice": await net.balance(ALICE),
            "lines": await net.statement(ALICE, order_ids),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: order_pb2.SubmitChequeResponse
    ) -> None:
        assert reply.order.order_id == order_ids[0]
        assert reply.order.status in (
            OS.ORDER_STATUS_PAYMENT_PENDING,
            OS.ORDER_STATUS_SETTLED,
            OS.ORDER_STATUS_DELIVERY_CONFIRMED,
        ), OS.Name(reply.order.status)
        assert delta(before, after, "alice") == (-4500, -4500, 0)
        assert delta(before, after, "shop") == (4500, 4500, 0)
        assert after["orders"][0] == ("ORDER_STATUS_DELIVERY_CONFIRMED", 0)
        assert after["orders"][1:] == before["orders"][1:]
        assert len(after["lines"]) == len(before["lines"]) + 1

    return Prepared(request, observe, effect, variants)


CHEQUE_CASES: dict[str, Case] = {
    "/interbank.v1.ChequeService/IssueChequeBook": Case(ALICE, ALFA, issue_cheque_book),
    "/interbank.v1.ChequeService/StopCheque": Case(ALICE, ALFA, stop_cheque),
    "/interbank.v1.ChequeService/CloseChequeAccount": Case(
        CHEQUE_CLOSERS[0], ALFA, close_cheque_account
    ),
    "/interbank.v1.ChequeService/DepositCheque": Case(
        SHOP, BETA, deposit_cheque, repeat=deposit_repeat
    ),
    "/interbank.v1.SettlementService/SubmitChequePresentments": Case(
        BETA, SETTLEMENT, submit_cheque_presentment
    ),
    "/interbank.v1.ClearingService/ReceiveChequePresentments": Case(
        SETTLEMENT, ALFA, receive_cheque_presentment
    ),
    "/interbank.v1.OrderService/SubmitCheque": Case(
        ALICE, SHOP, submit_cheque, repeat=order_repeat
    ),
}
"""The cheque RPCs' cases, by full method name."""
