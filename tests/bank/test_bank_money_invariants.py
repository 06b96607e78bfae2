"""No request creates money: self-transfers and out-of-range amounts, over mTLS.

Every case calls the nodes on their sockets with a participant's own
certificate, then checks that every holder's balance is what it was and that
the network audit (``paynet audit``) passes with the opening money intact.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from interbank.v1 import account_pb2, account_pb2_grpc, common_pb2
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import authorization_pb2_grpc as authz_grpc
from interbank.v1 import settlement_pb2 as pb
from interbank.v1 import settlement_pb2_grpc as pb_grpc

from ops.audit import audit_network
from payment import errors
from payment.batching import from_entry_error
from payment.money import INT64_MAX, INT64_MIN, MAX_AMOUNT_MINOR

ALFA, BETA = "ALFAXX01", "BETAXX02"
HOLDERS = {
    "alice": ("alfa", "alice-current"),
    "carol": ("alfa", "carol-current"),
    "bob": ("beta", "bob-current"),
    "shop": ("beta", "shop-sales"),
    "dave": ("gamma", "dave-current"),
}
OUT_OF_RANGE = (INT64_MAX, INT64_MIN, MAX_AMOUNT_MINOR + 1, 0, -1)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def eur(amount: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency_code="EUR")


def credit_transfer(
    debtor: str,
    creditor: str,
    account_id: str,
    amount: int = 1_000,
    *,
    debtor_account: common_pb2.AccountRef | None = None,
) -> pb.CreditTransfer:
    instruction_id = str(uuid.uuid4())
    return pb.CreditTransfer(
        instruction_id=instruction_id,
        end_to_end_id=f"order-{instruction_id}",
        amount=eur(amount),
        debtor_agent=debtor,
        debtor_account=debtor_account
        or common_pb2.AccountRef(bank_code=debtor, account_id="alice-current"),
        debtor_name="alice",
        creditor_agent=creditor,
        creditor_account=common_pb2.AccountRef(bank_code=creditor, account_id=account_id),
        creditor_name="shop",
    )


def payment_return(returning: str, receiving: str, amount: int = 1_000) -> pb.PaymentReturn:
    return pb.PaymentReturn(
        return_id=str(uuid.uuid4()),
        original_instruction_id=str(uuid.uuid4()),
        original_end_to_end_id="order-1",
        amount=eur(amount),
        returning_agent=returning,
        receiving_agent=receiving,
        reason_code="CUST",
    )


async def refusal(call: Awaitable[Message]) -> tuple[grpc.StatusCode, Any]:
    """The status code and ErrorInfo of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), errors.error_info(caught.value)


def entry_refusal(response: Any) -> tuple[grpc.StatusCode, Any]:
    """The status code and error of a one-entry batch answer that must be an error."""
    (result,) = response.results
    assert result.WhichOneof("outcome") == "error", result
    error = from_entry_error(result.error)
    return error.code, error


async def balances(served: dict[str, Any]) -> dict[str, int]:
    """Every holder's booked balance, each asked with the holder's own certificate."""
    found = {}
    for holder, (bank, account_id) in HOLDERS.items():
        stub = account_pb2_grpc.AccountServiceStub(served["channel"](holder, bank))
        reply = await stub.GetBalance(account_pb2.GetBalanceRequest(account_id=account_id))
        found[account_id] = reply.booked.amount_minor
    return found


async def assert_no_money_moved(served: dict[str, Any], before: dict[str, int]) -> None:
    """Balances are as before, and the audit passes with the opening money intact."""
    assert await balances(served) == before
    assert sum(before.values()) == served["network"].total_opening_money()
    report = await audit_network(served["network"], settle_seconds=1.0)
    assert report.ok, report.to_json()
    assert report.in_flight == 0


def settlement_as(served: dict[str, Any], bank: str) -> pb_grpc.SettlementServiceStub:
    return pb_grpc.SettlementServiceStub(served["channel"](bank, "settlement"))


def clearing_of(served: dict[str, Any], bank: str) -> pb_grpc.ClearingServiceStub:
    return pb_grpc.ClearingServiceStub(served["channel"]("settlement", bank))


# -- a bank paying itself ------------------------------------------------------------------


