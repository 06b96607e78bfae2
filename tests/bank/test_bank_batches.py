"""The batch RPCs of the private network: each entry answered as if it came alone."""

from __future__ import annotations

import pytest
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import settlement_pb2 as pb
from test_bank_clearing import transfer
from test_bank_settlement import submit_request

from bank.audit import settlement_totals
from bank.cheques import ChequeDesk
from bank.servicers import ClearingServicer, IssuerServicer, SettlementServicer
from payment import errors
from payment.batching import MAX_BATCH, from_entry_error
from payment.config import Role
from payment.identity import Identity, current_caller

START = {"ALFAXX01": 105_000, "BETAXX02": 20_000, "GAMMXX03": 30_000}


def as_caller(world, role: Role, name: str) -> None:
    current_caller.set(Identity(world.network.trust_domain, role, name, 1))


def outcomes(response) -> list[tuple[str, str, str]]:
    """Each result as (report status or error code, reason, instruction id or message)."""
    found = []
    for result in response.results:
        if result.WhichOneof("outcome") == "report":
            status = pb.TransferStatus.Name(result.report.status)
            found.append((status, result.report.reason_code, result.report.instruction_id))
        else:
            error = from_entry_error(result.error)
            found.append((error.code.name, error.reason, error.message))
    return found


async def test_a_batch_settles_each_entry_as_alone_and_answers_in_the_same_order(world):
    as_caller(world, Role.BANK, "alfa")
    servicer = SettlementServicer(world.settlement, world.network, world.settlement_store)
    no_request_id = submit_request("s-3", amount=500)
    no_request_id.request_id = ""
    request = pb.SubmitCreditTransfersRequest(
        entries=[
            submit_request("s-1", amount=3_000),
            submit_request("s-2", amount=700, debtor="BETAXX02"),  # not the caller's own code
            no_request_id,
            submit_request("s-4", amount=2_000, account_id="nobody"),
            submit_request("s-1", amount=3_000),  # the same entry twice in one batch
        ]
    )
    response = await servicer.SubmitCreditTransfers(request, None)
    found = outcomes(response)
    assert [f[:2] for f in found] == [
        ("TRANSFER_STATUS_ACCEPTED", ""),
        ("PERMISSION_DENIED", "DEBTOR_AGENT_NOT_CALLER"),
        ("INVALID_ARGUMENT", "REQUEST_ID_MISSING"),
        ("TRANSFER_STATUS_REJECTED", "CREDITOR_ACCOUNT_UNKNOWN"),
        ("TRANSFER_STATUS_ACCEPTED", ""),
    ]
    assert [found[0][2], found[3][2], found[4][2]] == ["s-1", "s-4", "s-1"]
    settled = await world.settlement_store.read(settlement_totals)
    assert settled.reserves == {
        "ALFAXX01": START["ALFAXX01"] - 3_000,
        "BETAXX02": START["BETAXX02"] + 3_000,
        "GAMMXX03": START["GAMMXX03"],
    }
    assert settled.balanced
    assert await world.balance(world.beta, "shop-sales", "shop") == (3_000, 3_000, 0)

    # The same batch again is the same answers, and nothing moves twice; an entry and a
    # single SubmitCreditTransfer with its request_id are one request.
    again = await servicer.SubmitCreditTransfers(request, None)
    assert outcomes(again) == found
    single = await servicer.SubmitCreditTransfer(submit_request("s-1", amount=3_000), None)
    assert single == response.results[0].report
    assert (await world.settlement_store.read(settlement_totals)).reserves == settled.reserves
    assert await world.balance(world.beta, "shop-sales", "shop") == (3_000, 3_000, 0)


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
async def test_a_batch_of_no_transfers_or_too_many_is_refused_whole_and_moves_nothing(world, count):
    as_caller(world, Role.BANK, "alfa")
    servicer = SettlementServicer(world.settlement, world.network, world.settlement_store)
    request = pb.SubmitCreditTransfersRequest(
        entries=[submit_request(f"s-{n}", amount=10) for n in range(count)]
    )
    with pytest.raises(errors.InvalidArgument) as refused:
        await servicer.SubmitCreditTransfers(request, None)
    assert refused.value.reason == "BATCH_SIZE_INVALID"
    assert (await world.settlement_store.read(settlement_totals)).reserves == START


async def test_a_batch_from_a_caller_that_is_no_member_bank_is_refused_whole(world):
    as_caller(world, Role.SETTLEMENT, "settlement")
    servicer = SettlementServicer(world.settlement, world.network, world.settlement_store)
    request = pb.SubmitCreditTransfersRequest(entries=[submit_request("s-1")])
    with pytest.raises(errors.PermissionDenied) as refused:
        await servicer.SubmitCreditTransfers(request, None)
    assert refused.value.reason == "ROLE_NOT_ALLOWED"
    assert (await world.settlement_store.read(settlement_totals)).reserves == START


