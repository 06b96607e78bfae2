"""Boundary cases of the electronic cheque's RPCs, each with its exact answer.

The drawer's desk (IssueChequeBook, StopCheque, CloseChequeAccount at alfa),
the acquirer's deposits (DepositCheque at beta), the cash letters
(SubmitChequePresentments at the settlement bank, ReceiveChequePresentments at
the drawee) and the storefront's SubmitCheque. Cases that move money deposit a
fresh cheque (written by :class:`tests.hostile.cheques.ChequeKit`): on beta
itself (decided in the deposit's transaction) or on alfa (presented in beta's
next cash letter); they let the network settle, the audit must pass, and a
repeat of the request must answer the deposit (or the order) as it is now.

No case presents a cheque outside a deposit and gets it paid: a member bank
collecting money it never credited to anyone would rightly fail the audit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import Message
from interbank.v1 import cheque_pb2, common_pb2, order_pb2, settlement_pb2

from payment import cheque
from payment.batching import MAX_BATCH, from_entry_error
from payment.money import MAX_AMOUNT_MINOR

from .boundary import Boundary, Build
from .catalog import Payer
from .strategies import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from .world import World, WorldCheque

__all__ = ["CHEQUE_BOUNDARIES"]

C, S, OR = cheque_pb2, settlement_pb2, order_pb2
STATE = cheque_pb2.ChequeState

_BOOK = frozenset({("alfa", "cheque_books"), ("alfa", "cheque_accounts"), ("alfa", "idempotency")})
_ALFA_KEPT = frozenset({("alfa", "idempotency")})
_STOPPED = frozenset({("alfa", "cheque_stops"), ("alfa", "idempotency")})
_LEDGER = ("transfers", "accounts", "outbox", "sqlite_sequence")
_DEPOSITED = frozenset(
    {
        ("beta", "cheque_deposits"),
        ("beta", "cheque_presentments"),
        ("beta", "cheques_paid"),
        ("beta", "idempotency"),
        *(("beta", table) for table in _LEDGER),
        # The shop reads beta's ChequeNotice (and credit) as soon as it is committed.
        ("shop", "processed_events"),
        ("shop", "subscription_cursor"),
    }
)
"""What a deposit decided at beta itself (a cheque drawn on beta) writes there, and the
shop's reading of its notices."""
_CLEARED = _DEPOSITED | {
    ("settlement", "settlement_transfers"),
    ("settlement", "settlement_windows"),
    ("settlement", "window_positions"),
    ("settlement", "idempotency"),
    ("alfa", "cheque_presentments"),
    ("alfa", "cheques_paid"),
    ("alfa", "idempotency"),
    *(("alfa", table) for table in _LEDGER),
}
"""A deposit of a cheque on alfa, and the cash letter that may go out before the answer
is read: beta, the settlement bank and alfa."""
_PRESENTED = frozenset(
    {
        ("settlement", "settlement_transfers"),
        ("settlement", "settlement_windows"),
        ("settlement", "window_positions"),
        ("settlement", "idempotency"),
        ("alfa", "cheque_presentments"),
        ("alfa", "idempotency"),
    }
)
"""A presentment the settlement bank records and the drawee returns."""
_RECEIVED = frozenset({("alfa", "cheque_presentments"), ("alfa", "idempotency")})
_SHOP = frozenset({("shop", "orders"), ("shop", "outbox"), ("shop", "sqlite_sequence")})


def _rid() -> str:
    return str(uuid.uuid4())


def _const(message: Callable[[World], Message | bytes]) -> Build:
    return lambda world, _payer: message(world)


_NO_ORDER = "boundary-case"
"""The order reference of the cheques deposited or presented at bank level: no order's
(a credit naming a shop order could settle it)."""

_FIXED = {name: f"cheque-boundary-{name}-{uuid.uuid4()}" for name in ("book", "stop", "deposit")}
"""request_ids a case and the request sent before it share (a replay, a reused id)."""


# -- answers ----------------------------------------------------------------------------------


def _book_of(size: int) -> Callable[[bytes, World], None]:
    """An IssueChequeBook answer: a book of size serials on alice's cheque account, whose
    certificate says the same."""

    def check(response: bytes, world: World) -> None:
        book = C.IssueChequeBookResponse.FromString(response).book
        assert book.last_serial - book.first_serial + 1 == size, book
        assert (book.bank_code, book.account_reference) == (
            world.alfa_code,
            world.alice_book.account_reference,
        )
        certificate = cheque.read_certificate(book.signed_certificate).document
        assert (certificate.first_serial, certificate.last_serial) == (
            book.first_serial,
            book.last_serial,
        )
        assert certificate.account_reference == book.account_reference

    return check


def _deposit_is(state: int, reason: str = "") -> Callable[[bytes, World], None]:
    def check(response: bytes, _world: World) -> None:
        deposit = C.DepositChequeResponse.FromString(response).deposit
        assert (deposit.state, deposit.return_reason) == (state, reason), (
            STATE.Name(deposit.state),
            deposit.return_reason,
        )

    return check


def _deposit_in(*states: int) -> Callable[[bytes, World], None]:
    def check(response: bytes, _world: World) -> None:
        deposit = C.DepositChequeResponse.FromString(response).deposit
        assert deposit.state in states, STATE.Name(deposit.state)

    return check