async def test_a_transfer_from_a_bank_to_itself_is_refused_by_the_settlement_bank(served):
    before = await balances(served)
    settlement = settlement_as(served, "alfa")
    request = pb.SubmitCreditTransferRequest(
        request_id="self-1", transfer=credit_transfer(ALFA, ALFA, "alice-current")
    )
    for _ in range(2):  # a retry gets the same answer
        code, info = await refusal(settlement.SubmitCreditTransfer(request, timeout=10))
        assert (code, info.reason) == (INVALID, "SAME_AGENT")
        assert info.metadata["field"] == "transfer.creditor_agent"
    batch = pb.SubmitCreditTransfersRequest(entries=[request])
    code, error = entry_refusal(await settlement.SubmitCreditTransfers(batch, timeout=10))
    assert (code, error.reason) == (INVALID, "SAME_AGENT")
    status = settlement.GetTransferStatus(
        pb.GetTransferStatusRequest(instruction_id=request.transfer.instruction_id), timeout=10
    )
    assert (await refusal(status))[0] == grpc.StatusCode.NOT_FOUND
    await assert_no_money_moved(served, before)


async def test_a_return_from_a_bank_to_itself_is_refused_by_the_settlement_bank(served):
    before = await balances(served)
    request = pb.SubmitPaymentReturnRequest(
        request_id="self-return-1", payment_return=payment_return(BETA, BETA)
    )
    for _ in range(2):
        code, info = await refusal(
            settlement_as(served, "beta").SubmitPaymentReturn(request, timeout=10)
        )
        assert (code, info.reason) == (INVALID, "SAME_AGENT")
        assert info.metadata["field"] == "payment_return.receiving_agent"
    await assert_no_money_moved(served, before)


async def test_a_transfer_naming_one_account_as_debtor_and_creditor_is_refused(served):
    before = await balances(served)
    shop = common_pb2.AccountRef(bank_code=BETA, account_id="shop-sales")
    transfer = credit_transfer(ALFA, BETA, "shop-sales", debtor_account=shop)
    request = pb.SubmitCreditTransferRequest(request_id="self-2", transfer=transfer)
    code, info = await refusal(settlement_as(served, "alfa").SubmitCreditTransfer(request))
    assert (code, info.reason) == (INVALID, "SELF_TRANSFER")
    await assert_no_money_moved(served, before)


async def test_a_self_transfer_delivered_to_a_bank_is_refused_and_credits_nobody(served):
    before = await balances(served)
    beta = clearing_of(served, "beta")
    delivery = pb.ReceiveCreditTransferRequest(
        request_id="self-3", transfer=credit_transfer(BETA, BETA, "shop-sales")
    )
    for _ in range(2):
        code, info = await refusal(beta.ReceiveCreditTransfer(delivery, timeout=10))
        assert (code, info.reason) == (INVALID, "SAME_AGENT")
    batch = pb.ReceiveCreditTransfersRequest(entries=[delivery])
    code, error = entry_refusal(await beta.ReceiveCreditTransfers(batch, timeout=10))
    assert (code, error.reason) == (INVALID, "SAME_AGENT")
    returned = pb.ReceivePaymentReturnRequest(
        request_id="self-4", payment_return=payment_return(ALFA, ALFA)
    )
    code, info = await refusal(clearing_of(served, "alfa").ReceivePaymentReturn(returned))
    assert (code, info.reason) == (INVALID, "SAME_AGENT")
    await assert_no_money_moved(served, before)


async def test_a_hold_paying_the_payers_own_account_is_refused(served, signed_authorization):
    before = await balances(served)
    issuer = authz_grpc.IssuerServiceStub(served["channel"]("gateway", "alfa"))
    request = signed_authorization(served["pki"], creditor=(ALFA, "alice-current"))
    code, info = await refusal(issuer.AuthorizeHold(request, timeout=10))
    assert (code, info.reason) == (INVALID, "SELF_TRANSFER")
    got = issuer.GetHold(authz.GetHoldRequest(transaction_id=request.transaction_id))
    assert (await refusal(got))[0] == grpc.StatusCode.NOT_FOUND
    await assert_no_money_moved(served, before)