async def test_received_transfers_are_each_credited_once_with_their_own_answers(world):
    beta = world.network.bank_by_code(world.beta.code)
    assert beta is not None
    servicer = ClearingServicer(
        world.beta.clearing, ChequeDesk(world.beta.store, world.network, beta)
    )
    unnamed = transfer("i-3")
    unnamed.transfer.instruction_id = ""
    request = pb.ReceiveCreditTransfersRequest(
        entries=[
            transfer("i-1", amount=1_200),
            transfer("i-2", account_id="nobody"),
            unnamed,
            transfer("i-4", amount=800),
        ]
    )
    response = await servicer.ReceiveCreditTransfers(request, None)
    found = outcomes(response)
    assert [f[:2] for f in found] == [
        ("TRANSFER_STATUS_ACCEPTED", ""),
        ("TRANSFER_STATUS_REJECTED", "CREDITOR_ACCOUNT_UNKNOWN"),
        ("INVALID_ARGUMENT", "FIELD_INVALID"),
        ("TRANSFER_STATUS_ACCEPTED", ""),
    ]
    assert await world.balance(world.beta, "shop-sales", "shop") == (2_000, 2_000, 0)
    again = await servicer.ReceiveCreditTransfers(request, None)
    assert outcomes(again) == found
    assert await world.balance(world.beta, "shop-sales", "shop") == (2_000, 2_000, 0)
    with pytest.raises(errors.InvalidArgument) as refused:
        await servicer.ReceiveCreditTransfers(pb.ReceiveCreditTransfersRequest(), None)
    assert refused.value.reason == "BATCH_SIZE_INVALID"


def decisions(response: authz.AuthorizeHoldsResponse) -> list[tuple[str, str]]:
    """Each result as (decision and, for a sale, the captured hold status) or (code, reason)."""
    found = []
    for result in response.results:
        if result.WhichOneof("outcome") == "report":
            report = result.report
            captured = (
                authz.HoldStatus.Name(report.capture.hold_status)
                if report.HasField("capture")
                else ""
            )
            found.append((authz.AuthorizationDecision.Name(report.decision), captured))
        else:
            error = from_entry_error(result.error)
            found.append((error.code.name, error.reason))
    return found


async def test_authorizations_in_a_batch_are_each_decided_as_alone(world):
    as_caller(world, Role.GATEWAY, "gateway")
    servicer = IssuerServicer(world.alfa.issuer)
    sale = world.authorize_request(amount=1_000)
    sale.capture = True
    no_request_id = world.authorize_request(amount=300)
    no_request_id.request_id = ""
    request = authz.AuthorizeHoldsRequest(
        entries=[
            sale,
            world.authorize_request(amount=2_500),  # a hold, captured later
            world.authorize_request(customer="carol", number="4000005555555555", amount=5_001),
            world.authorize_request(signer="carol"),
            world.authorize_request(amount=50_001),  # above the risk threshold
            no_request_id,
            sale,  # the same entry twice in one batch
        ]
    )
    response = await servicer.AuthorizeHolds(request, None)
    found = decisions(response)
    assert found == [
        ("AUTHORIZATION_DECISION_APPROVED", "HOLD_STATUS_CAPTURED"),
        ("AUTHORIZATION_DECISION_APPROVED", ""),
        ("FAILED_PRECONDITION", "INSUFFICIENT_FUNDS"),
        ("INVALID_ARGUMENT", "DUAL_SIGNATURE_INVALID"),
        ("AUTHORIZATION_DECISION_CHALLENGE_REQUIRED", ""),
        ("INVALID_ARGUMENT", "REQUEST_ID_MISSING"),
        ("AUTHORIZATION_DECISION_APPROVED", "HOLD_STATUS_CAPTURED"),
    ]
    assert response.results[6].report == response.results[0].report
    # alice: 1,000 sold once, 2,500 and 50,001 held; carol's refusal held nothing.
    assert await world.balance(world.alfa, "alice-current", "alice") == (
        99_000,
        99_000 - 2_500 - 50_001,
        2_500 + 50_001,
    )
    assert await world.balance(world.alfa, "carol-current", "carol") == (5_000, 5_000, 0)
    assert await world.balance(world.beta, "shop-sales", "shop") == (1_000, 1_000, 0)
    await world.assert_balanced()

    # The same batch again is the same answers, and nothing is held or sold twice; an
    # entry and a single AuthorizeHold with its request_id are one request.
    again = await servicer.AuthorizeHolds(request, None)
    assert decisions(again) == found
    assert [r.report.hold_id for r in again.results] == [r.report.hold_id for r in response.results]
    single = await servicer.AuthorizeHold(request.entries[1], None)
    assert single == response.results[1].report
    assert await world.balance(world.alfa, "alice-current", "alice") == (
        99_000,
        99_000 - 2_500 - 50_001,
        2_500 + 50_001,
    )
    assert await world.balance(world.beta, "shop-sales", "shop") == (1_000, 1_000, 0)


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
async def test_a_batch_of_no_authorizations_or_too_many_is_refused_whole_and_holds_nothing(
    world, count
):
    as_caller(world, Role.GATEWAY, "gateway")
    servicer = IssuerServicer(world.alfa.issuer)
    request = authz.AuthorizeHoldsRequest(
        entries=[world.authorize_request(amount=10) for _ in range(count)]
    )
    with pytest.raises(errors.InvalidArgument) as refused:
        await servicer.AuthorizeHolds(request, None)
    assert refused.value.reason == "BATCH_SIZE_INVALID"
    assert refused.value.metadata == {"field": "entries", "count": str(count)}
    assert await world.rows(world.alfa.store, "holds") == 0
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
