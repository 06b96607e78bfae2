"""The issuer: authorizing, capturing, voiding and reporting holds.

Authorization checks the instruction against what the bank knows (instrument,
holder, enrolled key, funds), applies the risk rules, and places the hold, all
in one transaction; that transaction also spends the signed instruction, so
one instruction places at most one hold, whatever request carries it. Capture
posts the hold and hands the resulting credit transfer to
:class:`bank.outgoing.OutgoingTransfers`. A sale (an authorization asking for
capture) does both in the one transaction when no challenge is needed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

from google.protobuf.message import DecodeError
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import common_pb2, settlement_pb2

from bank import ledger
from bank.challenges import open_challenge
from bank.holds import (
    AUTHORIZED,
    CAPTURED,
    CHALLENGE_PENDING,
    EXPIRED,
    OPEN_STATUSES,
    VOIDED,
    find_hold,
    holder_uri,
    not_capturable,
    release_hold,
    require_hold,
    spend_instruction,
    sweep_expired_holds,
)
from bank.notices import emit_account_entry, emit_hold_notice, money
from bank.opening import SUSPENSE, instrument_hash
from bank.outgoing import PENDING, OutgoingTransfers, record_outgoing
from payment import errors
from payment.clock import from_iso, timestamp, to_iso
from payment.clock import now as clock_now
from payment.config import NetworkConfig, NodeConfig
from payment.envelope import load_ed25519_public, verify_dual
from payment.money import require_amount
from payment.storage import Store

__all__ = ["Issuer"]

_SUPPORTED_KINDS = (common_pb2.INSTRUMENT_KIND_BANK_ACCOUNT, common_pb2.INSTRUMENT_KIND_CARD)
_SIGNATURE_LEN = 64


class Issuer:
    """The customer's bank side of a payment, over the bank's store."""

    def __init__(
        self, store: Store, network: NetworkConfig, node: NodeConfig, outgoing: OutgoingTransfers
    ) -> None:
        if node.bank_code is None:
            raise ValueError(f"node {node.name} has no bank_code")
        self._store = store
        self._network = network
        self._code = node.bank_code
        self._outgoing = outgoing

    async def authorize(
        self,
        request: authz.AuthorizeHoldRequest,
        caller_uri: str,
        *,
        now: dt.datetime | None = None,
    ) -> authz.AuthorizeHoldResponse:
        """Verify, check funds and risk, and place a hold (at most once per request_id).

        A retry of a request_id replays its first answer; the same signed
        instruction under another request_id, once it has placed a hold, is
        refused ALREADY_EXISTS INSTRUCTION_REPLAYED and writes nothing.

        With ``capture`` set, an approved hold is posted in the same
        transaction (a sale) and its credit transfer sent for settlement, as
        :meth:`capture` does; a replay answers with the settlement state as it
        is now.
        """
        moment = now or clock_now()
        response = await self._store.once(
            f"AuthorizeHold|{caller_uri}",
            request.request_id,
            request,
            authz.AuthorizeHoldResponse,
            lambda conn: self._authorize(conn, request, moment),
        )
        if response.HasField("capture"):
            captured = response.capture
            if captured.settlement_state == authz.SETTLEMENT_STATE_PENDING:
                state, reason = await self._outgoing.deliver(captured.instruction_id)
                captured.settlement_state = _settlement_state(state)
                captured.settlement_reason = reason
        return response

    async def capture(
        self, request: authz.CaptureHoldRequest, caller_uri: str, *, now: dt.datetime | None = None
    ) -> authz.CaptureHoldResponse:
        """Post an authorized hold and send its credit transfer for settlement.

        Capturing a captured hold is a no-op, so a replay answers with the
        transfer's settlement state as it is now, not as it was first.
        """
        moment = now or clock_now()
        instruction_id, state, reason = await self._store.claimed_transaction(
            f"CaptureHold|{caller_uri}",
            request.request_id,
            request,
            lambda conn: self._capture(conn, request.hold_id, moment),
        )
        if state == PENDING:
            state, reason = await self._outgoing.deliver(instruction_id)
        return authz.CaptureHoldResponse(
            hold_status=authz.HOLD_STATUS_CAPTURED,
            instruction_id=instruction_id,
            settlement_state=_settlement_state(state),
            settlement_reason=reason,
        )

    async def void(self, request: authz.VoidHoldRequest, caller_uri: str) -> authz.VoidHoldResponse:
        """Release an uncaptured hold; voiding a voided hold again is a no-op."""
        return await self._store.once(
            f"VoidHold|{caller_uri}",
            request.request_id,
            request,
            authz.VoidHoldResponse,
            lambda conn: self._void(conn, request.hold_id),
        )

    async def get_hold(self, request: authz.GetHoldRequest) -> authz.GetHoldResponse:
        """A hold's state, by hold id or by the gateway's transaction id."""
        return await self._store.read(lambda conn: self._get_hold(conn, request))

    async def sweep(self, now: dt.datetime | None = None) -> int:
        """Expire (or decline) every hold past its time; returns how many were released."""
        moment = now or clock_now()
        return await self._store.transaction(lambda conn: sweep_expired_holds(conn, moment))

    def _authorize(
        self, conn: sqlite3.Connection, request: authz.AuthorizeHoldRequest, now: dt.datetime
    ) -> authz.AuthorizeHoldResponse:
        instruction = _parse_instruction(request.instruction)
        instrument = instruction.instrument
        if instrument.bank_code != self._code:
            raise errors.InvalidArgument(
                "UNKNOWN_BANK_CODE", f"the instrument is not issued by this bank ({self._code})"
            )
        if instrument.kind not in _SUPPORTED_KINDS:
            raise errors.InvalidArgument(
                "INSTRUMENT_KIND_UNSUPPORTED", "only bank accounts and cards are accepted here"
            )
        found = conn.execute(
            "SELECT account_id, customer_name FROM instruments WHERE instrument_hash = ?",
            (instrument_hash(instrument.kind, instrument.number),),
        ).fetchone()
        if found is None:
            raise errors.NotFound("INSTRUMENT_NOT_FOUND", "no such instrument at this bank")
        account_id, holder = found
        if holder != instruction.customer_name:
            raise errors.PermissionDenied(
                "INSTRUMENT_HOLDER_MISMATCH", "the instrument is not held by the paying customer"
            )
        self._verify_signature(conn, holder, request, instruction)
        amount = instruction.amount
        if amount.currency_code != self._network.currency:
            raise errors.InvalidArgument(
                "CURRENCY_MISMATCH",
                f"the network settles in {self._network.currency}, not {amount.currency_code!r}",
            )
        require_amount(amount.amount_minor, "instruction.amount")
        _check_request_fields(request, instruction)
        creditor = request.creditor_account
        if (creditor.bank_code, creditor.account_id) == (self._code, account_id):
            raise errors.InvalidArgument(
                "SELF_TRANSFER",
                "creditor_account is the paying account itself: a payment moves money"
                " between two accounts",
                field="creditor_account",
            )
        if find_hold(conn, transaction_id=request.transaction_id) is not None:
            raise errors.AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                "this transaction_id already has a hold; ask GetHold for it",
                transaction_id=request.transaction_id,
            )
        hold_id = str(uuid.uuid4())
        spend_instruction(
            conn,
            request.instruction,
            hold_id=hold_id,
            transaction_id=request.transaction_id,
            now=now,
        )
        risk = self._network.risk
        expires_at = now + dt.timedelta(seconds=risk.hold_ttl_seconds)
        try:
            transfer_id = ledger.transfer(
                conn,
                account_id,
                SUSPENSE,
                amount.amount_minor,
                amount.currency_code,
                now=now,
                order_id=instruction.order_id,
                description=f"purchase at {request.merchant_name}",
                pending=True,
                expires_at=expires_at,
            )
        except ledger.LimitExceeded:
            raise errors.FailedPrecondition(
                "INSUFFICIENT_FUNDS", "the account's available balance is below the amount"
            ) from None
        challenged = amount.amount_minor > risk.challenge_above_minor or (
            _recent_authorizations(conn, holder, now, risk.velocity_window_seconds)
            >= risk.velocity_max_payments
        )
        conn.execute(
            "INSERT INTO holds (hold_id, transaction_id, order_id, merchant_name, customer_name,"
            " account_id, creditor_bank_code, creditor_account_id, amount, currency, status,"
            " ledger_transfer_id, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                hold_id,
                request.transaction_id,
                instruction.order_id,
                request.merchant_name,
                holder,
                account_id,
                request.creditor_account.bank_code,
                request.creditor_account.account_id,
                amount.amount_minor,
                amount.currency_code,
                CHALLENGE_PENDING if challenged else AUTHORIZED,
                transfer_id,
                to_iso(now),
                to_iso(expires_at),
            ),
        )
        recipient = holder_uri(conn, account_id)
        emit_hold_notice(
            conn,
            recipient,
            hold_id=hold_id,
            order_id=instruction.order_id,
            event="placed",
            amount=amount,
        )
        response = authz.AuthorizeHoldResponse(
            hold_id=hold_id,
            decision=authz.AUTHORIZATION_DECISION_APPROVED,
            expires_at=timestamp(expires_at),
        )
        if request.capture and not challenged:
            instruction_id, _, _ = self._capture(conn, hold_id, now)
            response.capture.CopyFrom(
                authz.CaptureHoldResponse(
                    hold_status=authz.HOLD_STATUS_CAPTURED,
                    instruction_id=instruction_id,
                    settlement_state=authz.SETTLEMENT_STATE_PENDING,
                )
            )
        if challenged:
            response.decision = authz.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
            response.challenge.CopyFrom(
                open_challenge(
                    conn,
                    hold_id=hold_id,
                    customer=holder,
                    recipient=recipient,
                    merchant_name=request.merchant_name,
                    amount=amount,
                    issuer_code=self._code,
                    ttl_seconds=risk.challenge_ttl_seconds,
                    now=now,
                )
            )
        return response

    def _verify_signature(
        self,
        conn: sqlite3.Connection,
        customer: str,
        request: authz.AuthorizeHoldRequest,
        instruction: common_pb2.PaymentInstruction,
    ) -> None:
        row = conn.execute(
            "SELECT public_key_hex FROM customer_keys WHERE customer_name = ?", (customer,)
        ).fetchone()
        valid = (
            row is not None
            and len(request.dual_signature) == _SIGNATURE_LEN
            and verify_dual(
                load_ed25519_public(row[0]),
                request.dual_signature,
                instruction.order_digest,
                request.instruction,
            )
        )
        if not valid:
            raise errors.InvalidArgument(
                "DUAL_SIGNATURE_INVALID",
                "the dual signature does not verify with the customer's enrolled key",
            )

    def _capture(
        self, conn: sqlite3.Connection, hold_id: str, now: dt.datetime
    ) -> tuple[str, str, str]:
        hold = require_hold(conn, hold_id)
        if hold.status == CAPTURED:
            state, reason = conn.execute(
                "SELECT settlement_state, reason_code FROM outgoing_transfers WHERE hold_id = ?",
                (hold_id,),
            ).fetchone()
            return str(hold.instruction_id), str(state), str(reason)
        if hold.status == CHALLENGE_PENDING:
            raise errors.FailedPrecondition(
                "CHALLENGE_NOT_ANSWERED", "the customer has not answered the challenge yet"
            )
        if hold.status == EXPIRED or (
            hold.status == AUTHORIZED and from_iso(hold.expires_at) < now
        ):
            raise errors.FailedPrecondition("HOLD_EXPIRED", "the hold expired before capture")
        if hold.status != AUTHORIZED:
            raise not_capturable(conn, hold)
        ledger.post_pending(conn, hold.ledger_transfer_id, now=now)
        instruction_id = str(uuid.uuid4())
        credit_transfer = settlement_pb2.CreditTransfer(
            instruction_id=instruction_id,
            end_to_end_id=hold.order_id,
            amount=money(hold.amount, hold.currency),
            debtor_agent=self._code,
            debtor_account=common_pb2.AccountRef(bank_code=self._code, account_id=hold.account_id),
            debtor_name=hold.customer_name,
            creditor_agent=hold.creditor_bank_code,
            creditor_account=common_pb2.AccountRef(
                bank_code=hold.creditor_bank_code, account_id=hold.creditor_account_id
            ),
            creditor_name=hold.merchant_name,
            remittance_information=f"order {hold.order_id}",
            created_at=timestamp(now),
        )
        record_outgoing(conn, credit_transfer, account_id=hold.account_id, now=now, hold_id=hold_id)
        conn.execute(
            "UPDATE holds SET status = ?, instruction_id = ? WHERE hold_id = ?",
            (CAPTURED, instruction_id, hold_id),
        )
        account = ledger.account(conn, hold.account_id)
        assert account is not None  # the hold's transfer needed it
        emit_account_entry(
            conn,
            holder_uri(conn, hold.account_id),
            account=credit_transfer.debtor_account,
            credit=False,
            amount=credit_transfer.amount,
            order_id=hold.order_id,
            instruction_id=instruction_id,
            balance_after=money(account.booked, hold.currency),
            description=f"purchase at {hold.merchant_name}",
        )
        return instruction_id, PENDING, ""

    def _void(self, conn: sqlite3.Connection, hold_id: str) -> authz.VoidHoldResponse:
        hold = require_hold(conn, hold_id)
        if hold.status in OPEN_STATUSES:
            release_hold(conn, hold, status=VOIDED, event="voided", challenge_status="canceled")
        elif hold.status != VOIDED:
            raise errors.FailedPrecondition(
                "HOLD_NOT_VOIDABLE", f"the hold is {hold.status.lower()} and cannot be voided"
            )
        return authz.VoidHoldResponse(hold_status=authz.HOLD_STATUS_VOIDED)

    def _get_hold(
        self, conn: sqlite3.Connection, request: authz.GetHoldRequest
    ) -> authz.GetHoldResponse:
        hold = find_hold(conn, hold_id=request.hold_id, transaction_id=request.transaction_id)
        if hold is None:
            raise errors.NotFound("HOLD_NOT_FOUND", "no such hold at this bank")
        response = authz.GetHoldResponse(
            hold_id=hold.hold_id,
            status=hold.status_proto,
            amount=money(hold.amount, hold.currency),
            expires_at=timestamp(hold.expires_at),
            refunded_total=money(hold.refunded_minor, hold.currency),
        )
        row = conn.execute(
            "SELECT settlement_state FROM outgoing_transfers WHERE hold_id = ?", (hold.hold_id,)
        ).fetchone()
        if row is not None:
            response.settlement_state = authz.SettlementState.Value(f"SETTLEMENT_STATE_{row[0]}")
        return response


def _settlement_state(state: str) -> authz.SettlementState.ValueType:
    return authz.SettlementState.Value(f"SETTLEMENT_STATE_{state}")


def _parse_instruction(blob: bytes) -> common_pb2.PaymentInstruction:
    try:
        return common_pb2.PaymentInstruction.FromString(blob)
    except DecodeError:
        raise errors.InvalidArgument(
            "INSTRUCTION_MALFORMED", "instruction is not a PaymentInstruction"
        ) from None


def _check_request_fields(
    request: authz.AuthorizeHoldRequest, instruction: common_pb2.PaymentInstruction
) -> None:
    if not request.transaction_id:
        raise errors.InvalidArgument(
            "FIELD_INVALID", "transaction_id is required", field="transaction_id"
        )
    if request.merchant_name != instruction.merchant_name:
        raise errors.InvalidArgument(
            "MERCHANT_MISMATCH", "merchant_name differs from the instruction's merchant"
        )
    creditor = request.creditor_account
    if not creditor.bank_code or not creditor.account_id:
        raise errors.InvalidArgument(
            "FIELD_INVALID",
            "creditor_account needs a bank code and an account id",
            field="creditor_account",
        )


def _recent_authorizations(
    conn: sqlite3.Connection, customer: str, now: dt.datetime, window_seconds: int
) -> int:
    since = to_iso(now - dt.timedelta(seconds=window_seconds))
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM holds WHERE customer_name = ? AND created_at >= ?",
        (customer, since),
    ).fetchone()
    return int(count)
