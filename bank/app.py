"""The bank and settlement-bank nodes: stores, servicers, peers and background work.

``create_bank_app`` and ``create_settlement_app`` are the entry points
ops.nodes names for their roles. Each app opens its store and books on start,
then runs its background work until closed: a commercial bank sweeps expired
holds and re-delivers unsettled transfers; the settlement bank re-delivers
transfers still waiting for the creditor bank. The first round of each runs
at once on start, which is what recovers work left by a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Literal, Protocol

import grpc
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    authorization_pb2,
    cash_pb2,
    cash_pb2_grpc,
    cheque_pb2,
    cheque_pb2_grpc,
    common_pb2,
    notification_pb2,
    notification_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)
from interbank.v1 import authorization_pb2_grpc as authz_grpc

from bank.accounts import Accounts
from bank.acquirer import Acquirer
from bank.audit import member_books, settlement_books
from bank.challenges import Challenges
from bank.cheques import ChequeDesk
from bank.clearing import Clearing
from bank.coin_collection import CoinAnswer, CoinCollection
from bank.collection import Collection
from bank.issuer import Issuer
from bank.messages import SettlementMessage, StatusAnswer, fields
from bank.mint import Mint
from bank.opening import open_bank_books, open_settlement_books
from bank.outgoing import OutgoingTransfers
from bank.schema import BANK_SCHEMA, SETTLEMENT_SCHEMA
from bank.servicers import (
    AccountServicer,
    AcquirerServicer,
    AuditServicer,
    CashServicer,
    ChallengeServicer,
    ChequeServicer,
    ClearingServicer,
    IssuerServicer,
    SettlementServicer,
)
from bank.settlement import Settlement
from payment import errors
from payment.background import Background
from payment.batching import Coalescer, Coalescers, from_entry_error
from payment.clock import now, timestamp
from payment.config import NetworkConfig, NodeConfig, Role
from payment.logs import get_logger
from payment.notifications import NotificationServicer
from payment.storage import Store
from payment.tls import Channels, NodeIdentity

__all__ = ["BankApp", "SettlementApp", "create_bank_app", "create_settlement_app"]

_log = get_logger("paynet.bank")
SWEEP_INTERVAL_S = 0.5
RETRY_INTERVAL_S = 2.0
WINDOW_CHECK_S = 1.0

# A peer's refusal with one of these codes means it recorded nothing and never
# will for this request: book it as a rejection instead of retrying forever.
_REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED)


def _service(module: object, name: str) -> str:
    return str(module.DESCRIPTOR.services_by_name[name].full_name)  # type: ignore[attr-defined]


def create_bank_app(network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> BankApp:
    """The NodeApp of a commercial bank (issuer and acquirer)."""
    return BankApp(network, node, identity)


def create_settlement_app(
    network: NetworkConfig, node: NodeConfig, identity: NodeIdentity
) -> SettlementApp:
    """The NodeApp of the settlement bank."""
    return SettlementApp(network, node, identity)


class BankApp:
    """A commercial bank node: issuer, acquirer, online banking and device inbox."""

    def __init__(self, network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> None:
        if node.bank_code is None:
            raise ValueError(f"bank node {node.name} has no bank_code")
        self.network = network
        self.node = node
        self._channels = Channels(identity)
        self._started = False
        self.store = Store(
            node.store_path,
            BANK_SCHEMA,
            retention_s=network.limits.idempotency_retention_seconds,
        )
        self._transfers: Coalescer[settlement_pb2.SubmitCreditTransferRequest, StatusAnswer | None]
        self._transfers = Coalescer(self._submit_transfers, "SubmitCreditTransfers")
        self.outgoing = OutgoingTransfers(self.store, self._submit)
        self.issuer = Issuer(self.store, network, node, self.outgoing)
        self.acquirer = Acquirer(self.store, network, node, self.outgoing)
        self.challenges = Challenges(
            self.store, network.risk, network.limits.challenge_answers_per_minute
        )
        self.clearing = Clearing(self.store, network, node)
        self.cheques = ChequeDesk(self.store, network, node)
        self.collection = Collection(self.store, network, self.cheques, self._present_letter)
        self.mint = Mint(self.store, network, node)
        self.coins = CoinCollection(self.store, network, self.mint, self._submit_coins)
        self.accounts = Accounts(self.store, node.bank_code)
        self._background = Background()

    @property
    def service_names(self) -> Sequence[str]:
        """The services this node serves."""
        return (
            _service(authorization_pb2, "IssuerService"),
            _service(authorization_pb2, "AcquirerService"),
            _service(authorization_pb2, "ChallengeService"),
            _service(settlement_pb2, "ClearingService"),
            _service(account_pb2, "AccountService"),
            _service(cheque_pb2, "ChequeService"),
            _service(cash_pb2, "CashService"),
            _service(notification_pb2, "NotificationService"),
            _service(audit_pb2, "AuditService"),
        )

    def register(self, server: grpc.aio.Server) -> None:
        """Add the bank's servicers to server."""
        authz_grpc.add_IssuerServiceServicer_to_server(IssuerServicer(self.issuer), server)
        authz_grpc.add_AcquirerServiceServicer_to_server(AcquirerServicer(self.acquirer), server)
        authz_grpc.add_ChallengeServiceServicer_to_server(
            ChallengeServicer(self.challenges), server
        )
        settlement_pb2_grpc.add_ClearingServiceServicer_to_server(
            ClearingServicer(self.clearing, self.cheques, self.mint), server
        )
        cheque_pb2_grpc.add_ChequeServiceServicer_to_server(
            ChequeServicer(self.store, self.cheques, self.collection), server
        )
        cash_pb2_grpc.add_CashServiceServicer_to_server(CashServicer(self.mint, self.coins), server)
        account_pb2_grpc.add_AccountServiceServicer_to_server(
            AccountServicer(self.accounts), server
        )
        notification_pb2_grpc.add_NotificationServiceServicer_to_server(
            NotificationServicer(self.store), server
        )
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(self.books), server)

    async def books(self) -> audit_pb2.GetBooksResponse:
        """The bank's books for the network audit."""
        moment = now()
        member = await self.store.read(lambda conn: member_books(conn, moment))
        return audit_pb2.GetBooksResponse(
            bank_code=self.node.bank_code or "",
            currency_code=self.network.currency,
            as_of=timestamp(moment),
            member=member,
        )

    async def start(self) -> None:
        """Open the store and books, connect to the settlement bank, start background work."""
        await self.store.open()
        opened = await self.store.transaction(
            lambda conn: open_bank_books(conn, self.network, self.node, now=now())
        )
        if opened:
            _log.info("bank.opened", bank=self.node.name, accounts=opened)
        self._started = True
        self._background.every(SWEEP_INTERVAL_S, "hold-sweeper", self.issuer.sweep)
        self._background.every(RETRY_INTERVAL_S, "settlement-retry", self.outgoing.deliver_pending)
        self._background.every(RETRY_INTERVAL_S, "cash-letters", self.collection.present_pending)
        self._background.every(RETRY_INTERVAL_S, "coin-deposits", self.coins.send_pending)

    async def close(self) -> None:
        """Stop background work, then close the channel and the store."""
        await self._background.stop()
        await self.collection.close()
        self._started = False
        await self._channels.close()
        await self.store.close()

    async def _present_letter(
        self, entries: Sequence[settlement_pb2.SubmitChequePresentmentRequest]
    ) -> list[StatusAnswer | None]:
        if not self._started:
            return [None] * len(entries)
        call = self._settlement().SubmitChequePresentments(
            settlement_pb2.SubmitChequePresentmentsRequest(entries=entries),
            timeout=self.network.timeouts.node_call_seconds,
        )
        answers = await _batch_answers(call, [entry.request_id for entry in entries])
        return answers + [None] * (len(entries) - len(answers))

    async def _submit_coins(
        self, request: settlement_pb2.SubmitCoinDepositRequest
    ) -> CoinAnswer | None:
        if not self._started:
            return None
        try:
            report = await self._settlement().SubmitCoinDeposit(
                request, timeout=self.network.timeouts.node_call_seconds
            )
        except grpc.aio.AioRpcError as exc:
            answer = _failure_answer(errors.from_rpc_error(exc), request.deposit.deposit_id)
            return None if answer is None else (answer[0], answer[1], None)
        status, reason = _report_answer(report)
        proof = (
            report.double_spend_proof.SerializeToString()
            if report.HasField("double_spend_proof")
            else None
        )
        return status, reason, proof

    async def _submit(self, message: SettlementMessage) -> StatusAnswer | None:
        if not self._started:
            return None
        if isinstance(message, settlement_pb2.CreditTransfer):
            # Transfers of concurrent captures go to the settlement bank together.
            return await self._transfers.submit(
                settlement_pb2.SubmitCreditTransferRequest(
                    request_id=message.instruction_id, transfer=message
                )
            )
        if not isinstance(message, settlement_pb2.PaymentReturn):
            raise TypeError("presentments and coin deposits have their own calls")
        return await _status_answer(
            self._settlement().SubmitPaymentReturn(
                settlement_pb2.SubmitPaymentReturnRequest(
                    request_id=message.return_id, payment_return=message
                ),
                timeout=self.network.timeouts.node_call_seconds,
            ),
            message.return_id,
        )

    async def _submit_transfers(
        self, entries: list[settlement_pb2.SubmitCreditTransferRequest]
    ) -> list[StatusAnswer | None]:
        call = self._settlement().SubmitCreditTransfers(
            settlement_pb2.SubmitCreditTransfersRequest(entries=entries),
            timeout=self.network.timeouts.node_call_seconds,
        )
        return await _batch_answers(call, [entry.request_id for entry in entries])

    def _settlement(self) -> settlement_pb2_grpc.SettlementServiceStub:
        settlement = self.network.the(Role.SETTLEMENT)
        return settlement_pb2_grpc.SettlementServiceStub(self._channels.get(settlement.address))