async def test_a_payment_between_two_holders_of_one_bank_is_booked_inside_it(
    served, signed_authorization
):
    """bob and the shop both bank at beta: the payment and its refund never reach the
    settlement bank, and reserves do not move."""
    before = await balances(served)
    issuer = authz_grpc.IssuerServiceStub(served["channel"]("gateway", "beta"))
    request = signed_authorization(
        served["pki"], customer="bob", number="4000009876543210", bank_code=BETA, amount=4_500
    )
    request.capture = True
    sale = await issuer.AuthorizeHold(request, timeout=10)
    assert sale.capture.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    status = settlement_as(served, "beta").GetTransferStatus(
        pb.GetTransferStatusRequest(instruction_id=sale.capture.instruction_id), timeout=10
    )
    assert (await refusal(status))[0] == grpc.StatusCode.NOT_FOUND
    acquirer = authz_grpc.AcquirerServiceStub(served["channel"]("gateway", "beta"))
    refund = await acquirer.ReturnPayment(
        authz.ReturnPaymentRequest(
            request_id="refund-1",
            original_instruction_id=sale.capture.instruction_id,
            original_debtor_agent=BETA,
            amount=eur(1_500),
            merchant_name="shop",
        ),
        timeout=10,
    )
    assert refund.returned_total.amount_minor == 1_500
    hold = await issuer.GetHold(authz.GetHoldRequest(hold_id=sale.hold_id), timeout=10)
    assert hold.refunded_total.amount_minor == 1_500
    after = await balances(served)
    assert after["bob-current"] == before["bob-current"] - 3_000
    assert after["shop-sales"] == before["shop-sales"] + 3_000
    report = await audit_network(served["network"], settle_seconds=1.0)
    assert report.ok, report.to_json()
    assert sum(after.values()) == served["network"].total_opening_money()


# -- amounts out of range -----------------------------------------------------------------


@dataclass(frozen=True)
class MoneyRpc:
    """An RPC taking a Money, called by the participant allowed to call it."""

    name: str
    caller: str
    node: str
    call: Callable[[grpc.aio.Channel, Any], Awaitable[Any]]
    """Calls the RPC on a channel with a request."""
    build: Callable[[dict[str, Any], int], Message]
    """A request carrying amount (otherwise the same each time for the same amount)."""
    field: str
    """The path of the amount field, as the refusal names it."""
    batch: bool = False


def _submit_transfer(served: dict[str, Any], amount: int) -> pb.SubmitCreditTransferRequest:
    return pb.SubmitCreditTransferRequest(
        request_id=f"submit-{amount}", transfer=credit_transfer(ALFA, BETA, "shop-sales", amount)
    )


def _receive_transfer(served: dict[str, Any], amount: int) -> pb.ReceiveCreditTransferRequest:
    return pb.ReceiveCreditTransferRequest(
        request_id=f"receive-{amount}", transfer=credit_transfer(ALFA, BETA, "shop-sales", amount)
    )


