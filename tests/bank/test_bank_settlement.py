"""The settlement bank: reserves move between member banks per credit transfer."""

from __future__ import annotations

import pytest
from interbank.v1 import common_pb2
from interbank.v1 import settlement_pb2 as pb

from bank.audit import settlement_totals
from payment import errors


def submit_request(
    instruction_id="s-1",
    amount=3_000,
    creditor="BETAXX02",
    account_id="shop-sales",
    currency="EUR",
    debtor="ALFAXX01",
):
    return pb.SubmitCreditTransferRequest(
        request_id=instruction_id,
        transfer=pb.CreditTransfer(
            instruction_id=instruction_id,
            end_to_end_id="order-1",
            amount=common_pb2.Money(amount_minor=amount, currency_code=currency),
            debtor_agent=debtor,
            debtor_account=common_pb2.AccountRef(bank_code=debtor, account_id="alice-current"),
            debtor_name="alice",
            creditor_agent=creditor,
            creditor_account=common_pb2.AccountRef(bank_code=creditor, account_id=account_id),
            creditor_name="shop",
        ),
    )


async def totals(world):
    return await world.settlement_store.read(settlement_totals)


async def test_an_accepted_transfer_moves_reserves_from_debtor_to_creditor(world):
    response = await world.settlement.submit(submit_request(), "ALFAXX01")
    assert response.status == pb.TRANSFER_STATUS_ACCEPTED
    settled = await totals(world)
    assert settled.reserves == {"ALFAXX01": 102_000, "BETAXX02": 23_000, "GAMMXX03": 30_000}
    assert settled.balanced
    assert await world.balance(world.beta, "shop-sales", "shop") == (3_000, 3_000, 0)
    status = await world.settlement.status("s-1", "BETAXX02")
    assert status.status == pb.TRANSFER_STATUS_ACCEPTED


async def test_a_creditor_rejection_leaves_the_reserves_as_they_were(world):
    response = await world.settlement.submit(submit_request(account_id="nobody"), "ALFAXX01")
    assert response.status == pb.TRANSFER_STATUS_REJECTED
    assert response.reason_code == "CREDITOR_ACCOUNT_UNKNOWN"
    settled = await totals(world)
    assert settled.reserves == {"ALFAXX01": 105_000, "BETAXX02": 20_000, "GAMMXX03": 30_000}
    assert settled.debits_pending == 0
    assert settled.balanced


async def test_a_transfer_above_the_debtors_reserve_is_rejected_and_moves_nothing(world):
    response = await world.settlement.submit(submit_request(amount=105_001), "ALFAXX01")
    assert response.status == pb.TRANSFER_STATUS_REJECTED
    assert response.reason_code == "INSUFFICIENT_RESERVE"
    assert (await totals(world)).reserves == {
        "ALFAXX01": 105_000,
        "BETAXX02": 20_000,
        "GAMMXX03": 30_000,
    }
    assert await world.balance(world.beta, "shop-sales", "shop") == (0, 0, 0)


async def test_an_unknown_creditor_agent_is_rejected(world):
    response = await world.settlement.submit(submit_request(creditor="ZZZZXX99"), "ALFAXX01")
    assert response.status == pb.TRANSFER_STATUS_REJECTED
    assert response.reason_code == "UNKNOWN_CREDITOR_AGENT"


async def test_the_debtor_agent_must_be_the_calling_bank(world):
    with pytest.raises(errors.PermissionDenied) as caught:
        await world.settlement.submit(submit_request(), "BETAXX02")
    assert caught.value.reason == "DEBTOR_AGENT_NOT_CALLER"


@pytest.mark.parametrize(
    "changes", [{"instruction_id": ""}, {"amount": 0}, {"amount": -5}, {"currency": "USD"}]
)
async def test_an_invalid_transfer_is_refused(world, changes):
    with pytest.raises(errors.InvalidArgument) as caught:
        await world.settlement.submit(submit_request(**changes), "ALFAXX01")
    assert caught.value.reason == "FIELD_INVALID"


async def test_a_resubmission_returns_the_first_answer_and_moves_nothing_more(world):
    first = await world.settlement.submit(submit_request(), "ALFAXX01")
    again = await world.settlement.submit(submit_request(), "ALFAXX01")
    assert again == first
    assert (await totals(world)).reserves == {
        "ALFAXX01": 102_000,
        "BETAXX02": 23_000,
        "GAMMXX03": 30_000,
    }
    with pytest.raises(errors.AlreadyExists) as caught:
        await world.settlement.submit(submit_request(amount=10), "ALFAXX01")
    assert caught.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_two_banks_transfers_that_share_an_instruction_id_both_settle(world):
    # Instruction ids are unique per debtor bank only: gamma may pick the one alfa used.
    from_alfa = await world.settlement.submit(submit_request(), "ALFAXX01")
    from_gamma = await world.settlement.submit(submit_request(debtor="GAMMXX03"), "GAMMXX03")
    assert (from_alfa.status, from_gamma.status) == (pb.TRANSFER_STATUS_ACCEPTED,) * 2
    assert (await totals(world)).reserves == {
        "ALFAXX01": 102_000,
        "BETAXX02": 26_000,
        "GAMMXX03": 27_000,
    }
    assert await world.balance(world.beta, "shop-sales", "shop") == (6_000, 6_000, 0)
    assert await world.settlement.forward_pending() == 0


async def test_an_unreachable_creditor_keeps_the_transfer_pending_until_resubmitted(world):
    world.unreachable.add("BETAXX02")
    pending = await world.settlement.submit(submit_request(), "ALFAXX01")
    assert pending.status == pb.TRANSFER_STATUS_PENDING
    settled = await totals(world)
    # Earmarked on the debtor, not yet moved.
    assert settled.reserves == {"ALFAXX01": 105_000, "BETAXX02": 20_000, "GAMMXX03": 30_000}
    assert settled.debits_pending == 3_000
    world.unreachable.clear()
    resubmitted = await world.settlement.submit(submit_request(), "ALFAXX01")
    assert resubmitted.status == pb.TRANSFER_STATUS_ACCEPTED
    assert (await totals(world)).reserves == {
        "ALFAXX01": 102_000,
        "BETAXX02": 23_000,
        "GAMMXX03": 30_000,
    }
    assert await world.settlement.forward_pending() == 0


async def test_transfer_status_is_told_only_to_the_agents_of_the_transfer(world):
    await world.settlement.submit(submit_request(), "ALFAXX01")
    assert (await world.settlement.status("s-1", "ALFAXX01")).status == pb.TRANSFER_STATUS_ACCEPTED
    with pytest.raises(errors.NotFound) as caught:
        await world.settlement.status("s-1", "SETLXX00")
    assert caught.value.reason == "TRANSACTION_NOT_FOUND"
