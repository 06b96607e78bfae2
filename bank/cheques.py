"""The drawee bank's cheque desk: cheque books, stop-payment orders, and paying or
returning the cheques presented to it.

A holder's **cheque account** has one opaque account reference (16 random bytes,
never the account id) shared by all its books; books take the next serials in
sequence. A book's account certificate binds the holder's registered Ed25519 key
(``customer_keys``, the key of its payment instructions) to the reference and
the book's serials, signed with the bank's newest published cheque-signing key
(:class:`payment.cheque_trust.ChequeKeys`).

A presented cheque is decided in one transaction (:func:`pay_presentment`):
paid (the drawer's account debited to the reserve mirror, the serial recorded in
``cheques_paid``) or returned with the first reason that applies, in this order:
SIGNATURE_INVALID, ACCOUNT_CLOSED, ENDORSEMENT_INVALID, POST_DATED, STALE_DATED,
DUPLICATE_PRESENTMENT, PAYMENT_STOPPED, INSUFFICIENT_FUNDS. The decision is
remembered per (presenting agent, presentment id), so a redelivery gets the same
answer, and ``cheques_paid`` is keyed by the serial, so a cheque is paid at most
once whoever presents it and however often.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Callable

from interbank.v1 import cheque_pb2, common_pb2, settlement_pb2
from interbank.v1 import settlement_pb2 as pb

from bank import ledger
from bank.accounts import held_by
from bank.messages import refuse_malformed
from bank.notices import emit_account_entry, money
from bank.opening import RESERVE, SUSPENSE
from payment import cheque, errors
from payment.cheque_trust import (
    ChequeKeys,
    ChequeRefused,
    check_dates,
    check_endorsement,
    read_verified,
)
from payment.clock import now as clock_now
from payment.clock import timestamp, to_iso
from payment.config import NetworkConfig, NodeConfig
from payment.money import AmountOverflow
from payment.storage import Store, request_hash

__all__ = ["BOOK_DAYS", "MAX_BOOK_SIZE", "ChequeDesk", "pay_presentment"]

MAX_BOOK_SIZE = 1000
"""The most serials one IssueChequeBook gives."""
BOOK_DAYS = 730
"""How long a book's cheques may be dated: from its issue day, this many days."""

_ACCEPTED = settlement_pb2.TRANSFER_STATUS_ACCEPTED
_REJECTED = settlement_pb2.TRANSFER_STATUS_REJECTED