def _results(
    response_type: type[Message], *expected: tuple[str, str] | tuple[str, str, dict[str, str]]
) -> Callable[[bytes, World], None]:
    """A batch answer whose results are, in order, these (status or code name, reason, and
    for an entry error, ErrorInfo metadata it must carry)."""

    def check(response: bytes, _world: World) -> None:
        found: list[tuple[str, str] | tuple[str, str, dict[str, str]]] = []
        for result, wanted in zip(
            response_type.FromString(response).results,  # type: ignore[attr-defined]
            expected,
            strict=True,
        ):
            if result.WhichOneof("outcome") == "report":
                status = S.TransferStatus.Name(result.report.status)
                found.append((status, result.report.reason_code))
                continue
            error = from_entry_error(result.error)
            keys = wanted[2:]  # the metadata asked for, if any: compared key by key
            if keys:
                seen = {key: str(error.metadata.get(key, "")) for key in keys[0]}
                found.append((error.code.name, error.reason, seen))
            else:
                found.append((error.code.name, error.reason))
        assert found == list(expected), found

    return check


def _order_is(*statuses: int) -> Callable[[bytes, World], None]:
    def check(response: bytes, _world: World) -> None:
        order = OR.SubmitChequeResponse.FromString(response).order
        assert order.status in statuses, OR.OrderStatus.Name(order.status)

    return check


# -- requests ---------------------------------------------------------------------------------


def _book(size: int, request_id: str | None = None, account: str = "alice") -> Build:
    accounts: dict[str, Callable[[World], str]] = {
        "alice": lambda w: w.alice_account,
        "bob": lambda w: w.bob_account,
        "carol": lambda w: w.carol_account,
        "reserve": lambda _w: "@reserve",
    }
    return _const(
        lambda w: C.IssueChequeBookRequest(
            request_id=_rid() if request_id is None else request_id,
            account_id=accounts[account](w),
            book_size=size,
        )
    )


def _stop(
    serial: Callable[[World], int],
    reference: Callable[[World], bytes] = lambda w: w.alice_book.account_reference,
    request_id: str | None = None,
) -> Build:
    return _const(
        lambda w: C.StopChequeRequest(
            request_id=_rid() if request_id is None else request_id,
            account_reference=reference(w),
            serial=serial(w),
        )
    )


def _close(reference: Callable[[World], bytes], request_id: str | None = None) -> Build:
    return _const(
        lambda w: C.CloseChequeAccountRequest(
            request_id=_rid() if request_id is None else request_id,
            account_reference=reference(w),
        )
    )


def _world_cheque(name: str) -> Callable[[World], WorldCheque]:
    return lambda w: {"P": w.paid_cheque, "S": w.stopped_cheque, "U": w.on_us_cheque}[name]


def _deposit_of(
    name: str,
    request_id: str | None = "",
    documents: Mapping[str, object] | None = None,
    **changed: object,
) -> Build:
    """A world cheque deposited again (under a new request_id unless None: its own), with
    documents changed (by field name: bytes, or a function of the world giving them)."""
    documents = {**(documents or {}), **changed}

    def build(world: World, _payer: Payer) -> Message:
        request = _world_cheque(name)(world).deposit_request(
            None if request_id is None else request_id or _rid()
        )
        for field, value in documents.items():
            setattr(request, field, value(world) if callable(value) else value)
        return request

    return build


def _fresh_deposit(
    drawer: str,
    amount: int,
    *,
    alter_to: int | None = None,
    forged: bool = False,
    to_bank: Callable[[World], str] | None = None,
    request_id: str | None = None,
    **written: Any,
) -> Build:
    """A deposit of a cheque just written to the shop on a spare serial of the drawer's
    world book, endorsed by the shop (to beta unless to_bank says), maybe altered after
    signing or under a forged certificate."""

    def build(world: World, payer: Payer) -> Message:
        kit = payer.cheques
        signed = kit.write(drawer, amount_minor=amount, order_id=_NO_ORDER, **written)
        if alter_to is not None:
            signed = kit.altered(signed, alter_to)
        certificate = (
            kit.forged_certificate(drawer) if forged else kit.book(drawer).signed_certificate
        )
        return C.DepositChequeRequest(
            request_id=_rid() if request_id is None else request_id,
            signed_cheque=signed,
            signed_certificate=certificate,
            signed_endorsement=kit.endorse(signed, to_bank=to_bank(world) if to_bank else None),
        )

    return build


def _presented(
    name: str, *, new_id: bool = True, **changes: Callable[[World], object] | object
) -> Callable[[World, Payer], cheque_pb2.ChequePresentment]:
    """beta's presentment of a world cheque, under a new presentment id unless new_id is
    false, with fields changed."""

    def build(world: World, _payer: Payer) -> cheque_pb2.ChequePresentment:
        fields = {k: v(world) if callable(v) else v for k, v in changes.items()}
        if new_id:
            fields.setdefault("presentment_id", f"boundary-{uuid.uuid4()}")
        return _world_cheque(name)(world).presented(**fields)

    return build