class SettlementApp:
    """The settlement bank node: every member bank's reserve."""

    def __init__(self, network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> None:
        self.network = network
        self.node = node
        self.store = Store(
            node.store_path,
            SETTLEMENT_SCHEMA,
            retention_s=network.limits.idempotency_retention_seconds,
        )
        self.settlement = Settlement(self.store, network, self._deliver)
        # Transfers to the same creditor bank go together while a call to it is in flight.
        self._receivers: Coalescers[
            str, settlement_pb2.ReceiveCreditTransferRequest, StatusAnswer | None
        ] = Coalescers(self._deliver_transfers, "ReceiveCreditTransfers")
        self._drawees: Coalescers[
            str, settlement_pb2.ReceiveChequePresentmentRequest, StatusAnswer | None
        ] = Coalescers(self._deliver_presentments, "ReceiveChequePresentments")
        self._channels = Channels(identity)
        self._started = False
        self._background = Background()

    @property
    def service_names(self) -> Sequence[str]:
        """The services this node serves."""
        return (
            _service(settlement_pb2, "SettlementService"),
            _service(audit_pb2, "AuditService"),
        )

    def register(self, server: grpc.aio.Server) -> None:
        """Add the settlement servicer to server."""
        settlement_pb2_grpc.add_SettlementServiceServicer_to_server(
            SettlementServicer(self.settlement, self.network, self.store), server
        )
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(self.books), server)

    async def books(self) -> audit_pb2.GetBooksResponse:
        """The settlement bank's books for the network audit."""
        moment = now()
        books = await self.store.read(settlement_books)
        return audit_pb2.GetBooksResponse(
            bank_code=self.node.bank_code or "",
            currency_code=self.network.currency,
            as_of=timestamp(moment),
            settlement=books,
        )

    async def start(self) -> None:
        """Open the store and books, connect to the member banks, start re-delivery."""
        await self.store.open()
        opened = await self.store.transaction(
            lambda conn: open_settlement_books(conn, self.network, now=now())
        )
        if opened:
            _log.info("settlement.opened", reserves=opened)
        self._started = True
        await self.settlement.settle_closed_windows()
        self._background.every(RETRY_INTERVAL_S, "delivery-retry", self.settlement.forward_pending)
        self._background.every(WINDOW_CHECK_S, "window-closer", self.settlement.close_if_due)

    async def close(self) -> None:
        """Stop background work, then close the channels and the store."""
        await self._background.stop()
        self._started = False
        await self._channels.close()
        await self.store.close()

    async def _deliver(self, bank_code: str, message: SettlementMessage) -> StatusAnswer | None:
        bank = self.network.bank_by_code(bank_code)
        if not self._started or bank is None or bank.role is not Role.BANK:
            return None
        request_id = fields(message).delivery_request_id
        if isinstance(message, cash_pb2.CoinDeposit):
            return await self._deliver_coins(bank.address, request_id, message)
        if isinstance(message, cheque_pb2.ChequePresentment):
            return await self._drawees.submit(
                bank.address,
                settlement_pb2.ReceiveChequePresentmentRequest(
                    request_id=request_id, presentment=message
                ),
            )
        if isinstance(message, settlement_pb2.CreditTransfer):
            return await self._receivers.submit(
                bank.address,
                settlement_pb2.ReceiveCreditTransferRequest(
                    request_id=request_id, transfer=message
                ),
            )
        return await _status_answer(
            self._clearing(bank.address).ReceivePaymentReturn(
                settlement_pb2.ReceivePaymentReturnRequest(
                    request_id=request_id, payment_return=message
                ),
                timeout=self.network.timeouts.node_call_seconds,
            ),
            message.return_id,
        )

    async def _deliver_transfers(
        self, address: str, entries: list[settlement_pb2.ReceiveCreditTransferRequest]
    ) -> list[StatusAnswer | None]:
        call = self._clearing(address).ReceiveCreditTransfers(
            settlement_pb2.ReceiveCreditTransfersRequest(entries=entries),
            timeout=self.network.timeouts.node_call_seconds,
        )
        return await _batch_answers(call, [entry.request_id for entry in entries])

    async def _deliver_coins(
        self, address: str, request_id: str, deposit: cash_pb2.CoinDeposit
    ) -> StatusAnswer | None:
        try:
            report = await self._clearing(address).ReceiveCoinDeposit(
                settlement_pb2.ReceiveCoinDepositRequest(request_id=request_id, deposit=deposit),
                timeout=self.network.timeouts.node_call_seconds,
            )
        except grpc.aio.AioRpcError as exc:
            return _failure_answer(errors.from_rpc_error(exc), deposit.deposit_id)
        if report.HasField("double_spend_proof"):
            await self.settlement.keep_detail(
                deposit.issuing_agent,
                deposit.deposit_id,
                report.double_spend_proof.SerializeToString(),
            )
        return _report_answer(report)

    async def _deliver_presentments(
        self, address: str, entries: list[settlement_pb2.ReceiveChequePresentmentRequest]
    ) -> list[StatusAnswer | None]:
        call = self._clearing(address).ReceiveChequePresentments(
            settlement_pb2.ReceiveChequePresentmentsRequest(entries=entries),
            timeout=self.network.timeouts.node_call_seconds,
        )
        return await _batch_answers(call, [entry.request_id for entry in entries])

    def _clearing(self, address: str) -> settlement_pb2_grpc.ClearingServiceStub:
        return settlement_pb2_grpc.ClearingServiceStub(self._channels.get(address))


