"""Who may call what: the one role -> RPC table of the network.

The identity interceptor consults it on every call. A method missing from the
table is refused (deny by default); a test checks that every RPC in the
contracts has an entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from payment.config import Role

__all__ = ["RPC_ROLES", "allowed_roles"]

_ALL: Final = frozenset(Role)
_CUSTOMER: Final = frozenset({Role.CUSTOMER})
_MERCHANT: Final = frozenset({Role.MERCHANT})
_GATEWAY: Final = frozenset({Role.GATEWAY})
_BANK: Final = frozenset({Role.BANK})
_SETTLEMENT: Final = frozenset({Role.SETTLEMENT})
_HOLDERS: Final = frozenset({Role.CUSTOMER, Role.MERCHANT})

RPC_ROLES: Final[Mapping[str, frozenset[Role]]] = {
    # Storefront (merchant), called by customers.
    "/interbank.v1.OrderService/ListProducts": _CUSTOMER,
    "/interbank.v1.OrderService/CreateOrder": _CUSTOMER,
    "/interbank.v1.OrderService/GetOrder": _CUSTOMER,
    "/interbank.v1.OrderService/SubmitPayment": _CUSTOMER,
    "/interbank.v1.OrderService/CompletePayment": _CUSTOMER,
    "/interbank.v1.OrderService/CancelOrder": _CUSTOMER,
    "/interbank.v1.OrderService/SubmitCheque": _CUSTOMER,
    "/interbank.v1.OrderService/SubmitCoins": _CUSTOMER,
    # The merchant's back office: the merchant's own certificate (the servicer checks it is us).
    "/interbank.v1.BackOfficeService/RefundOrder": _MERCHANT,
    # Gateway, called by merchants.
    "/interbank.v1.GatewayService/AuthorizePayment": _MERCHANT,
    "/interbank.v1.GatewayService/CapturePayment": _MERCHANT,
    "/interbank.v1.GatewayService/VoidPayment": _MERCHANT,
    "/interbank.v1.GatewayService/RefundPayment": _MERCHANT,
    "/interbank.v1.GatewayService/GetPaymentTransaction": _MERCHANT,
    # Issuer, called by the gateway only.
    "/interbank.v1.IssuerService/AuthorizeHold": _GATEWAY,
    "/interbank.v1.IssuerService/AuthorizeHolds": _GATEWAY,
    "/interbank.v1.IssuerService/CaptureHold": _GATEWAY,
    "/interbank.v1.IssuerService/VoidHold": _GATEWAY,
    "/interbank.v1.IssuerService/RefundCapture": _GATEWAY,
    "/interbank.v1.IssuerService/GetHold": _GATEWAY,
    # Acquirer, called by the gateway only: refunds are returns from the merchant's bank.
    "/interbank.v1.AcquirerService/ReturnPayment": _GATEWAY,
    # Step-up answers come straight from the customer, never via merchant or gateway.
    "/interbank.v1.ChallengeService/AnswerChallenge": _CUSTOMER,
    # Settlement bank, called by member banks; windows are closed by its operator.
    "/interbank.v1.SettlementService/SubmitCreditTransfer": _BANK,
    "/interbank.v1.SettlementService/SubmitCreditTransfers": _BANK,
    "/interbank.v1.SettlementService/SubmitPaymentReturn": _BANK,
    "/interbank.v1.SettlementService/GetTransferStatus": _BANK,
    "/interbank.v1.SettlementService/GetSettlementWindow": _BANK | _SETTLEMENT,
    "/interbank.v1.SettlementService/CloseSettlementWindow": _SETTLEMENT,
    "/interbank.v1.SettlementService/SubmitChequePresentments": _BANK,
    "/interbank.v1.SettlementService/SubmitCoinDeposit": _BANK,
    # A bank's receiving side, called by the settlement bank only.
    "/interbank.v1.ClearingService/ReceiveCreditTransfer": _SETTLEMENT,
    "/interbank.v1.ClearingService/ReceiveCreditTransfers": _SETTLEMENT,
    "/interbank.v1.ClearingService/ReceivePaymentReturn": _SETTLEMENT,
    "/interbank.v1.ClearingService/ReceiveChequePresentments": _SETTLEMENT,
    "/interbank.v1.ClearingService/ReceiveCoinDeposit": _SETTLEMENT,
    # The cheque desk: drawers manage their cheque books, payees deposit at their bank.
    "/interbank.v1.ChequeService/IssueChequeBook": _CUSTOMER,
    "/interbank.v1.ChequeService/StopCheque": _CUSTOMER,
    "/interbank.v1.ChequeService/CloseChequeAccount": _CUSTOMER,
    "/interbank.v1.ChequeService/DepositCheque": _MERCHANT,
    # The mint: its key set is public to the network; customers withdraw, merchants deposit.
    "/interbank.v1.CashService/GetDenominations": _ALL,
    "/interbank.v1.CashService/Withdraw": _CUSTOMER,
    "/interbank.v1.CashService/DepositCoins": _MERCHANT,
    # Books for the network audit: the settlement bank supervises every bank.
    "/interbank.v1.AuditService/GetBooks": _SETTLEMENT,
    # Event streams: each subscriber gets only the events addressed to it.
    "/interbank.v1.NotificationService/Subscribe": _HOLDERS,
    # Online banking: account holders; the bank checks the account is the caller's.
    "/interbank.v1.AccountService/GetBalance": _HOLDERS,
    "/interbank.v1.AccountService/ListStatement": _HOLDERS,
    # Infrastructure: any authenticated participant.
    "/grpc.health.v1.Health/Check": _ALL,
    "/grpc.health.v1.Health/Watch": _ALL,
    "/grpc.health.v1.Health/List": _ALL,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": _ALL,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": _ALL,
}


def allowed_roles(method: str) -> frozenset[Role]:
    """The roles that may call a full method name; empty if none may."""
    return RPC_ROLES.get(method, frozenset())