MONEY_RPCS = (
    MoneyRpc(
        "ReceiveCreditTransfer",
        "settlement",
        "beta",
        lambda ch, r: pb_grpc.ClearingServiceStub(ch).ReceiveCreditTransfer(r, timeout=10),
        _receive_transfer,
        "transfer.amount",
    ),
    MoneyRpc(
        "ReceiveCreditTransfers",
        "settlement",
        "beta",
        lambda ch, r: pb_grpc.ClearingServiceStub(ch).ReceiveCreditTransfers(
            pb.ReceiveCreditTransfersRequest(entries=[r]), timeout=10
        ),
        _receive_transfer,
        "transfer.amount",
        batch=True,
    ),
    MoneyRpc(
        "ReceivePaymentReturn",
        "settlement",
        "alfa",
        lambda ch, r: pb_grpc.ClearingServiceStub(ch).ReceivePaymentReturn(r, timeout=10),
        lambda s, amount: pb.ReceivePaymentReturnRequest(
            request_id=f"receive-return-{amount}", payment_return=payment_return(BETA, ALFA, amount)
        ),
        "payment_return.amount",
    ),
    MoneyRpc(
        "SubmitCreditTransfer",
        "alfa",
        "settlement",
        lambda ch, r: pb_grpc.SettlementServiceStub(ch).SubmitCreditTransfer(r, timeout=10),
        _submit_transfer,
        "transfer.amount",
    ),
    MoneyRpc(
        "SubmitCreditTransfers",
        "alfa",
        "settlement",
        lambda ch, r: pb_grpc.SettlementServiceStub(ch).SubmitCreditTransfers(
            pb.SubmitCreditTransfersRequest(entries=[r]), timeout=10
        ),
        _submit_transfer,
        "transfer.amount",
        batch=True,
    ),
    MoneyRpc(
        "SubmitPaymentReturn",
        "beta",
        "settlement",
        lambda ch, r: pb_grpc.SettlementServiceStub(ch).SubmitPaymentReturn(r, timeout=10),
        lambda s, amount: pb.SubmitPaymentReturnRequest(
            request_id=f"submit-return-{amount}", payment_return=payment_return(BETA, ALFA, amount)
        ),
        "payment_return.amount",
    ),
    MoneyRpc(
        "AuthorizeHold",
        "gateway",
        "alfa",
        lambda ch, r: authz_grpc.IssuerServiceStub(ch).AuthorizeHold(r, timeout=10),
        lambda s, amount: s["authorize"](amount),
        "instruction.amount",
    ),
    MoneyRpc(
        "AuthorizeHolds",
        "gateway",
        "alfa",
        lambda ch, r: authz_grpc.IssuerServiceStub(ch).AuthorizeHolds(
            authz.AuthorizeHoldsRequest(entries=[r]), timeout=10
        ),
        lambda s, amount: s["authorize"](amount),
        "instruction.amount",
        batch=True,
    ),
    MoneyRpc(
        "ReturnPayment",
        "gateway",
        "beta",
        lambda ch, r: authz_grpc.AcquirerServiceStub(ch).ReturnPayment(r, timeout=10),
        lambda s, amount: authz.ReturnPaymentRequest(
            request_id=f"return-{amount}",
            original_instruction_id="no-such-transfer",
            original_debtor_agent=ALFA,
            amount=eur(amount),
            merchant_name="shop",
        ),
        "amount",
    ),
)


@pytest.mark.parametrize("rpc", MONEY_RPCS, ids=lambda rpc: rpc.name)
async def test_an_amount_outside_one_to_the_maximum_is_refused_and_moves_nothing(
    served, signed_authorization, rpc
):
    before = await balances(served)
    pki = served["pki"]
    context = {**served, "authorize": lambda amount: signed_authorization(pki, amount=amount)}
    channel = served["channel"](rpc.caller, rpc.node)
    for amount in OUT_OF_RANGE:
        request = rpc.build(context, amount)
        for _ in range(2):  # a retry with the same request gets the same answer
            if rpc.batch:
                code, error = entry_refusal(await rpc.call(channel, request))
                reason, metadata = error.reason, error.metadata
            else:
                code, info = await refusal(rpc.call(channel, request))
                reason, metadata = info.reason, dict(info.metadata)
            assert (code, reason) == (INVALID, "FIELD_INVALID"), (rpc.name, amount)
            assert metadata["field"] == rpc.field
            assert metadata["limit"] == str(MAX_AMOUNT_MINOR)
    await assert_no_money_moved(served, before)


async def test_the_maximum_amount_itself_passes_the_range_check(served):
    before = await balances(served)
    transfer = credit_transfer(ALFA, BETA, "shop-sales", MAX_AMOUNT_MINOR)
    submitted = await settlement_as(served, "alfa").SubmitCreditTransfer(
        pb.SubmitCreditTransferRequest(request_id="max-1", transfer=transfer), timeout=10
    )
    assert (submitted.status, submitted.reason_code) == (
        pb.TRANSFER_STATUS_REJECTED,
        "INSUFFICIENT_RESERVE",
    )
    delivered = await clearing_of(served, "beta").ReceiveCreditTransfer(
        pb.ReceiveCreditTransferRequest(
            request_id="max-2", transfer=credit_transfer(ALFA, BETA, "nobody", MAX_AMOUNT_MINOR)
        ),
        timeout=10,
    )
    assert (delivered.status, delivered.reason_code) == (
        pb.TRANSFER_STATUS_REJECTED,
        "CREDITOR_ACCOUNT_UNKNOWN",
    )
    await assert_no_money_moved(served, before)