def _fresh_presentment(
    amount: int, *, forged: bool = False, alter_to: int | None = None, **written: Any
) -> Callable[[World, Payer], cheque_pb2.ChequePresentment]:
    """beta presenting a cheque of alice's just written (one the drawee must return)."""

    def build(world: World, payer: Payer) -> cheque_pb2.ChequePresentment:
        kit = payer.cheques
        signed = kit.write("alice", amount_minor=amount, order_id=_NO_ORDER, **written)
        if alter_to is not None:
            signed = kit.altered(signed, alter_to)
        return cheque_pb2.ChequePresentment(
            presentment_id=f"boundary-{uuid.uuid4()}",
            presenting_agent=world.beta_code,
            drawee_agent=world.alfa_code,
            amount=common_pb2.Money(
                amount_minor=amount if alter_to is None else alter_to,
                currency_code=world.currency,
            ),
            end_to_end_id=_NO_ORDER,
            signed_cheque=signed,
            signed_certificate=(
                kit.forged_certificate("alice") if forged else world.alice_book.signed_certificate
            ),
            signed_endorsement=kit.endorse(signed),
        )

    return build


PresentmentBuild = Callable[[World, Payer], cheque_pb2.ChequePresentment]


def _letter(*entries: PresentmentBuild | None, request_ids: tuple[str | None, ...] = ()) -> Build:
    """A SubmitChequePresentments request (a None entry has no presentment); an entry's
    request_id is a new one unless request_ids gives it ("" for none)."""

    def build(world: World, payer: Payer) -> Message:
        made = []
        for index, entry in enumerate(entries):
            given = request_ids[index] if index < len(request_ids) else None
            made.append(
                S.SubmitChequePresentmentRequest(
                    request_id=_rid() if given is None else given,
                    presentment=None if entry is None else entry(world, payer),
                )
            )
        return S.SubmitChequePresentmentsRequest(entries=made)

    return build


def _delivery(*entries: PresentmentBuild | None, request_ids: tuple[str | None, ...] = ()) -> Build:
    """A ReceiveChequePresentments request, as _letter builds a SubmitChequePresentments."""

    def build(world: World, payer: Payer) -> Message:
        made = []
        for index, entry in enumerate(entries):
            given = request_ids[index] if index < len(request_ids) else None
            made.append(
                S.ReceiveChequePresentmentRequest(
                    request_id=_rid() if given is None else given,
                    presentment=None if entry is None else entry(world, payer),
                )
            )
        return S.ReceiveChequePresentmentsRequest(entries=made)

    return build


def _amount(value: int) -> Callable[[World], common_pb2.Money]:
    return lambda w: common_pb2.Money(amount_minor=value, currency_code=w.currency)


def _pay_order(
    order: str,
    *,
    cheque_of: str = "alice",
    amount: Callable[[World], int] | None = None,
    reference: str | None = None,
    forged: bool = False,
    alter_by: int = 0,
    request_id: str | None = None,
    **written: Any,
) -> Build:
    """SubmitCheque of an order with a cheque just written (payee, amount and reference
    right unless changed)."""

    def build(world: World, payer: Payer) -> Message:
        kit = payer.cheques
        total = amount(world) if amount else world.h_total if order == "H" else world.j_total
        signed = kit.write(
            cheque_of,
            amount_minor=total,
            order_id=world.orders[reference or order],
            **written,
        )
        if alter_by:
            signed = kit.altered(signed, total + alter_by)
        return OR.SubmitChequeRequest(
            request_id=_rid() if request_id is None else request_id,
            order_id=world.orders[order],
            signed_cheque=signed,
            signed_certificate=(
                kit.forged_certificate(cheque_of)
                if forged
                else kit.book(cheque_of).signed_certificate
            ),
        )

    return build


def _batch_size(count: int) -> dict[str, Any]:
    if count == 0:
        return {"reason": "BATCH_SIZE_INVALID", "metadata": {"field": "entries", "count": "0"}}
    return {"reason": "FIELD_INVALID", "metadata": {"field": "entries", "limit": str(MAX_BATCH)}}


def _in_two_days() -> dt.date:
    """A date after today wherever a node's clock is (each judges by its UTC date)."""
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)


