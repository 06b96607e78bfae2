"""The acquirer's side of cheques: deposits, provisional credits and cash letters.

A merchant deposits a cheque it endorsed to this bank (:meth:`Collection.deposit`).
The bank checks the endorsement and the cheque's form (the drawee checks the
rest), records the deposit and gives a **provisional credit**: a pending ledger
transfer to the merchant's account, which counts in neither its booked nor its
available balance. Then:

- a cheque drawn on this bank is paid or returned at once, in the same
  transaction, by the drawee's own desk (:func:`bank.cheques.pay_presentment`,
  the money through suspense);
- any other cheque waits IN_CLEARING until the next **cash letter**
  (:meth:`Collection.present_pending`): every waiting deposit goes to the
  settlement bank in one SubmitChequePresentments call (up to 256), each with
  its deposit id as presentment id and request id, so a resent letter is the
  same presentments. The letter goes at once after a deposit (one at a time;
  deposits made meanwhile go in the next) and again every retry interval
  while any deposit waits.

Each answer is booked once (:func:`apply_presentment_answer`): PAID posts the
provisional credit (booked and available, with an AccountEntryNotice);
RETURNED voids it. Either way the merchant gets a ChequeNotice in the same
transaction. PENDING or no answer leaves the deposit waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Sequence

from interbank.v1 import cheque_pb2, common_pb2, notification_pb2
from interbank.v1 import settlement_pb2 as pb

from bank import ledger
from bank.cheques import ChequeDesk, pay_presentment
from bank.messages import StatusAnswer
from bank.notices import emit_account_entry, money
from bank.opening import RESERVE, SUSPENSE
from payment import cheque, errors
from payment.cheque import ChequeError
from payment.cheque_trust import ChequeRefused, check_endorsement
from payment.clock import now as clock_now
from payment.clock import to_iso
from payment.config import NetworkConfig
from payment.logs import get_logger
from payment.money import require_amount
from payment.notifications import emit
from payment.storage import Store

__all__ = ["CASH_LETTER_MAX", "Collection", "PresentLetter", "apply_presentment_answer"]

CASH_LETTER_MAX = 256
"""The most presentments in one cash letter (SubmitChequePresentments' bound)."""

PresentLetter = Callable[
    [Sequence[pb.SubmitChequePresentmentRequest]], Awaitable[list[StatusAnswer | None]]
]
"""Sends a cash letter to the settlement bank; each entry's answer, None when unknown."""

IN_CLEARING, PAID, RETURNED = "IN_CLEARING", "PAID", "RETURNED"
_log = get_logger("paynet.bank.collection")


class Collection:
    """ChequeService.DepositCheque and the cash letters, over the bank's store."""

    def __init__(
        self, store: Store, network: NetworkConfig, desk: ChequeDesk, present: PresentLetter
    ) -> None:
        self._store = store
        self._network = network
        self._desk = desk
        self._present = present
        self._letter: asyncio.Task[int] | None = None
        self._again = False

    async def deposit(
        self,
        request: cheque_pb2.DepositChequeRequest,
        caller_uri: str,
        caller_name: str,
        *,
        now: dt.datetime | None = None,
    ) -> cheque_pb2.DepositChequeResponse:
        """Record a deposit and its provisional credit (a repeat: the deposit as it is now)."""
        moment = now or clock_now()
        written = self._check(request, caller_name)
        presentment_fields = (written, request)

        def step(conn: sqlite3.Connection) -> cheque_pb2.DepositChequeResponse:
            return self._record(conn, presentment_fields, caller_uri, caller_name, moment)

        key = f"deposit\x00{cheque.cheque_digest(request.signed_cheque).hex()}"
        async with self._store.exclusive(key):
            response = await self._store.claimed_transaction(
                f"DepositCheque|{caller_name}", request.request_id, request, step
            )
        if response.deposit.state == cheque_pb2.CHEQUE_STATE_IN_CLEARING:
            self.send_letter()
        return response

    def _check(self, request: cheque_pb2.DepositChequeRequest, payee: str) -> cheque.Cheque:
        """The cheque, if its form and endorsement allow a deposit; INVALID_ARGUMENT if not."""
        try:
            written = cheque.read_cheque(request.signed_cheque).document
        except ChequeError as exc:
            raise errors.InvalidArgument(
                "FIELD_INVALID", f"signed_cheque: {exc.field} is invalid", field="signed_cheque"
            ) from None
        try:
            cheque.read_certificate(request.signed_certificate)
        except ChequeError as exc:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"signed_certificate: {exc.field} is invalid",
                field="signed_certificate",
            ) from None
        require_amount(written.amount_minor, "signed_cheque.amount_minor")
        if written.currency_code != self._network.currency:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"the cheque is in {written.currency_code}; this network clears"
                f" {self._network.currency} only",
                field="signed_cheque.currency_code",
            )
        if self._network.bank_by_code(written.drawee_bank_code) is None:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "the cheque is drawn on a bank that is no member of this network",
                field="signed_cheque.drawee_bank_code",
            )
        if written.payee != payee:
            raise errors.InvalidArgument(
                "ENDORSEMENT_INVALID", "the cheque pays someone else: only its payee deposits it"
            )
        try:
            check_endorsement(
                request.signed_endorsement,
                request.signed_cheque,
                written,
                self._desk.bank_code,
                self._desk.keys,
            )
        except ChequeRefused as refused:
            raise errors.InvalidArgument(refused.reason, refused.message) from None
        return written

    def _record(
        self,
        conn: sqlite3.Connection,
        checked: tuple[cheque.Cheque, cheque_pb2.DepositChequeRequest],
        caller_uri: str,
        caller_name: str,
        now: dt.datetime,
    ) -> cheque_pb2.DepositChequeResponse:
        written, request = checked
        request_key = f"{caller_name}\x00{request.request_id}"
        digest = cheque.cheque_digest(request.signed_cheque)
        row = conn.execute(
            "SELECT deposit_id, request_key FROM cheque_deposits WHERE cheque_digest = ?",
            (digest,),
        ).fetchone()
        if row is not None:
            if row[1] != request_key:
                raise errors.AlreadyExists(
                    "CHEQUE_ALREADY_DEPOSITED",
                    "this cheque was already deposited under another request_id",
                    deposit_id=str(row[0]),
                )
            return cheque_pb2.DepositChequeResponse(deposit=deposit_of(conn, str(row[0])))
        account = conn.execute(
            "SELECT account_id FROM accounts WHERE kind = 'holder' AND holder_uri = ?",
            (caller_uri,),
        ).fetchone()
        if account is None:
            raise errors.PermissionDenied(
                "ACCOUNT_NOT_HELD_BY_CALLER", "the caller holds no account at this bank"
            )
        deposit_id = str(uuid.uuid4())
        on_us = written.drawee_bank_code == self._desk.bank_code
        presentment = cheque_pb2.ChequePresentment(
            presentment_id=deposit_id,
            presenting_agent=self._desk.bank_code,
            drawee_agent=written.drawee_bank_code,
            amount=money(written.amount_minor, written.currency_code),
            end_to_end_id=written.order_reference,
            signed_cheque=request.signed_cheque,
            signed_certificate=request.signed_certificate,
            signed_endorsement=request.signed_endorsement,
        )
        credit_id = ledger.transfer(
            conn,
            SUSPENSE if on_us else RESERVE,
            account[0],
            written.amount_minor,
            written.currency_code,
            now=now,
            order_id=written.order_reference,
            description=f"cheque {written.serial} on {written.drawee_bank_code}",
            pending=True,
        )
        conn.execute(
            "INSERT INTO cheque_deposits (deposit_id, request_key, cheque_digest, account_id,"
            " order_id, drawee_bank_code, serial, amount, presentment, state,"
            " ledger_transfer_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deposit_id,
                request_key,
                digest,
                account[0],
                written.order_reference,
                written.drawee_bank_code,
                written.serial,
                written.amount_minor,
                presentment.SerializeToString(),
                IN_CLEARING,
                credit_id,
                to_iso(now),
            ),
        )
        if on_us:
            # The drawee is this bank: it pays (or returns) the cheque now, from the
            # drawer's account to suspense, where the provisional credit comes from.
            report = pay_presentment(conn, presentment, desk=self._desk, now=now, on_us=True)
            status = pb.TransferStatus.Name(report.status).removeprefix("TRANSFER_STATUS_")
            apply_presentment_answer(conn, deposit_id, (status, report.reason_code), now=now)
        return cheque_pb2.DepositChequeResponse(deposit=deposit_of(conn, deposit_id))

    def send_letter(self) -> None:
        """Send a cash letter now, or right after the one in flight."""
        if self._letter is not None and not self._letter.done():
            self._again = True
            return
        self._letter = asyncio.get_running_loop().create_task(self._letters())

    async def _letters(self) -> int:
        decided = 0
        while True:
            self._again = False
            decided += await self.present_pending()
            if not self._again:
                return decided

    async def close(self) -> None:
        """Wait for a cash letter in flight to end (or cancel it)."""
        if self._letter is not None and not self._letter.done():
            self._letter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._letter

    async def present_pending(self) -> int:
        """Present every deposit IN_CLEARING in cash letters; returns how many got decided."""
        rows = await self._store.read(
            lambda conn: conn.execute(
                "SELECT deposit_id, presentment FROM cheque_deposits WHERE state = ?"
                " ORDER BY created_at",
                (IN_CLEARING,),
            ).fetchall()
        )
        decided = 0
        for start in range(0, len(rows), CASH_LETTER_MAX):
            letter = rows[start : start + CASH_LETTER_MAX]
            entries = [
                pb.SubmitChequePresentmentRequest(
                    request_id=str(deposit_id),
                    presentment=cheque_pb2.ChequePresentment.FromString(blob),
                )
                for deposit_id, blob in letter
            ]
            answers = await self._present(entries)
            for (deposit_id, _), answer in zip(letter, answers, strict=True):
                if answer is None or answer[0] not in ("ACCEPTED", "REJECTED"):
                    continue
                state = await self._store.transaction(_applying(str(deposit_id), answer))
                decided += 1
                _log.info("cheque.decided", deposit_id=deposit_id, state=state)
        return decided


