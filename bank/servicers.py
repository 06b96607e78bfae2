"""Thin gRPC servicers of the bank and settlement nodes: protobuf in, domain call, protobuf out.

The caller comes from :func:`payment.identity.caller` (its certificate), never
from a request field; domain errors are mapped to status codes by the
server's error interceptor. What a field must look like before the domain
sees it (a timestamp in range, a one-time code of six digits, a pacs.004
reason code) is checked here, and refused with FIELD_INVALID before anything
is read or written.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import timestamp_pb2
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    cash_pb2,
    cash_pb2_grpc,
    cheque_pb2,
    cheque_pb2_grpc,
)
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import authorization_pb2_grpc as authz_grpc
from interbank.v1 import settlement_pb2 as pb
from interbank.v1 import settlement_pb2_grpc as pb_grpc

from bank.accounts import Accounts
from bank.acquirer import Acquirer
from bank.challenges import Challenges
from bank.cheques import ChequeDesk
from bank.clearing import Clearing
from bank.coin_collection import CoinCollection
from bank.collection import Collection
from bank.issuer import Issuer
from bank.mint import Mint
from bank.settlement import Settlement
from payment import errors, otp
from payment.batching import answer_each
from payment.config import NetworkConfig, Role
from payment.identity import caller
from payment.storage import Store, idempotent, idempotent_transaction

__all__ = [
    "AccountServicer",
    "AcquirerServicer",
    "AuditServicer",
    "CashServicer",
    "ChallengeServicer",
    "ChequeServicer",
    "ClearingServicer",
    "IssuerServicer",
    "SettlementServicer",
]

# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_MAX_NANOS = 999_999_999
_CODE = re.compile(rf"\A[0-9]{{{otp.CODE_DIGITS}}}\Z", re.ASCII)
# pacs.004 RtrRsn/Cd (ExternalReturnReason1Code): one to four letters or digits.
_RETURN_REASON = re.compile(r"\A[A-Z0-9]{1,4}\Z", re.ASCII)


def _moment(request: account_pb2.ListStatementRequest, name: str) -> dt.datetime | None:
    """A request's optional timestamp as a UTC datetime; FIELD_INVALID if out of range."""
    if not request.HasField(name):  # type: ignore[arg-type]
        return None
    stamp: timestamp_pb2.Timestamp = getattr(request, name)
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos <= _MAX_NANOS):
        raise errors.InvalidArgument(
            "FIELD_INVALID",
            f"{name} must be a time between 0001-01-01 and 9999-12-31 UTC"
            " with nanos from 0 to 999999999",
            field=name,
        )
    return stamp.ToDatetime(dt.UTC)


class IssuerServicer(authz_grpc.IssuerServiceServicer):
    """IssuerService, called by the gateway."""

    def __init__(self, issuer: Issuer) -> None:
        self._issuer = issuer

    async def AuthorizeHold(
        self, request: authz.AuthorizeHoldRequest, context: grpc.aio.ServicerContext
    ) -> authz.AuthorizeHoldResponse:
        """Place a hold (or require a challenge)."""
        return await self._issuer.authorize(request, caller().uri)

    async def AuthorizeHolds(
        self, request: authz.AuthorizeHoldsRequest, context: grpc.aio.ServicerContext
    ) -> authz.AuthorizeHoldsResponse:
        """Authorize several payments, each as AuthorizeHold would alone."""
        gateway = caller().uri
        results = await answer_each(
            "AuthorizeHolds",
            authz.AuthorizeHoldResult,
            request.entries,
            lambda entry: self._issuer.authorize(entry, gateway),
        )
        return authz.AuthorizeHoldsResponse(results=results)

    async def CaptureHold(
        self, request: authz.CaptureHoldRequest, context: grpc.aio.ServicerContext
    ) -> authz.CaptureHoldResponse:
        """Post a hold and settle it."""
        return await self._issuer.capture(request, caller().uri)

    async def VoidHold(
        self, request: authz.VoidHoldRequest, context: grpc.aio.ServicerContext
    ) -> authz.VoidHoldResponse:
        """Release a hold."""
        return await self._issuer.void(request, caller().uri)

    async def RefundCapture(
        self, request: authz.RefundCaptureRequest, context: grpc.aio.ServicerContext
    ) -> authz.RefundCaptureResponse:
        """Deprecated: refunds are returns sent by the acquirer."""
        raise errors.FailedPrecondition(
            "REFUND_VIA_ACQUIRER",
            "the merchant's money is at its bank: refund with GatewayService.RefundPayment,"
            " which asks the acquirer to send a payment return",
        )

    async def GetHold(
        self, request: authz.GetHoldRequest, context: grpc.aio.ServicerContext
    ) -> authz.GetHoldResponse:
        """Report a hold."""
        return await self._issuer.get_hold(request)