class ChequeDesk:
    """ChequeService's drawer side and ClearingService's presentments, over the bank's store."""

    def __init__(self, store: Store, network: NetworkConfig, node: NodeConfig) -> None:
        if node.bank_code is None:
            raise ValueError(f"node {node.name} has no bank_code")
        self._store = store
        self._node = node
        self._code = node.bank_code
        self._keys = ChequeKeys(network)
        self._stale_days = network.limits.cheque_stale_days

    @property
    def keys(self) -> ChequeKeys:
        """The network's published cheque keys."""
        return self._keys

    @property
    def stale_days(self) -> int:
        """The network's stale period for cheques, in days."""
        return self._stale_days

    def issue_book(
        self, request: cheque_pb2.IssueChequeBookRequest, caller_uri: str, caller_name: str
    ) -> Callable[[sqlite3.Connection], cheque_pb2.IssueChequeBookResponse]:
        """The step (one transaction) issuing a cheque book to the caller."""
        if not 1 <= request.book_size <= MAX_BOOK_SIZE:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"book_size must be 1 to {MAX_BOOK_SIZE}",
                field="book_size",
                limit=str(MAX_BOOK_SIZE),
            )
        key_id, key = self._keys.signing_key(self._node.name)

        def step(conn: sqlite3.Connection) -> cheque_pb2.IssueChequeBookResponse:
            account = held_by(conn, request.account_id, caller_uri)
            row = conn.execute(
                "SELECT public_key_hex FROM customer_keys WHERE customer_name = ?", (caller_name,)
            ).fetchone()
            if row is None:
                raise errors.FailedPrecondition(
                    "HOLDER_KEY_NOT_REGISTERED",
                    "the bank has no registered signing key for the caller: enrol one first",
                )
            reference, first, closed = _cheque_account(conn, account.account_id, caller_name)
            if closed:
                raise errors.FailedPrecondition(
                    "ACCOUNT_CLOSED", "the caller's cheque account is closed: no new book"
                )
            last = first + request.book_size - 1
            today = clock_now().date()
            certificate = cheque.AccountCertificate(
                bank_code=self._code,
                bank_key_id=key_id,
                account_reference=reference,
                holder_public_key=bytes.fromhex(row[0]),
                first_serial=first,
                last_serial=last,
                not_before=today,
                not_after=today + dt.timedelta(days=BOOK_DAYS),
            )
            signed = cheque.sign(key, certificate)
            conn.execute(
                "UPDATE cheque_accounts SET next_serial = ? WHERE account_id = ?",
                (last + 1, account.account_id),
            )
            conn.execute(
                "INSERT INTO cheque_books (account_reference, first_serial, last_serial,"
                " bank_key_id, certificate, issued_at) VALUES (?, ?, ?, ?, ?, ?)",
                (reference, first, last, key_id, signed, to_iso(clock_now())),
            )
            return cheque_pb2.IssueChequeBookResponse(
                book=cheque_pb2.ChequeBook(
                    account_reference=reference,
                    first_serial=first,
                    last_serial=last,
                    signed_certificate=signed,
                    bank_code=self._code,
                )
            )

        return step

    def stop(
        self, request: cheque_pb2.StopChequeRequest, caller_name: str
    ) -> Callable[[sqlite3.Connection], cheque_pb2.StopChequeResponse]:
        """The step recording a stop-payment order on one of the caller's cheques."""

        def step(conn: sqlite3.Connection) -> cheque_pb2.StopChequeResponse:
            _require_book(conn, request.account_reference, caller_name, request.serial)
            paid = conn.execute(
                "SELECT 1 FROM cheques_paid WHERE account_reference = ? AND serial = ?",
                (request.account_reference, request.serial),
            ).fetchone()
            if paid is not None:
                raise errors.FailedPrecondition(
                    "CHEQUE_ALREADY_PAID",
                    "this cheque was already paid: it can no longer be stopped",
                    serial=str(request.serial),
                )
            moment = clock_now()
            conn.execute(
                "INSERT OR IGNORE INTO cheque_stops (account_reference, serial, stopped_at)"
                " VALUES (?, ?, ?)",
                (request.account_reference, request.serial, to_iso(moment)),
            )
            return cheque_pb2.StopChequeResponse(
                serial=request.serial, stopped_at=timestamp(moment)
            )

        return step

    def close_account(
        self, request: cheque_pb2.CloseChequeAccountRequest, caller_name: str
    ) -> Callable[[sqlite3.Connection], cheque_pb2.CloseChequeAccountResponse]:
        """The step closing the caller's cheque account."""

        def step(conn: sqlite3.Connection) -> cheque_pb2.CloseChequeAccountResponse:
            _require_book(conn, request.account_reference, caller_name, None)
            moment = to_iso(clock_now())
            conn.execute(
                "UPDATE cheque_accounts SET closed_at = COALESCE(closed_at, ?)"
                " WHERE account_reference = ?",
                (moment, request.account_reference),
            )
            (closed_at,) = conn.execute(
                "SELECT closed_at FROM cheque_accounts WHERE account_reference = ?",
                (request.account_reference,),
            ).fetchone()
            return cheque_pb2.CloseChequeAccountResponse(closed_at=timestamp(closed_at))

        return step

    async def receive(
        self, request: pb.ReceiveChequePresentmentRequest
    ) -> pb.ReceiveChequePresentmentResponse:
        """Pay or return a presented cheque once; a repeat returns the first answer."""
        presentment = request.presentment
        for name, value in (
            ("presentment_id", presentment.presentment_id),
            ("presenting_agent", presentment.presenting_agent),
        ):
            if not value:
                raise errors.InvalidArgument(
                    "FIELD_INVALID", f"presentment.{name} is required", field=f"presentment.{name}"
                )
        refuse_malformed(presentment)
        if presentment.drawee_agent != self._code:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"presentment.drawee_agent is not this bank ({self._code})",
                field="presentment.drawee_agent",
            )
        key = f"presentment\x00{presentment.presenting_agent}\x00{presentment.presentment_id}"
        moment = clock_now()
        async with self._store.exclusive(key):
            return await self._store.claimed_transaction(
                "ReceiveChequePresentment",
                request.request_id,
                request,
                lambda conn: pay_presentment(conn, presentment, desk=self, now=moment, on_us=False),
            )

    @property
    def bank_code(self) -> str:
        """This bank's code."""
        return self._code


