"""Recovery: what an unknown outcome, a crash or a lost answer left unfinished is
settled by asking the issuer, never by guessing.

An authorization whose outcome stayed unknown is resolved by looking its hold
up at the issuer (GetHold by transaction id) at once
(:meth:`Recovery.settle_unknown`). One a crash left AUTHORIZING, and a capture
or void noted as pending whose answer was never recorded, are finished on start
and then periodically (:meth:`Recovery.resume_pending_calls`). Every call
carries the deadline of ``[timeouts] node_call_seconds``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Container
from functools import partial

from interbank.v1 import authorization_pb2

from gateway import store as records
from gateway.holds import Holds
from gateway.issuers import IssuerLookup
from gateway.store import TransactionRecord
from payment import errors
from payment.clock import to_iso
from payment.config import NetworkConfig, NodeConfig
from payment.errors import outcome_unknown, relayed
from payment.logs import get_logger
from payment.storage import Store

__all__ = ["Recovery"]

_log = get_logger("paynet.gateway")

_OPEN = (authorization_pb2.HOLD_STATUS_AUTHORIZED, authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING)


class Recovery:
    """Settles authorizations, captures and voids whose issuer answers were never recorded."""

    def __init__(
        self,
        store: Store,
        network: NetworkConfig,
        issuers: IssuerLookup,
        holds: Holds,
        *,
        clock: Callable[[], dt.datetime],
        authorizing: Container[str],
        no_hold_after_s: float,
    ) -> None:
        """authorizing: the transactions this process is authorizing now, left alone.
        no_hold_after_s: age after which an interrupted authorization the issuer has
        no hold for gets none (every attempt that could still place one has ended)."""
        self._store = store
        self._issuers = issuers
        self._holds = holds
        self._clock = clock
        self._authorizing = authorizing
        self._no_hold_after_s = no_hold_after_s
        self._call_timeout_s = network.timeouts.node_call_seconds

    async def settle_unknown(
        self, bank: NodeConfig, transaction_id: str, reason: str, *, void_open: bool
    ) -> None:
        """Record what became of an authorization whose outcome stayed unknown, if the
        issuer can say (GetHold by transaction id); never guess.

        No hold: the transaction failed with reason. A hold still open, on a first
        attempt, is voided (the transaction failed with reason), so no money stays
        held for a payment the merchant will find failed; on a retry of a recorded
        transaction, or if the void does not go through, it is recorded as found,
        for the merchant to capture or void. A posted hold (a sale) is recorded as
        found: the money moved, so the transaction is not a failure, and the
        merchant's retry or lookup finds the sale. If the issuer cannot say, the
        transaction stays AUTHORIZING and :meth:`resume_pending_calls` asks again.
        """
        issuer = self._issuers(bank)
        try:
            found = await self._holds.look_up_hold(issuer, transaction_id)
        except errors.PaynetError:
            _log.warning("authorization.resolved", transaction_id=transaction_id, hold="unknown")
            return
        if found is None:
            await self._store.transaction(
                lambda conn: records.mark_failed(conn, transaction_id, reason)
            )
            _log.warning("authorization.resolved", transaction_id=transaction_id, hold="none")
            return
        voided = False
        if void_open and found.status in _OPEN:
            try:
                await relayed(
                    issuer.VoidHold(
                        authorization_pb2.VoidHoldRequest(
                            request_id=f"void:{transaction_id}", hold_id=found.hold_id
                        ),
                        timeout=self._call_timeout_s,
                    )
                )
                voided = True
            except errors.PaynetError as exc:
                _log.warning(
                    "authorization.void_failed", transaction_id=transaction_id, reason=exc.reason
                )

        def settle(conn: sqlite3.Connection) -> None:
            if voided:
                records.mark_failed(conn, transaction_id, reason)
            else:
                records.record_hold(conn, transaction_id, found.hold_id, found.status)

        await self._store.transaction(settle)
        _log.warning(
            "authorization.resolved",
            transaction_id=transaction_id,
            hold=found.hold_id,
            hold_status=authorization_pb2.HoldStatus.Name(found.status),
            voided=voided,
        )

    async def resume_pending_calls(self, older_than_s: float = 0.0) -> int:
        """Finish authorizations, captures and voids whose issuer answers were never recorded.

        Authorizations a crash interrupted are settled by asking the issuer
        (:meth:`_resolve_interrupted_authorizations`). A crash (or a lost
        answer) between asking the issuer for a capture or void and recording
        its answer leaves a pending call. It is asked again with the same
        request_id, so the issuer replays what it did, or does it now. A
        definite refusal ends the call with the hold's status read from the
        issuer. Runs on start and then periodically; returns how many were finished.
        """
        finished = await self._resolve_interrupted_authorizations()
        cutoff = to_iso(self._clock() - dt.timedelta(seconds=older_than_s))
        pending = await self._store.read(lambda conn: records.pending_calls(conn, cutoff))
        for transaction_id, action in pending:
            record = await self._store.read(
                partial(records.load_transaction, transaction_id=transaction_id)
            )
            if record is None:
                continue
            try:
                if action == "capture":
                    await self._holds.capture_hold(record)
                else:
                    await self._holds.void_hold(record)
            except errors.PaynetError as exc:
                if outcome_unknown(exc):
                    continue  # still unknown: the next round asks again
                await self._settle_refused_call(record, action, exc.reason)
            finished += 1
            _log.warning("call.resumed", transaction_id=transaction_id, action=action)
        return finished

    async def _resolve_interrupted_authorizations(self) -> int:
        """Ask the issuer about each authorization recorded but never answered; how many
        were settled.

        A crash between recording an authorization and recording the issuer's
        answer leaves it AUTHORIZING, with nobody to finish it. Each one not
        being asked right now is looked up at its issuer (GetHold by transaction
        id): a hold found is recorded as the issuer has it (a posted one with its
        credit transfer), for the merchant to capture, void or record; no hold,
        once every attempt that could still place one has ended
        (``no_hold_after_s``), fails the transaction with HOLD_NOT_FOUND. An
        issuer that cannot say is asked again next round.
        """
        cutoff = to_iso(self._clock() - dt.timedelta(seconds=self._no_hold_after_s))
        interrupted = await self._store.read(records.authorizing)
        settled = 0
        for record in interrupted:
            transaction_id = record.transaction_id
            if transaction_id in self._authorizing:
                continue  # an authorization of this process is asking right now
            try:
                found = await self._holds.look_up_hold(
                    self._holds.issuer_of(record), transaction_id
                )
            except errors.PaynetError:
                continue
            if found is None:
                if record.created_at >= cutoff:
                    continue  # an attempt may still be on its way to the issuer
                await self._store.transaction(
                    partial(
                        records.mark_failed, transaction_id=transaction_id, reason="HOLD_NOT_FOUND"
                    )
                )
            else:
                await self._record_found_hold(record, found)
            settled += 1
            _log.warning(
                "authorization.interrupted_resolved",
                transaction_id=transaction_id,
                hold_status=authorization_pb2.HoldStatus.Name(found.status) if found else None,
            )
        return settled

    async def _record_found_hold(
        self, record: TransactionRecord, found: authorization_pb2.GetHoldResponse
    ) -> None:
        """Record a hold GetHold reported; a posted one also with its credit transfer."""
        await self._store.transaction(
            lambda conn: records.record_hold(
                conn, record.transaction_id, found.hold_id, found.status
            )
        )
        if found.status != authorization_pb2.HOLD_STATUS_CAPTURED:
            return
        try:
            # Capturing a posted hold changes nothing at the issuer: it names the transfer.
            await self._holds.capture_hold(dataclasses.replace(record, hold_id=found.hold_id))
        except errors.PaynetError as exc:
            # The merchant's CapturePayment, or its retry, records it later.
            _log.warning(
                "authorization.capture_unread",
                transaction_id=record.transaction_id,
                reason=exc.reason,
            )

    async def _settle_refused_call(
        self, record: TransactionRecord, action: str, reason: str
    ) -> None:
        """The issuer refused a resumed call: record the hold as the issuer has it."""
        found = await relayed(
            self._holds.issuer_of(record).GetHold(
                authorization_pb2.GetHoldRequest(transaction_id=record.transaction_id),
                timeout=self._call_timeout_s,
            )
        )

        def done(conn: sqlite3.Connection) -> None:
            records.set_hold_status(conn, record.transaction_id, found.status)
            records.end_call(conn, record.transaction_id, action)

        await self._store.transaction(done)
        _log.warning(
            "call.refused",
            transaction_id=record.transaction_id,
            action=action,
            reason=reason,
            hold_status=authorization_pb2.HoldStatus.Name(found.status),
        )