class AcquirerServicer(authz_grpc.AcquirerServiceServicer):
    """AcquirerService, called by the gateway."""

    def __init__(self, acquirer: Acquirer) -> None:
        self._acquirer = acquirer

    async def ReturnPayment(
        self, request: authz.ReturnPaymentRequest, context: grpc.aio.ServicerContext
    ) -> authz.ReturnPaymentResponse:
        """Refund (part of) a settled payment as an interbank return."""
        if request.reason_code and not _RETURN_REASON.match(request.reason_code):
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "reason_code must be empty (CUST) or a pacs.004 return reason code"
                " of one to four upper-case letters or digits",
                field="reason_code",
            )
        return await self._acquirer.return_payment(request, caller().uri)


class ChallengeServicer(authz_grpc.ChallengeServiceServicer):
    """ChallengeService, called by customers."""

    def __init__(self, challenges: Challenges) -> None:
        self._challenges = challenges

    async def AnswerChallenge(
        self, request: authz.AnswerChallengeRequest, context: grpc.aio.ServicerContext
    ) -> authz.AnswerChallengeResponse:
        """Check a one-time code.

        A code that is not six ASCII digits can never be right: it is refused
        without counting as an attempt (a well-formed wrong code counts).
        """
        if request.request_id and not _CODE.match(request.code):
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"code must be the {otp.CODE_DIGITS}-digit one-time code from the device inbox",
                field="code",
            )
        return await self._challenges.answer(request, caller().uri)