def _cheque_account(
    conn: sqlite3.Connection, account_id: str, customer_name: str
) -> tuple[bytes, int, bool]:
    """(account reference, next serial, closed) of a holder's cheque account, opened now
    if it has none."""
    row = conn.execute(
        "SELECT account_reference, next_serial, closed_at FROM cheque_accounts"
        " WHERE account_id = ?",
        (account_id,),
    ).fetchone()
    if row is None:
        reference = os.urandom(16)
        conn.execute(
            "INSERT INTO cheque_accounts (account_id, account_reference, customer_name,"
            " next_serial) VALUES (?, ?, ?, 1001)",
            (account_id, reference, customer_name),
        )
        return reference, 1001, False
    return bytes(row[0]), int(row[1]), row[2] is not None


def _require_book(
    conn: sqlite3.Connection, reference: bytes, customer_name: str, serial: int | None
) -> None:
    """NOT_FOUND, CHEQUE_NOT_FOUND unless the caller's cheque account has this reference
    (and, with a serial, a book holding it); another holder's reference answers the same."""
    query = (
        "SELECT 1 FROM cheque_accounts a JOIN cheque_books b"
        " ON b.account_reference = a.account_reference"
        " WHERE a.account_reference = ? AND a.customer_name = ?"
    )
    params: tuple[object, ...] = (reference, customer_name)
    if serial is not None:
        query += " AND ? BETWEEN b.first_serial AND b.last_serial"
        params = (*params, serial)
    if conn.execute(query, params).fetchone() is None:
        raise errors.NotFound(
            "CHEQUE_NOT_FOUND",
            "the caller has no cheque book with this account reference"
            + (" and serial" if serial is not None else ""),
        )


def pay_presentment(
    conn: sqlite3.Connection,
    presentment: cheque_pb2.ChequePresentment,
    *,
    desk: ChequeDesk,
    now: dt.datetime,
    on_us: bool,
) -> pb.ReceiveChequePresentmentResponse:
    """Decide a presented cheque once per (presenting agent, presentment id).

    Paid: the drawer's account is debited, to the reserve mirror (the
    settlement bank moves the reserves), or with on_us to suspense (this bank
    is also the acquirer, whose provisional credit comes from suspense in the
    same transaction); the serial is recorded paid; the drawer gets a notice.
    """
    digest = request_hash(presentment)
    row = conn.execute(
        "SELECT request_hash, status, reason_code FROM cheque_presentments"
        " WHERE presenting_agent = ? AND presentment_id = ?",
        (presentment.presenting_agent, presentment.presentment_id),
    ).fetchone()
    if row is not None:
        if bytes(row[0]) != digest:
            raise errors.AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                "this presentment_id was already presented with different content",
                presentment_id=presentment.presentment_id,
            )
        return _answer(presentment.presentment_id, str(row[1]), str(row[2]))
    try:
        reason = None
        _pay(conn, presentment, desk, now, on_us)
    except ChequeRefused as refused:
        reason = refused.reason
    status = "REJECTED" if reason else "ACCEPTED"
    conn.execute(
        "INSERT INTO cheque_presentments (presenting_agent, presentment_id, request_hash,"
        " status, reason_code, amount, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            presentment.presenting_agent,
            presentment.presentment_id,
            digest,
            status,
            reason or "",
            presentment.amount.amount_minor,
            to_iso(now),
        ),
    )
    return _answer(presentment.presentment_id, status, reason or "")


def _answer(presentment_id: str, status: str, reason: str) -> pb.ReceiveChequePresentmentResponse:
    return pb.ReceiveChequePresentmentResponse(
        presentment_id=presentment_id,
        status=_ACCEPTED if status == "ACCEPTED" else _REJECTED,
        reason_code=reason,
    )