def _applying(deposit_id: str, answer: StatusAnswer) -> Callable[[sqlite3.Connection], str]:
    return lambda conn: apply_presentment_answer(conn, deposit_id, answer, now=clock_now())


def apply_presentment_answer(
    conn: sqlite3.Connection, deposit_id: str, answer: StatusAnswer, *, now: dt.datetime
) -> str:
    """Book the drawee's answer for a deposit once; returns its state now.

    ACCEPTED posts the provisional credit (PAID), REJECTED voids it (RETURNED,
    with the reason); the merchant gets a ChequeNotice either way. A deposit
    already decided is left as it is.
    """
    row = conn.execute(
        "SELECT state, ledger_transfer_id, account_id, presentment FROM cheque_deposits"
        " WHERE deposit_id = ?",
        (deposit_id,),
    ).fetchone()
    if row is None:
        raise ledger.LedgerError(f"no cheque deposit {deposit_id}")
    state, credit_id, account_id, blob = row
    status, reason = answer
    if state != IN_CLEARING or status not in ("ACCEPTED", "REJECTED"):
        return str(state)
    if status == "ACCEPTED":
        ledger.post_pending(conn, credit_id, now=now)
        new_state, reason = PAID, ""
    else:
        ledger.release_pending(conn, credit_id)
        new_state, reason = RETURNED, reason or "REJECTED"
    conn.execute(
        "UPDATE cheque_deposits SET state = ?, return_reason = ?, decided_at = ?"
        " WHERE deposit_id = ?",
        (new_state, reason, to_iso(now), deposit_id),
    )
    holder = ledger.account(conn, account_id)
    assert holder is not None and holder.holder_uri is not None  # a merchant's account
    deposit = deposit_of(conn, deposit_id)
    if new_state == PAID:
        description = conn.execute(
            "SELECT description FROM transfers WHERE transfer_id = ?", (credit_id,)
        ).fetchone()[0]
        presentment = cheque_pb2.ChequePresentment.FromString(blob)
        emit_account_entry(
            conn,
            holder.holder_uri,
            account=common_pb2.AccountRef(
                bank_code=presentment.presenting_agent, account_id=account_id
            ),
            credit=True,
            amount=deposit.amount,
            order_id=deposit.order_id,
            instruction_id=deposit_id,
            balance_after=money(holder.booked, holder.currency),
            description=str(description),
        )
    emit(
        conn,
        holder.holder_uri,
        notification_pb2.SubscribeResponse(cheque=notification_pb2.ChequeNotice(deposit=deposit)),
    )
    return new_state


def deposit_of(conn: sqlite3.Connection, deposit_id: str) -> cheque_pb2.ChequeDeposit:
    """A deposit as it is now."""
    row = conn.execute(
        "SELECT d.drawee_bank_code, d.serial, d.amount, a.currency, d.order_id, d.state,"
        " d.return_reason FROM cheque_deposits d JOIN accounts a ON a.account_id = d.account_id"
        " WHERE d.deposit_id = ?",
        (deposit_id,),
    ).fetchone()
    drawee, serial, amount, currency, order_id, state, reason = row
    return cheque_pb2.ChequeDeposit(
        deposit_id=deposit_id,
        drawee_bank_code=drawee,
        serial=serial,
        amount=money(amount, currency),
        order_id=order_id,
        state=cheque_pb2.ChequeState.Value(f"CHEQUE_STATE_{state}"),
        return_reason=reason,
    )