class ClearingServicer(pb_grpc.ClearingServiceServicer):
    """ClearingService, called by the settlement bank."""

    def __init__(self, clearing: Clearing, desk: ChequeDesk, mint: Mint | None = None) -> None:
        self._clearing = clearing
        self._desk = desk
        self._mint = mint

    async def ReceiveCreditTransfer(
        self, request: pb.ReceiveCreditTransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiveCreditTransferResponse:
        """Credit a settled transfer."""
        return await self._clearing.receive(request)

    async def ReceiveCreditTransfers(
        self, request: pb.ReceiveCreditTransfersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiveCreditTransfersResponse:
        """Credit several settled transfers, each as ReceiveCreditTransfer would alone."""
        results = await answer_each(
            "ReceiveCreditTransfers",
            pb.ReceiveCreditTransferResult,
            request.entries,
            self._clearing.receive,
        )
        return pb.ReceiveCreditTransfersResponse(results=results)

    async def ReceivePaymentReturn(
        self, request: pb.ReceivePaymentReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceivePaymentReturnResponse:
        """Credit a settled return to the original debtor."""
        return await self._clearing.receive_return(request)

    async def ReceiveChequePresentments(
        self, request: pb.ReceiveChequePresentmentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiveChequePresentmentsResponse:
        """Pay or return presented cheques, each once."""
        results = await answer_each(
            "ReceiveChequePresentments",
            pb.ReceiveChequePresentmentResult,
            request.entries,
            self._desk.receive,
        )
        return pb.ReceiveChequePresentmentsResponse(results=results)

    async def ReceiveCoinDeposit(
        self, request: pb.ReceiveCoinDepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiveCoinDepositResponse:
        """Take (or refuse) one order's coins of this bank."""
        if self._mint is None:
            raise errors.Unimplemented("CASH_NOT_ISSUED", "this bank issues no coins")
        return await self._mint.receive(request)


class CashServicer(cash_pb2_grpc.CashServiceServicer):
    """CashService: the mint's key set and withdrawals, and merchants' coin deposits."""

    def __init__(self, mint: Mint, coins: CoinCollection) -> None:
        self._mint = mint
        self._coins = coins

    async def GetDenominations(
        self, request: cash_pb2.GetDenominationsRequest, context: grpc.aio.ServicerContext
    ) -> cash_pb2.GetDenominationsResponse:
        """The bank's signed denomination key set."""
        return await self._mint.denominations()

    async def Withdraw(
        self, request: cash_pb2.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> cash_pb2.WithdrawResponse:
        """Blind-sign coins for the caller and debit its account (once per request_id)."""
        who = caller()
        return await self._mint.withdraw(request, who.uri, who.name)

    async def DepositCoins(
        self, request: cash_pb2.DepositCoinsRequest, context: grpc.aio.ServicerContext
    ) -> cash_pb2.DepositCoinsResponse:
        """Have the issuer take a merchant's coins; a repeat answers the deposit now."""
        who = caller()
        return await self._coins.deposit(request, who.uri, who.name)


class ChequeServicer(cheque_pb2_grpc.ChequeServiceServicer):
    """ChequeService: drawers' cheque books and stops, payees' deposits."""

    def __init__(self, store: Store, desk: ChequeDesk, collection: Collection) -> None:
        self._store = store
        self._desk = desk
        self._collection = collection

    @idempotent_transaction(cheque_pb2.IssueChequeBookResponse)
    def IssueChequeBook(
        self, request: cheque_pb2.IssueChequeBookRequest, context: grpc.aio.ServicerContext
    ) -> Callable[[sqlite3.Connection], cheque_pb2.IssueChequeBookResponse]:
        """Issue the caller a cheque book (once per request_id)."""
        who = caller()
        return self._desk.issue_book(request, who.uri, who.name)

    @idempotent_transaction(cheque_pb2.StopChequeResponse)
    def StopCheque(
        self, request: cheque_pb2.StopChequeRequest, context: grpc.aio.ServicerContext
    ) -> Callable[[sqlite3.Connection], cheque_pb2.StopChequeResponse]:
        """Stop one of the caller's cheques (once per request_id)."""
        return self._desk.stop(request, caller().name)

    @idempotent_transaction(cheque_pb2.CloseChequeAccountResponse)
    def CloseChequeAccount(
        self, request: cheque_pb2.CloseChequeAccountRequest, context: grpc.aio.ServicerContext
    ) -> Callable[[sqlite3.Connection], cheque_pb2.CloseChequeAccountResponse]:
        """Close the caller's cheque account (once per request_id)."""
        return self._desk.close_account(request, caller().name)

    async def DepositCheque(
        self, request: cheque_pb2.DepositChequeRequest, context: grpc.aio.ServicerContext
    ) -> cheque_pb2.DepositChequeResponse:
        """Deposit a cheque endorsed to this bank; a repeat answers the deposit as it is now."""
        who = caller()
        return await self._collection.deposit(request, who.uri, who.name)


class AccountServicer(account_pb2_grpc.AccountServiceServicer):
    """AccountService, called by account holders."""

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    async def GetBalance(
        self, request: account_pb2.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> account_pb2.GetBalanceResponse:
        """The caller's account balance."""
        return await self._accounts.balance(request.account_id, caller().uri)

    async def ListStatement(
        self, request: account_pb2.ListStatementRequest, context: grpc.aio.ServicerContext
    ) -> account_pb2.ListStatementResponse:
        """The caller's account statement."""
        from_time = _moment(request, "from_time")
        to_time = _moment(request, "to_time")
        return await self._accounts.statement(
            request.account_id, caller().uri, from_time=from_time, to_time=to_time
        )


class SettlementServicer(pb_grpc.SettlementServiceServicer):
    """SettlementService, called by member banks."""

    def __init__(self, settlement: Settlement, network: NetworkConfig, store: Store) -> None:
        self._settlement = settlement
        self._network = network
        self._store = store

    def _caller_code(self) -> str:
        identity = caller()
        try:
            node = self._network.node(identity.name)
        except KeyError:
            node = None
        if node is None or node.role is not Role.BANK or node.bank_code is None:
            raise errors.PermissionDenied("ROLE_NOT_ALLOWED", "only member banks may do this")
        return node.bank_code

    async def SubmitCreditTransfer(
        self, request: pb.SubmitCreditTransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitCreditTransferResponse:
        """Settle a credit transfer."""
        return await self._settlement.submit(request, self._caller_code())

    async def SubmitCreditTransfers(
        self, request: pb.SubmitCreditTransfersRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitCreditTransfersResponse:
        """Settle several credit transfers, each as SubmitCreditTransfer would alone."""
        caller_code = self._caller_code()
        results = await answer_each(
            "SubmitCreditTransfers",
            pb.SubmitCreditTransferResult,
            request.entries,
            lambda entry: self._settlement.submit(entry, caller_code),
        )
        return pb.SubmitCreditTransfersResponse(results=results)

    async def SubmitPaymentReturn(
        self, request: pb.SubmitPaymentReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitPaymentReturnResponse:
        """Settle a payment return."""
        return await self._settlement.submit_return(request, self._caller_code())

    async def GetTransferStatus(
        self, request: pb.GetTransferStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTransferStatusResponse:
        """A transfer's status."""
        return await self._settlement.status(request.instruction_id, self._caller_code())

    async def GetSettlementWindow(
        self, request: pb.GetSettlementWindowRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSettlementWindowResponse:
        """A settlement window and its net positions."""
        window = await self._settlement.get_window(request.window_id)
        return pb.GetSettlementWindowResponse(window=window)

    async def SubmitChequePresentments(
        self, request: pb.SubmitChequePresentmentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitChequePresentmentsResponse:
        """Settle a cash letter, each presentment as it would be alone."""
        caller_code = self._caller_code()
        results = await answer_each(
            "SubmitChequePresentments",
            pb.SubmitChequePresentmentResult,
            request.entries,
            lambda entry: self._settlement.present(entry, caller_code),
        )
        return pb.SubmitChequePresentmentsResponse(results=results)

    async def SubmitCoinDeposit(
        self, request: pb.SubmitCoinDepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitCoinDepositResponse:
        """Settle a coin deposit sent to the coins' issuer."""
        return await self._settlement.submit_coins(request, self._caller_code())

    @idempotent(pb.CloseSettlementWindowResponse)
    async def CloseSettlementWindow(
        self, request: pb.CloseSettlementWindowRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseSettlementWindowResponse:
        """Close the open window and settle its net positions (once per request_id)."""
        return pb.CloseSettlementWindowResponse(window=await self._settlement.close_window())


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """AuditService: the bank's books in sums, for the settlement bank's audit."""

    def __init__(self, books: Callable[[], Awaitable[audit_pb2.GetBooksResponse]]) -> None:
        self._books = books

    async def GetBooks(
        self, request: audit_pb2.GetBooksRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetBooksResponse:
        """The books, from one snapshot of the store."""
        return await self._books()
