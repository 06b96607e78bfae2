"""Receiving credit transfers from the settlement bank (the acquirer's side)."""

from __future__ import annotations

from interbank.v1 import common_pb2
from interbank.v1 import settlement_pb2 as pb

from payment.config import Role


def transfer(instruction_id="i-1", account_id="shop-sales", amount=1_200, currency="EUR"):
    return pb.ReceiveCreditTransferRequest(
        request_id=instruction_id,
        transfer=pb.CreditTransfer(
            instruction_id=instruction_id,
            end_to_end_id="order-7",
            amount=common_pb2.Money(amount_minor=amount, currency_code=currency),
            debtor_agent="ALFAXX01",
            debtor_account=common_pb2.AccountRef(bank_code="ALFAXX01", account_id="alice-current"),
            debtor_name="alice",
            creditor_agent="BETAXX02",
            creditor_account=common_pb2.AccountRef(bank_code="BETAXX02", account_id=account_id),
            creditor_name="shop",
        ),
    )


async def test_a_received_transfer_credits_the_merchant_and_notifies_it(world):
    response = await world.beta.clearing.receive(transfer())
    assert response.status == pb.TRANSFER_STATUS_ACCEPTED
    assert await world.balance(world.beta, "shop-sales", "shop") == (1_200, 1_200, 0)
    (event,) = await world.events(world.beta.store, world.uri(Role.MERCHANT, "shop"))
    assert event.account_entry.order_id == "order-7"
    assert event.account_entry.instruction_id == "i-1"
    assert event.account_entry.description == "settlement from ALFAXX01"


async def test_the_same_instruction_received_twice_credits_once(world):
    first = await world.beta.clearing.receive(transfer())
    again = await world.beta.clearing.receive(transfer())
    assert again == first
    assert await world.balance(world.beta, "shop-sales", "shop") == (1_200, 1_200, 0)
    assert len(await world.events(world.beta.store, world.uri(Role.MERCHANT, "shop"))) == 1


async def test_an_unknown_creditor_account_is_rejected_with_nothing_written(world):
    before = [await world.rows(world.beta.store, t) for t in ("transfers", "outbox")]
    response = await world.beta.clearing.receive(transfer(account_id="nobody"))
    assert response.status == pb.TRANSFER_STATUS_REJECTED
    assert response.reason_code == "CREDITOR_ACCOUNT_UNKNOWN"
    assert [await world.rows(world.beta.store, t) for t in ("transfers", "outbox")] == before
    # The answer is remembered: a repeat gets the same rejection.
    assert await world.beta.clearing.receive(transfer(account_id="nobody")) == response


async def test_the_banks_own_reserve_is_not_a_creditor_account(world):
    response = await world.beta.clearing.receive(transfer(account_id="@reserve"))
    assert response.reason_code == "CREDITOR_ACCOUNT_UNKNOWN"


async def test_a_transfer_in_another_currency_is_rejected(world):
    response = await world.beta.clearing.receive(transfer(currency="USD"))
    assert response.status == pb.TRANSFER_STATUS_REJECTED
    assert response.reason_code == "CURRENCY_MISMATCH"
    assert await world.balance(world.beta, "shop-sales", "shop") == (0, 0, 0)