def _pay(
    conn: sqlite3.Connection,
    presentment: cheque_pb2.ChequePresentment,
    desk: ChequeDesk,
    now: dt.datetime,
    on_us: bool,
) -> None:
    """Debit the drawer for the cheque, or raise ChequeRefused with the return reason."""
    try:
        verified = read_verified(
            presentment.signed_cheque, presentment.signed_certificate, desk.keys
        )
    except ChequeRefused as refused:
        # A certificate under a key this bank never published is not one it issued: for
        # the drawee that is SIGNATURE_INVALID (DRAWEE_KEY_UNKNOWN is the payee's reason).
        raise ChequeRefused("SIGNATURE_INVALID", refused.message) from None
    written, certificate = verified.cheque, verified.certificate
    if certificate.bank_code != desk.bank_code:
        raise ChequeRefused("SIGNATURE_INVALID", "the cheque is not drawn on this bank")
    if (
        presentment.amount.amount_minor != written.amount_minor
        or presentment.amount.currency_code != written.currency_code
        or presentment.end_to_end_id != written.order_reference
    ):
        raise ChequeRefused("SIGNATURE_INVALID", "the presentment does not match the cheque")
    book = conn.execute(
        "SELECT a.account_id, a.closed_at, b.certificate FROM cheque_accounts a"
        " JOIN cheque_books b ON b.account_reference = a.account_reference"
        " WHERE a.account_reference = ? AND ? BETWEEN b.first_serial AND b.last_serial",
        (written.account_reference, written.serial),
    ).fetchone()
    if book is None or bytes(book[2]) != verified.signed_certificate:
        raise ChequeRefused("SIGNATURE_INVALID", "this bank issued no such cheque book")
    account_id, closed_at, _ = book
    if closed_at is not None:
        raise ChequeRefused("ACCOUNT_CLOSED", "the drawer closed the cheque account")
    check_endorsement(
        presentment.signed_endorsement,
        presentment.signed_cheque,
        written,
        presentment.presenting_agent,
        desk.keys,
    )
    check_dates(written, now.date(), desk.stale_days)
    key = (written.account_reference, written.serial)
    if conn.execute(
        "SELECT 1 FROM cheques_paid WHERE account_reference = ? AND serial = ?", key
    ).fetchone():
        raise ChequeRefused("DUPLICATE_PRESENTMENT", "this cheque was already paid")
    if conn.execute(
        "SELECT 1 FROM cheque_stops WHERE account_reference = ? AND serial = ?", key
    ).fetchone():
        raise ChequeRefused("PAYMENT_STOPPED", "the drawer stopped this cheque")
    description = f"cheque {written.serial} to {written.payee}"
    try:
        transfer_id = ledger.transfer(
            conn,
            account_id,
            SUSPENSE if on_us else RESERVE,
            written.amount_minor,
            written.currency_code,
            now=now,
            order_id=written.order_reference,
            description=description,
        )
    except (ledger.LimitExceeded, AmountOverflow):
        raise ChequeRefused("INSUFFICIENT_FUNDS", "the drawer's account cannot pay it") from None
    except ledger.LedgerError:
        raise ChequeRefused(
            "SIGNATURE_INVALID", "the cheque's currency is not the account's"
        ) from None
    conn.execute(
        "INSERT INTO cheques_paid (account_reference, serial, presenting_agent, presentment_id,"
        " amount, ledger_transfer_id, paid_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            *key,
            presentment.presenting_agent,
            presentment.presentment_id,
            written.amount_minor,
            transfer_id,
            to_iso(now),
        ),
    )
    drawer = ledger.account(conn, account_id)
    assert drawer is not None and drawer.holder_uri is not None  # a cheque account's holder
    emit_account_entry(
        conn,
        drawer.holder_uri,
        account=common_pb2.AccountRef(bank_code=desk.bank_code, account_id=account_id),
        credit=False,
        amount=money(written.amount_minor, written.currency_code),
        order_id=written.order_reference,
        instruction_id=presentment.presentment_id,
        balance_after=money(drawer.booked, written.currency_code),
        description=description,
    )