class _StatusReport(Protocol):
    status: settlement_pb2.TransferStatus.ValueType
    reason_code: str


async def _status_answer(call: Awaitable[_StatusReport], message_id: str) -> StatusAnswer | None:
    """A peer's status report; a definitive refusal as REJECTED; None when unknown (retry)."""
    try:
        report = await call
    except grpc.aio.AioRpcError as exc:
        return _failure_answer(errors.from_rpc_error(exc), message_id)
    return _report_answer(report)


def _report_answer(report: _StatusReport) -> StatusAnswer:
    status = settlement_pb2.TransferStatus.Name(report.status).removeprefix("TRANSFER_STATUS_")
    return status, report.reason_code


class _BatchResult(Protocol):
    report: _StatusReport
    error: common_pb2.EntryError

    def WhichOneof(self, oneof_group: Literal["outcome"]) -> str | None: ...


class _BatchReport(Protocol):
    @property
    def results(self) -> Sequence[_BatchResult]: ...


async def _batch_answers(
    call: Awaitable[_BatchReport], message_ids: Sequence[str]
) -> list[StatusAnswer | None]:
    """Each entry's answer in a batch call, as _status_answer gives a single call's.

    A failure of the whole call is every entry's failure.
    """
    try:
        report = await call
    except grpc.aio.AioRpcError as exc:
        error = errors.from_rpc_error(exc)
        return [_failure_answer(error, message_id) for message_id in message_ids]
    return [  # a short answer fails the whole batch in the Coalescer
        _report_answer(result.report)
        if result.WhichOneof("outcome") == "report"
        else _failure_answer(from_entry_error(result.error), message_id)
        for result, message_id in zip(report.results, message_ids, strict=False)
    ]


def _failure_answer(error: errors.PaynetError, message_id: str) -> StatusAnswer | None:
    """REJECTED with the reason of a definitive refusal; None when the outcome is unknown."""
    _log.warning(
        "peer.call_failed",
        instruction_id=message_id,
        status=error.code.name,
        reason=error.reason,
    )
    return ("REJECTED", error.reason) if error.code in _REFUSALS else None