CHEQUE_BOUNDARIES: list[Boundary] = [
    # -- ChequeService.IssueChequeBook at alfa, as alice ----------------------------------
    *(
        Boundary(
            f"book-size-{size}",
            "ChequeService/IssueChequeBook",
            "alfa",
            _book(size),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": "book_size", "limit": "1000"},
        )
        for size in (0, -1, 1001, INT32_MAX, INT32_MIN)
    ),
    *(
        Boundary(
            f"book-size-{size}",
            "ChequeService/IssueChequeBook",
            "alfa",
            _book(size),
            "OK",
            writes=_BOOK,
            response=_book_of(size),
        )
        for size in (1, 1000)
    ),
    *(
        Boundary(
            f"{account}-account",
            "ChequeService/IssueChequeBook",
            "alfa",
            _book(5, account=account),
            "PERMISSION_DENIED",
            "ACCOUNT_NOT_HELD_BY_CALLER",
        )
        for account in ("bob", "carol", "reserve")
    ),
    Boundary(
        "closed-cheque-account",
        "ChequeService/IssueChequeBook",
        "alfa",
        _book(5, account="carol"),
        "FAILED_PRECONDITION",
        "ACCOUNT_CLOSED",
        caller="carol",
    ),
    Boundary(
        "no-request-id",
        "ChequeService/IssueChequeBook",
        "alfa",
        _book(5, request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    Boundary(
        "replayed",
        "ChequeService/IssueChequeBook",
        "alfa",
        _book(3, request_id=_FIXED["book"]),
        "OK",
        response=_book_of(3),
        before=_book(3, request_id=_FIXED["book"]),
    ),
    Boundary(
        "request-id-reused",
        "ChequeService/IssueChequeBook",
        "alfa",
        _book(4, request_id=_FIXED["book"]),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_book(3, request_id=_FIXED["book"]),
    ),
    # -- ChequeService.StopCheque at alfa, as alice ---------------------------------------
    Boundary(
        "paid-cheque",
        "ChequeService/StopCheque",
        "alfa",
        _stop(lambda w: w.paid_cheque.serial),
        "FAILED_PRECONDITION",
        "CHEQUE_ALREADY_PAID",
        metadata=lambda w: {"serial": str(w.paid_cheque.serial)},
    ),
    Boundary(
        "stopped-again",
        "ChequeService/StopCheque",
        "alfa",
        _stop(lambda w: w.stopped_cheque.serial),
        "OK",
        writes=_ALFA_KEPT,
        response=lambda r, w: _same(
            C.StopChequeResponse.FromString(r).serial, w.stopped_cheque.serial
        ),
    ),
    Boundary(
        "unwritten-serial",
        "ChequeService/StopCheque",
        "alfa",
        _stop(lambda w: w.stop_target),
        "OK",
        writes=_STOPPED,
        response=lambda r, w: _same(C.StopChequeResponse.FromString(r).serial, w.stop_target),
    ),
    *(
        Boundary(
            f"serial-{name}",
            "ChequeService/StopCheque",
            "alfa",
            _stop(serial),
            "NOT_FOUND",
            "CHEQUE_NOT_FOUND",
        )
        for name, serial in (
            ("0", lambda _w: 0),
            ("-1", lambda _w: -1),
            ("int64-max", lambda _w: INT64_MAX),
            ("int64-min", lambda _w: INT64_MIN),
            ("before-the-first-book", lambda w: w.alice_book.first_serial - 1),
        )
    ),
    *(
        Boundary(
            f"{owner}-reference",
            "ChequeService/StopCheque",
            "alfa",
            _stop(lambda w: w.paid_cheque.serial, reference),
            "NOT_FOUND",
            "CHEQUE_NOT_FOUND",
        )
        for owner, reference in (
            ("bobs", lambda w: w.bob_book.account_reference),
            ("carols", lambda w: w.carol_book.account_reference),
            ("empty", lambda _w: b""),
            ("64-byte", lambda _w: b"\xff" * 64),
        )
    ),
    Boundary(
        "no-request-id",
        "ChequeService/StopCheque",
        "alfa",
        _stop(lambda w: w.stopped_cheque.serial, request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    Boundary(
        "request-id-reused",
        "ChequeService/StopCheque",
        "alfa",
        _stop(lambda w: w.stop_target, request_id=_FIXED["stop"]),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_stop(lambda w: w.stopped_cheque.serial, request_id=_FIXED["stop"]),
    ),
    # -- ChequeService.CloseChequeAccount at alfa, as carol (closed already) --------------
    Boundary(
        "closed-again",
        "ChequeService/CloseChequeAccount",
        "alfa",
        _close(lambda w: w.carol_book.account_reference),
        "OK",
        writes=_ALFA_KEPT,
        response=lambda r, _w: _same(
            C.CloseChequeAccountResponse.FromString(r).HasField("closed_at"), True
        ),
    ),
    *(
        Boundary(
            f"{owner}-reference",
            "ChequeService/CloseChequeAccount",
            "alfa",
            _close(reference),
            "NOT_FOUND",
            "CHEQUE_NOT_FOUND",
        )
        for owner, reference in (
            # alice's cheque account stays open: the cases after this one pay her cheques.
            ("alices", lambda w: w.alice_book.account_reference),
            ("bobs", lambda w: w.bob_book.account_reference),
            ("empty", lambda _w: b""),
        )
    ),
    Boundary(
        "no-request-id",
        "ChequeService/CloseChequeAccount",
        "alfa",
        _close(lambda w: w.carol_book.account_reference, request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    # -- ChequeService.DepositCheque at beta, as the shop ---------------------------------
    *(
        Boundary(
            f"unreadable-{field}-{name}",
            "ChequeService/DepositCheque",
            "beta",
            _deposit_of("P", documents={field: value}),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": field},
        )
        for field, name, value in (
            ("signed_cheque", "empty", b""),
            ("signed_cheque", "trailing-byte", lambda w: w.paid_cheque.signed_cheque + b"\x00"),
            ("signed_cheque", "a-certificate", lambda w: w.alice_book.signed_certificate),
            ("signed_cheque", "cut", lambda w: w.paid_cheque.signed_cheque[:-1]),
            ("signed_certificate", "empty", b""),
            ("signed_certificate", "a-cheque", lambda w: w.paid_cheque.signed_cheque),
        )
    ),
    *(
        Boundary(
            f"endorsement-{name}",
            "ChequeService/DepositCheque",
            "beta",
            _deposit_of("P", signed_endorsement=value),
            "INVALID_ARGUMENT",
            "ENDORSEMENT_INVALID",
        )
        for name, value in (
            ("empty", b""),
            ("of-another-cheque", lambda w: w.on_us_cheque.signed_endorsement),
            ("signature-cut", lambda w: w.paid_cheque.signed_endorsement[:-1]),
        )
    ),
    Boundary(
        "endorsed-to-alfa",
        "ChequeService/DepositCheque",
        "beta",
        _fresh_deposit("alice", 100, to_bank=lambda w: w.alfa_code),
        "INVALID_ARGUMENT",
        "ENDORSEMENT_INVALID",
    ),
    Boundary(
        "payable-to-someone-else",
        "ChequeService/DepositCheque",
        "beta",
        _fresh_deposit("alice", 100, payee="bob"),
        "INVALID_ARGUMENT",
        "ENDORSEMENT_INVALID",
    ),
    *(
        Boundary(
            f"cheque-{name}",
            "ChequeService/DepositCheque",
            "beta",
            _fresh_deposit("alice", amount, **dict[str, Any](written)),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": field},
        )
        for name, amount, written, field in (
            ("in-usd", 100, {"currency": "USD"}, "signed_cheque.currency_code"),
            ("on-no-member", 100, {"drawee": "ZZZZXX99"}, "signed_cheque.drawee_bank_code"),
            ("amount-above-the-maximum", MAX_AMOUNT_MINOR + 1, {}, "signed_cheque.amount_minor"),
            ("amount-int64-max", INT64_MAX, {}, "signed_cheque.amount_minor"),
        )
    ),
    Boundary(
        "deposited-already",
        "ChequeService/DepositCheque",
        "beta",
        _deposit_of("P"),
        "ALREADY_EXISTS",
        "CHEQUE_ALREADY_DEPOSITED",
        metadata=lambda w: {"deposit_id": w.paid_cheque.deposit_id},
    ),
    *(
        Boundary(
            f"world-deposit-{name}-asked-again",
            "ChequeService/DepositCheque",
            "beta",
            _deposit_of(name, request_id=None),
            "OK",
            response=_deposit_is(state, reason),
        )
        for name, state, reason in (
            ("P", STATE.CHEQUE_STATE_PAID, ""),
            ("S", STATE.CHEQUE_STATE_RETURNED, "PAYMENT_STOPPED"),
            ("U", STATE.CHEQUE_STATE_PAID, ""),
        )
    ),
    Boundary(
        "request-id-of-another-deposit",
        "ChequeService/DepositCheque",
        "beta",
        _deposit_of(
            "U",
            request_id=None,
            signed_cheque=lambda w: w.stopped_cheque.signed_cheque,
            signed_certificate=lambda w: w.stopped_cheque.signed_certificate,
            signed_endorsement=lambda w: w.stopped_cheque.signed_endorsement,
        ),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
    ),
    Boundary(
        "no-request-id",
        "ChequeService/DepositCheque",
        "beta",
        _fresh_deposit("bob", 100, request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    Boundary(
        "on-beta-paid",
        "ChequeService/DepositCheque",
        "beta",
        _fresh_deposit("bob", 700),
        "OK",
        writes=_DEPOSITED,
        response=_deposit_is(STATE.CHEQUE_STATE_PAID),
        settled=_deposit_is(STATE.CHEQUE_STATE_PAID),
    ),
    *(
        Boundary(
            f"on-beta-{name}",
            "ChequeService/DepositCheque",
            "beta",
            build,
            "OK",
            writes=_DEPOSITED,
            response=_deposit_is(STATE.CHEQUE_STATE_RETURNED, reason),
            settled=_deposit_is(STATE.CHEQUE_STATE_RETURNED, reason),
        )
        for name, build, reason in (
            ("altered", _fresh_deposit("bob", 300, alter_to=30_000), "SIGNATURE_INVALID"),
            ("beyond-funds", _fresh_deposit("bob", 10**14), "INSUFFICIENT_FUNDS"),
            ("post-dated", _fresh_deposit("bob", 300, date=_in_two_days()), "POST_DATED"),
            ("forged-certificate", _fresh_deposit("bob", 300, forged=True), "SIGNATURE_INVALID"),
        )
    ),
    Boundary(
        "on-alfa-cleared",
        "ChequeService/DepositCheque",
        "beta",
        _fresh_deposit("alice", 500),
        "OK",
        writes=_CLEARED,
        response=_deposit_in(STATE.CHEQUE_STATE_IN_CLEARING, STATE.CHEQUE_STATE_PAID),
        settled=_deposit_is(STATE.CHEQUE_STATE_PAID),
    ),
    *(
        Boundary(
            f"on-alfa-{name}",
            "ChequeService/DepositCheque",
            "beta",
            build,
            "OK",
            writes=_CLEARED,
            response=_deposit_in(STATE.CHEQUE_STATE_IN_CLEARING, STATE.CHEQUE_STATE_RETURNED),
            settled=_deposit_is(STATE.CHEQUE_STATE_RETURNED, reason),
        )
        for name, build, reason in (
            ("post-dated", _fresh_deposit("alice", 300, date=_in_two_days()), "POST_DATED"),
            # The settlement bank returns it before the drawee sees it (2000.00 EUR cap).
            ("beyond-the-net-debit-cap", _fresh_deposit("alice", 10**12), "NET_DEBIT_CAP_EXCEEDED"),
            ("forged-certificate", _fresh_deposit("alice", 300, forged=True), "SIGNATURE_INVALID"),
        )
    ),
    # -- SettlementService.SubmitChequePresentments, as beta ------------------------------
    *(
        Boundary(
            f"{count}-entries",
            "SettlementService/SubmitChequePresentments",
            "settlement",
            _letter(*[None] * count),
            "INVALID_ARGUMENT",
            **_batch_size(count),
        )
        for count in (0, MAX_BATCH + 1)
    ),
    *(
        Boundary(
            name,
            "SettlementService/SubmitChequePresentments",
            "settlement",
            _letter(_presented("P", **changes)),
            "OK",
            response=_results(S.SubmitChequePresentmentsResponse, answer),
        )
        for name, changes, answer in (
            (
                "drawee-is-the-presenter",
                {"drawee_agent": lambda w: w.beta_code},
                ("INVALID_ARGUMENT", "SAME_AGENT", {"field": "presentment.drawee_agent"}),
            ),
            (
                "presenter-not-the-caller",
                {"presenting_agent": lambda w: w.alfa_code},
                ("PERMISSION_DENIED", "PRESENTING_AGENT_NOT_CALLER"),
            ),
            ("no-presentment-id", {"presentment_id": ""}, ("INVALID_ARGUMENT", "FIELD_INVALID")),
            ("no-drawee", {"drawee_agent": ""}, ("INVALID_ARGUMENT", "FIELD_INVALID")),
            ("amount-0", {"amount": _amount(0)}, ("INVALID_ARGUMENT", "FIELD_INVALID")),
            ("amount-negative", {"amount": _amount(-1)}, ("INVALID_ARGUMENT", "FIELD_INVALID")),
            (
                "amount-above-the-maximum",
                {"amount": _amount(MAX_AMOUNT_MINOR + 1)},
                ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ),
            (
                "amount-int64-max",
                {"amount": _amount(INT64_MAX)},
                ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ),
            (
                "amount-in-usd",
                {"amount": lambda w: common_pb2.Money(amount_minor=100, currency_code="USD")},
                ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ),
            (
                "id-reused-for-other-content",
                {"presentment_id": lambda w: w.paid_cheque.deposit_id, "end_to_end_id": "other"},
                ("ALREADY_EXISTS", "IDEMPOTENCY_KEY_REUSED"),
            ),
        )
    ),
    Boundary(
        "no-request-id",
        "SettlementService/SubmitChequePresentments",
        "settlement",
        _letter(_presented("P"), request_ids=("",)),
        "OK",
        response=_results(
            S.SubmitChequePresentmentsResponse, ("INVALID_ARGUMENT", "REQUEST_ID_MISSING")
        ),
    ),
    *(
        Boundary(
            name,
            "SettlementService/SubmitChequePresentments",
            "settlement",
            _letter(presentment),
            "OK",
            writes=writes,
            response=_results(
                S.SubmitChequePresentmentsResponse, ("TRANSFER_STATUS_REJECTED", reason)
            ),
        )
        for name, presentment, reason, writes in (
            (
                "drawee-no-member",
                _presented("P", drawee_agent="ZZZZXX99"),
                "UNKNOWN_DRAWEE_AGENT",
                frozenset({("settlement", "settlement_transfers"), ("settlement", "idempotency")}),
            ),
            (
                "beyond-the-net-debit-cap",
                _presented("P", amount=_amount(MAX_AMOUNT_MINOR)),
                "NET_DEBIT_CAP_EXCEEDED",
                frozenset(
                    {
                        ("settlement", "settlement_transfers"),
                        ("settlement", "settlement_windows"),
                        ("settlement", "idempotency"),
                    }
                ),
            ),
            ("paid-cheque-again", _presented("P"), "DUPLICATE_PRESENTMENT", _PRESENTED),
            ("stopped-cheque", _presented("S"), "PAYMENT_STOPPED", _PRESENTED),
            (
                "cheque-on-beta",
                _presented("U", drawee_agent=lambda w: w.alfa_code),
                "SIGNATURE_INVALID",
                _PRESENTED,
            ),
            ("altered-amount", _presented("P", amount=_amount(1)), "SIGNATURE_INVALID", _PRESENTED),
            (
                "post-dated",
                _fresh_presentment(300, date=_in_two_days()),
                "POST_DATED",
                _PRESENTED,
            ),
            (
                "forged-certificate",
                _fresh_presentment(300, forged=True),
                "SIGNATURE_INVALID",
                _PRESENTED,
            ),
        )
    ),
    *(
        Boundary(
            f"world-presentment-{name}-again",
            "SettlementService/SubmitChequePresentments",
            "settlement",
            _letter(_presented(name, new_id=False)),
            "OK",
            writes=frozenset({("settlement", "idempotency")}),
            response=_results(S.SubmitChequePresentmentsResponse, answer),
        )
        for name, answer in (
            ("P", ("TRANSFER_STATUS_ACCEPTED", "")),
            ("S", ("TRANSFER_STATUS_REJECTED", "PAYMENT_STOPPED")),
        )
    ),
    Boundary(
        "each-entry-alone",
        "SettlementService/SubmitChequePresentments",
        "settlement",
        _letter(
            _presented("P", new_id=False),
            _presented("P", drawee_agent=lambda w: w.beta_code),
            None,
            _presented("S"),
        ),
        "OK",
        writes=_PRESENTED,
        response=_results(
            S.SubmitChequePresentmentsResponse,
            ("TRANSFER_STATUS_ACCEPTED", ""),
            ("INVALID_ARGUMENT", "SAME_AGENT"),
            ("PERMISSION_DENIED", "PRESENTING_AGENT_NOT_CALLER"),
            ("TRANSFER_STATUS_REJECTED", "PAYMENT_STOPPED"),
        ),
    ),
    # -- ClearingService.ReceiveChequePresentments at alfa, as the settlement bank --------
    *(
        Boundary(
            f"{count}-entries",
            "ClearingService/ReceiveChequePresentments",
            "alfa",
            _delivery(*[None] * count),
            "INVALID_ARGUMENT",
            **_batch_size(count),
        )
        for count in (0, MAX_BATCH + 1)
    ),
    *(
        Boundary(
            name,
            "ClearingService/ReceiveChequePresentments",
            "alfa",
            _delivery(_presented("P", **changes)),
            "OK",
            response=_results(S.ReceiveChequePresentmentsResponse, answer),
        )
        for name, changes, answer in (
            (
                "drawee-is-the-presenter",
                {"presenting_agent": lambda w: w.alfa_code},
                ("INVALID_ARGUMENT", "SAME_AGENT", {"field": "presentment.drawee_agent"}),
            ),
            (
                "drawee-another-bank",
                {"drawee_agent": lambda w: w.settlement_code},
                ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ),
            (
                "no-presentment-id",
                {"presentment_id": ""},
                ("INVALID_ARGUMENT", "FIELD_INVALID", {"field": "presentment.presentment_id"}),
            ),
            (
                "no-presenter",
                {"presenting_agent": ""},
                ("INVALID_ARGUMENT", "FIELD_INVALID", {"field": "presentment.presenting_agent"}),
            ),
            ("amount-0", {"amount": _amount(0)}, ("INVALID_ARGUMENT", "FIELD_INVALID")),
            (
                "amount-int64-min",
                {"amount": _amount(INT64_MIN)},
                ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ),
            (
                "amount-above-the-maximum",
                {"amount": _amount(MAX_AMOUNT_MINOR + 1)},
                ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ),
            (
                "id-reused-for-other-content",
                {"presentment_id": lambda w: w.paid_cheque.deposit_id, "end_to_end_id": "other"},
                ("ALREADY_EXISTS", "IDEMPOTENCY_KEY_REUSED"),
            ),
        )
    ),
    Boundary(
        "no-request-id",
        "ClearingService/ReceiveChequePresentments",
        "alfa",
        _delivery(_presented("P"), request_ids=("",)),
        "OK",
        response=_results(
            S.ReceiveChequePresentmentsResponse, ("INVALID_ARGUMENT", "REQUEST_ID_MISSING")
        ),
    ),
    *(
        Boundary(
            name,
            "ClearingService/ReceiveChequePresentments",
            "alfa",
            _delivery(presentment),
            "OK",
            writes=_RECEIVED,
            response=_results(
                S.ReceiveChequePresentmentsResponse, ("TRANSFER_STATUS_REJECTED", reason)
            ),
        )
        for name, presentment, reason in (
            ("paid-cheque-again", _presented("P"), "DUPLICATE_PRESENTMENT"),
            ("stopped-cheque", _presented("S"), "PAYMENT_STOPPED"),
            (
                "cheque-on-beta",
                _presented("U", drawee_agent=lambda w: w.alfa_code),
                "SIGNATURE_INVALID",
            ),
            ("altered-amount", _presented("P", amount=_amount(1)), "SIGNATURE_INVALID"),
            ("other-order", _presented("P", end_to_end_id="other"), "SIGNATURE_INVALID"),
            (
                "certificate-of-another-book",
                _presented("P", signed_certificate=lambda w: w.carol_book.signed_certificate),
                "SIGNATURE_INVALID",
            ),
            (
                "endorsed-to-another-presenter",
                _presented("P", presenting_agent=lambda w: w.settlement_code),
                "ENDORSEMENT_INVALID",
            ),
            (
                "endorsement-of-another-cheque",
                _presented("P", signed_endorsement=lambda w: w.stopped_cheque.signed_endorsement),
                "ENDORSEMENT_INVALID",
            ),
            ("beyond-funds", _fresh_presentment(10**12), "INSUFFICIENT_FUNDS"),
            ("post-dated", _fresh_presentment(300, date=_in_two_days()), "POST_DATED"),
            ("forged-certificate", _fresh_presentment(300, forged=True), "SIGNATURE_INVALID"),
            ("altered-fresh-cheque", _fresh_presentment(300, alter_to=3), "SIGNATURE_INVALID"),
        )
    ),
    *(
        Boundary(
            f"world-presentment-{name}-again",
            "ClearingService/ReceiveChequePresentments",
            "alfa",
            _delivery(_presented(name, new_id=False)),
            "OK",
            writes=_ALFA_KEPT,
            response=_results(S.ReceiveChequePresentmentsResponse, answer),
        )
        for name, answer in (
            ("P", ("TRANSFER_STATUS_ACCEPTED", "")),
            ("S", ("TRANSFER_STATUS_REJECTED", "PAYMENT_STOPPED")),
        )
    ),
    # -- OrderService.SubmitCheque at the shop, as alice ----------------------------------
    *(
        Boundary(
            name,
            "OrderService/SubmitCheque",
            "shop",
            build,
            code,
            reason,
            metadata=metadata,
        )
        for name, build, code, reason, metadata in (
            (
                "order-not-found",
                lambda w, p: OR.SubmitChequeRequest(
                    request_id=_rid(),
                    order_id="no-such-order",
                    signed_cheque=w.paid_cheque.signed_cheque,
                    signed_certificate=w.paid_cheque.signed_certificate,
                ),
                "NOT_FOUND",
                "ORDER_NOT_FOUND",
                {},
            ),
            (
                "bobs-order",
                lambda w, p: OR.SubmitChequeRequest(
                    request_id=_rid(),
                    order_id=w.orders["G"],
                    signed_cheque=w.paid_cheque.signed_cheque,
                    signed_certificate=w.paid_cheque.signed_certificate,
                ),
                "NOT_FOUND",
                "ORDER_NOT_FOUND",
                {},
            ),
            (
                "delivered-order",
                lambda w, p: OR.SubmitChequeRequest(
                    request_id=_rid(),
                    order_id=w.orders["A"],
                    signed_cheque=w.paid_cheque.signed_cheque,
                    signed_certificate=w.paid_cheque.signed_certificate,
                ),
                "FAILED_PRECONDITION",
                "ORDER_NOT_PAYABLE",
                {},
            ),
            (
                "unreadable-cheque",
                lambda w, p: OR.SubmitChequeRequest(
                    request_id=_rid(),
                    order_id=w.orders["H"],
                    signed_cheque=w.paid_cheque.signed_cheque[:-1],
                    signed_certificate=w.paid_cheque.signed_certificate,
                ),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "signed_cheque"},
            ),
            (
                "unreadable-certificate",
                lambda w, p: OR.SubmitChequeRequest(
                    request_id=_rid(),
                    order_id=w.orders["H"],
                    signed_cheque=w.paid_cheque.signed_cheque,
                    signed_certificate=b"",
                ),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "signed_certificate"},
            ),
            (
                "no-request-id",
                _pay_order("H", request_id=""),
                "INVALID_ARGUMENT",
                "REQUEST_ID_MISSING",
                {},
            ),
            (
                "unpublished-bank-key",
                _pay_order("H", forged=True),
                "INVALID_ARGUMENT",
                "DRAWEE_KEY_UNKNOWN",
                {},
            ),
            (
                "altered-after-signing",
                _pay_order("H", alter_by=1),
                "INVALID_ARGUMENT",
                "SIGNATURE_INVALID",
                {},
            ),
            (
                "payable-to-someone-else",
                _pay_order("H", payee="bob"),
                "INVALID_ARGUMENT",
                "PAYEE_MISMATCH",
                {},
            ),
            (
                "amount-not-the-total",
                _pay_order("H", amount=lambda w: w.h_total + 1),
                "INVALID_ARGUMENT",
                "AMOUNT_MISMATCH",
                {},
            ),
            (
                "currency-not-the-orders",
                _pay_order("H", currency="USD"),
                "INVALID_ARGUMENT",
                "AMOUNT_MISMATCH",
                {},
            ),
            (
                "for-another-order",
                _pay_order("H", reference="B"),
                "INVALID_ARGUMENT",
                "ORDER_REFERENCE_MISMATCH",
                {},
            ),
            (
                "post-dated",
                _pay_order("H", date=_in_two_days()),
                "INVALID_ARGUMENT",
                "POST_DATED",
                {},
            ),
        )
    ),
    Boundary(
        "world-cheque-deposited-already",
        "OrderService/SubmitCheque",
        "shop",
        lambda w, _p: OR.SubmitChequeRequest(
            request_id=_rid(),
            order_id=w.orders["H"],
            signed_cheque=w.paid_cheque.signed_cheque,
            signed_certificate=w.paid_cheque.signed_certificate,
        ),
        "ALREADY_EXISTS",
        "CHEQUE_ALREADY_DEPOSITED",
        writes=_SHOP,
    ),
    Boundary(
        "pays-the-order",
        "OrderService/SubmitCheque",
        "shop",
        _pay_order("J"),
        "OK",
        writes=_SHOP | _CLEARED | {("shop", "cheque_payments"), ("shop", "idempotency")},
        response=_order_is(OR.ORDER_STATUS_PAYMENT_PENDING, OR.ORDER_STATUS_SETTLED),
        settled=_order_is(OR.ORDER_STATUS_SETTLED, OR.ORDER_STATUS_DELIVERY_CONFIRMED),
    ),
]
"""Every cheque RPC's boundary cases."""


def _same(found: object, expected: object) -> None:
    assert found == expected, (found, expected)
