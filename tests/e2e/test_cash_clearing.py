"""Electronic cash between real banks over mTLS, at the bank level: withdrawals into the
outstanding liability, deposits taken by the issuing bank (itself or through the
settlement bank), double spending refused with proof, the audit, and privacy.

alice banks at alfa, bob and the shop at beta: alice's coins deposited by the shop go
from alfa to beta through the settlement bank; bob's are taken by beta itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator

import grpc
import pytest
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    cash_pb2,
    settlement_pb2,
    settlement_pb2_grpc,
)

from bank.mint import DENOMINATIONS_MINOR
from ops.audit import audit_network
from ops.launcher import wait_until_serving
from payment import cash
from payment.clock import TIME_TRAVEL_ENV
from payment.errors import error_info
from payment.pki import Pki
from payment.storage import read_snapshot
from payment.tls import TlsIdentity, secure_channel
from tests.e2e.conftest import RunningNetwork, launch_node, start_network, stop
from tests.support.cash import (
    WalletCoin,
    denominations,
    deposit,
    finish,
    prepare_withdrawal,
    send_withdrawal,
    spend,
    withdraw,
)

STATE = cash_pb2.CoinDepositState
DIGEST = hashlib.sha256(b"an order").digest()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("cash"), net_debit_cap_minor=10**12)
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _booked(net: RunningNetwork, holder: str) -> int:
    network = net.network
    try:
        config = network.customer(holder)
        bank, account_id = config.bank, config.account_id
    except KeyError:
        merchant = network.merchant(holder)
        bank, account_id = merchant.bank, merchant.account_id

    async def ask() -> int:
        identity = TlsIdentity.load(Pki(network.pki_dir), holder)
        async with secure_channel(network.node(bank).address, identity) as channel:
            reply = await account_pb2_grpc.AccountServiceStub(channel).GetBalance(
                account_pb2.GetBalanceRequest(account_id=account_id)
            )
        return reply.booked.amount_minor

    return asyncio.run(ask())


def _outstanding(net: RunningNetwork) -> dict[str, int]:
    report = asyncio.run(audit_network(net.network))
    assert report.ok, report.to_json()
    return report.to_json()["checks"]["cash_outstanding"]


def _contract(order_id: str) -> cash_pb2.CoinContract:
    return cash_pb2.CoinContract(order_id=order_id, order_digest=DIGEST, merchant_name="shop")


def _pay(
    net: RunningNetwork, coins: list[WalletCoin], order_id: str
) -> cash_pb2.DepositCoinsResponse:
    spent = spend(coins, order_id, DIGEST, "shop")
    total = sum(c.value_minor for c in coins)
    return asyncio.run(deposit(net.network, "shop", spent, _contract(order_id), total))


def test_a_withdrawal_moves_money_into_the_outstanding_liability_once(net: RunningNetwork) -> None:
    alice = _booked(net, "alice")
    before = _outstanding(net)["outstanding"]
    withdrawal = asyncio.run(prepare_withdrawal(net.network, "alice", [100, 20, 5]))
    first = asyncio.run(send_withdrawal(net.network, "alice", withdrawal))
    assert first.debited.amount_minor == 125
    assert _booked(net, "alice") == alice - 125
    assert _outstanding(net)["outstanding"] == before + 125
    # The same request again: the same blind signatures, nothing debited twice.
    again = asyncio.run(send_withdrawal(net.network, "alice", withdrawal))
    assert list(again.blind_signatures) == list(first.blind_signatures)
    assert _booked(net, "alice") == alice - 125
    assert [c.value_minor for c in finish(withdrawal, again)] == [100, 20, 5]


def test_coins_of_another_bank_are_taken_through_the_settlement_bank(net: RunningNetwork) -> None:
    coins, _ = asyncio.run(withdraw(net.network, "alice", [200, 50]))
    alice, shop = _booked(net, "alice"), _booked(net, "shop")
    outstanding = _outstanding(net)["outstanding"]
    answer = _pay(net, coins, "o-1")
    assert answer.state == STATE.COIN_DEPOSIT_STATE_ACCEPTED, answer
    assert answer.amount.amount_minor == 250
    assert (_booked(net, "alice"), _booked(net, "shop")) == (alice, shop + 250)
    assert _outstanding(net)["outstanding"] == outstanding - 250


def test_coins_of_the_acquirer_itself_are_taken_at_deposit(net: RunningNetwork) -> None:
    coins, _ = asyncio.run(withdraw(net.network, "bob", [1000]))
    shop = _booked(net, "shop")
    answer = _pay(net, coins, "o-2")
    assert answer.state == STATE.COIN_DEPOSIT_STATE_ACCEPTED
    assert _booked(net, "shop") == shop + 1000


@pytest.mark.parametrize("bank_customer", ["alice", "bob"])
def test_a_coin_spent_twice_is_refused_with_the_first_spending_as_proof(
    net: RunningNetwork, bank_customer: str
) -> None:
    coins, _ = asyncio.run(withdraw(net.network, bank_customer, [500]))
    assert _pay(net, coins, f"first-{bank_customer}").state == STATE.COIN_DEPOSIT_STATE_ACCEPTED
    shop = _booked(net, "shop")
    second = _pay(net, coins, f"second-{bank_customer}")
    assert second.state == STATE.COIN_DEPOSIT_STATE_REJECTED
    assert second.reason == "COIN_DOUBLE_SPENT"
    proof = second.double_spend_proof
    assert proof.coin_public_key == coins[0].public_key
    assert proof.contract.order_id == f"first-{bank_customer}"
    assert _booked(net, "shop") == shop


def test_one_coin_deposited_twice_at_once_is_taken_once(net: RunningNetwork) -> None:
    coins, _ = asyncio.run(withdraw(net.network, "alice", [2000]))
    shop = _booked(net, "shop")

    async def both() -> list[cash_pb2.DepositCoinsResponse]:
        return await asyncio.gather(
            *(
                deposit(
                    net.network,
                    "shop",
                    spend(coins, order_id, DIGEST, "shop"),
                    _contract(order_id),
                    2000,
                )
                for order_id in ("race-1", "race-2")
            )
        )

    answers = asyncio.run(both())
    states = sorted(a.state for a in answers)
    assert states == [STATE.COIN_DEPOSIT_STATE_ACCEPTED, STATE.COIN_DEPOSIT_STATE_REJECTED]
    assert _booked(net, "shop") == shop + 2000


def test_a_forged_or_misdirected_coin_is_refused_coin_invalid(net: RunningNetwork) -> None:
    coins, _ = asyncio.run(withdraw(net.network, "alice", [10]))
    spent = spend(coins, "o-3", DIGEST, "shop")
    forged = cash_pb2.Coin()
    forged.CopyFrom(spent[0])
    forged.denomination_signature = bytes(len(forged.denomination_signature))
    answer = asyncio.run(deposit(net.network, "shop", [forged], _contract("o-3"), 10))
    assert (answer.state, answer.reason) == (STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_INVALID")
    # Signed for another order than the one deposited.
    answer = asyncio.run(deposit(net.network, "shop", spent, _contract("o-4"), 10))
    assert (answer.state, answer.reason) == (STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_INVALID")
    # A wrong total.
    answer = asyncio.run(deposit(net.network, "shop", spent, _contract("o-3"), 11))
    assert (answer.state, answer.reason) == (STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_INVALID")
    # Refused coins are still unspent: the honest deposit goes through.
    assert _pay(net, coins, "o-3").state == STATE.COIN_DEPOSIT_STATE_ACCEPTED


def test_a_merchant_deposits_only_its_own_contracts(net: RunningNetwork) -> None:
    coins, _ = asyncio.run(withdraw(net.network, "alice", [1]))
    contract = cash_pb2.CoinContract(order_id="o-5", order_digest=DIGEST, merchant_name="other")
    with pytest.raises(grpc.RpcError) as refused:
        asyncio.run(deposit(net.network, "shop", spend(coins, "o-5", DIGEST, "other"), contract, 1))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(refused.value)
    assert info is not None and info.metadata["field"] == "contract.merchant_name"


def test_the_bank_stores_nothing_at_withdrawal_that_a_deposited_coin_shows(
    net: RunningNetwork,
) -> None:
    """Unlinkability: everything alfa keeps of its withdrawals (customer, amount, blinded
    digests, blind signatures) contains none of the coins' public keys, message prefixes
    or signatures that it sees at deposit, and nothing hashed from them."""
    coins, _ = asyncio.run(withdraw(net.network, "alice", [5, 2, 1]))
    assert _pay(net, coins, "o-private").state == STATE.COIN_DEPOSIT_STATE_ACCEPTED
    shown: list[bytes] = []
    for coin in coins:
        shown += [coin.public_key, coin.message_prefix, coin.signature]
        shown += [hashlib.sha256(v).digest() for v in (coin.public_key, coin.signature)]
    with read_snapshot(net.network.node("alfa").store_path) as conn:
        kept = [
            bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
            for row in conn.execute(
                "SELECT customer_name, request_id, account_id, amount, blinded_digests,"
                " response, ledger_transfer_id, withdrawn_at FROM withdrawals"
            )
            for v in row
        ]
        spent = {bytes(r[0]) for r in conn.execute("SELECT coin_public_key FROM spent_coins")}
    assert all(c.public_key in spent for c in coins)  # the bank did see them at deposit
    leaks = [value.hex()[:16] for value in shown for blob in kept if value in blob]
    assert leaks == []


def test_keys_rotate_and_coins_of_an_expired_denomination_are_refused(
    net: RunningNetwork,
) -> None:
    """Four years on (the issuing bank's clock set ahead): every denomination has a new
    key open for withdrawal, the old keys are out of the key set, and a coin withdrawn
    under an old key, past its three-year deposit period, is refused DENOMINATION_EXPIRED;
    the customer's money stays in the outstanding liability, the shop gets nothing."""
    network = net.network
    alfa = network.node("alfa")
    coins, _ = asyncio.run(withdraw(network, "alice", [50]))
    old = {k.key_id for k in asyncio.run(denominations(network, "alfa", "alice"))}

    def restart(offset_days: int) -> None:
        proc = net.procs["alfa"]
        proc.terminate()
        assert proc.wait(15) == 0
        env = {TIME_TRAVEL_ENV: str(offset_days * 86400)} if offset_days else {}
        net.procs["alfa"] = launch_node(net.path, alfa, net.workdir, env=env)
        asyncio.run(wait_until_serving(network, 30, net.dead))

    restart(4 * 365)
    try:
        later = asyncio.run(denominations(network, "alfa", "alice"))
        assert {k.value_minor for k in later} == set(DENOMINATIONS_MINOR)
        assert not old & {k.key_id for k in later}
        shop = _booked(net, "shop")
        answer = _pay(net, coins, "o-expired")
        assert (answer.state, answer.reason) == (
            STATE.COIN_DEPOSIT_STATE_REJECTED,
            "DENOMINATION_EXPIRED",
        )
        assert _booked(net, "shop") == shop
    finally:
        restart(0)


def test_one_coin_spent_at_two_merchants_of_two_banks_at_once_is_taken_once(
    net: RunningNetwork,
) -> None:
    """bob's coin (issued by beta) pays the shop, deposited at beta, and at the same time
    another merchant's order, deposited by alfa through the settlement bank: beta takes
    it exactly once. (Last in the module: alfa's deposit is outside alfa's own books.)"""
    network = net.network
    coins, _ = asyncio.run(withdraw(network, "bob", [200]))
    theirs = cash_pb2.CoinContract(order_id="elsewhere", order_digest=DIGEST, merchant_name="kiosk")
    coin = coins[0]
    at_alfa = cash_pb2.CoinDeposit(
        deposit_id=str(uuid.uuid4()),
        presenting_agent="ALFAXX01",
        issuing_agent="BETAXX02",
        amount={"amount_minor": 200, "currency_code": network.currency},
        contract=theirs,
        coins=[
            cash_pb2.Coin(
                bank_code=coin.bank_code,
                denomination_key_id=coin.key_id,
                coin_public_key=coin.public_key,
                message_prefix=coin.message_prefix,
                denomination_signature=coin.signature,
                coin_signature=cash.sign_contract(
                    coin.private_key, "elsewhere", DIGEST, "kiosk", 200, coin.currency
                ),
            )
        ],
    )

    async def present_as_alfa() -> settlement_pb2.SubmitCoinDepositResponse:
        identity = TlsIdentity.load(Pki(network.pki_dir), "alfa")
        async with secure_channel(network.node("settlement").address, identity) as channel:
            reply: settlement_pb2.SubmitCoinDepositResponse = (
                await settlement_pb2_grpc.SettlementServiceStub(channel).SubmitCoinDeposit(
                    settlement_pb2.SubmitCoinDepositRequest(
                        request_id=at_alfa.deposit_id, deposit=at_alfa
                    )
                )
            )
        return reply

    async def both() -> tuple[
        cash_pb2.DepositCoinsResponse, settlement_pb2.SubmitCoinDepositResponse
    ]:
        spent = spend(coins, "here", DIGEST, "shop")
        return await asyncio.gather(
            deposit(network, "shop", spent, _contract("here"), 200), present_as_alfa()
        )

    at_beta, elsewhere = asyncio.run(both())
    taken = [
        at_beta.state == STATE.COIN_DEPOSIT_STATE_ACCEPTED,
        elsewhere.status == settlement_pb2.TRANSFER_STATUS_ACCEPTED,
    ]
    assert taken.count(True) == 1, (at_beta, elsewhere)
    refused = elsewhere.reason_code if taken[0] else at_beta.reason
    assert refused == "COIN_DOUBLE_SPENT"
