"""The merchant's side of electronic cash, over a real network on mTLS.

SubmitCoins: the offline checks of docs/cash.md section 4 (each refusal leaves
the order as it was), the deposit at the shop's bank (beta), the order settled
and delivered in the answer, retries by request_id, coins spent twice (one
after the other, and at once for two orders), a deposit the issuer cannot
decide yet, a deposit whose answer is lost, and a refund the merchant does not
make for coins yet. The module ends with the audit and the reconciliation of
everything it paid.

Coins are made here as a wallet makes them, with the real banks
(tests.support.cash: GetDenominations, blinded coin messages, Withdraw with the
customer's certificate, the blind signatures finalized). alice banks at alfa
(her coins go to alfa through the settlement bank), bob at beta, the shop's own
bank (his are taken at deposit).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from interbank.v1 import account_pb2, account_pb2_grpc, cash_pb2, cash_pb2_grpc, order_pb2
from interbank.v1 import order_pb2_grpc as order_grpc

from merchant.app import SCHEMA
from merchant.coin_keys import KeySets, read_key_set
from merchant.coins import CashDesk, CoinPayments
from merchant.ordering import OrderBook
from ops.audit import audit_network
from ops.launcher import wait_until_serving
from ops.reconcile import reconcile, render_table
from payment import errors
from payment.cash import CashError
from payment.cheque_trust import ChequeKeys
from payment.errors import error_info
from payment.pki import Pki
from payment.storage import Store
from payment.tls import TlsIdentity, secure_channel
from tests.support import RunningNetwork, launch_node, start_network, stop
from tests.support.cash import WalletCoin, spend, withdraw
from tests.support.ports import pick_ports

S = order_pb2.OrderStatus
SHOP = "shop"
BOOK = ("book-001", 1)  # 45.00 EUR
BOOK_COINS = [2000, 2000, 500]
WAIT_S = 30.0


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network, shared by this module's tests."""
    running = start_network(tmp_path_factory.mktemp("merchant-coins"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


# -- calling the shop and the banks ---------------------------------------------------------


@asynccontextmanager
async def _as(
    net: RunningNetwork, holder: str, node: str = SHOP
) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to node with holder's certificate."""
    network = net.network
    identity = TlsIdentity.load(Pki(network.pki_dir), holder)
    async with secure_channel(network.node(node).address, identity) as channel:
        yield channel


async def _order(net: RunningNetwork, customer: str, *lines: tuple[str, int]) -> order_pb2.Order:
    async with _as(net, customer) as channel:
        reply = await order_grpc.OrderServiceStub(channel).CreateOrder(
            order_pb2.CreateOrderRequest(
                request_id=str(uuid.uuid4()),
                lines=[
                    order_pb2.CreateOrderLine(sku=sku, quantity=quantity)
                    for sku, quantity in (lines or (BOOK,))
                ],
            )
        )
    assert isinstance(reply, order_pb2.CreateOrderResponse)
    return reply.order


async def _get(net: RunningNetwork, customer: str, order_id: str) -> order_pb2.Order:
    async with _as(net, customer) as channel:
        reply = await order_grpc.OrderServiceStub(channel).GetOrder(
            order_pb2.GetOrderRequest(order_id=order_id)
        )
    assert isinstance(reply, order_pb2.GetOrderResponse)
    return reply.order


async def _submit(
    net: RunningNetwork,
    customer: str,
    order_id: str,
    coins: Sequence[cash_pb2.Coin],
    request_id: str | None = None,
) -> order_pb2.Order:
    async with _as(net, customer) as channel:
        reply = await order_grpc.OrderServiceStub(channel).SubmitCoins(
            order_pb2.SubmitCoinsRequest(
                request_id=request_id or str(uuid.uuid4()), order_id=order_id, coins=coins
            ),
            timeout=WAIT_S,
        )
    assert isinstance(reply, order_pb2.SubmitCoinsResponse)
    return reply.order


async def _refused(
    net: RunningNetwork,
    customer: str,
    order_id: str,
    coins: Sequence[cash_pb2.Coin],
    request_id: str | None = None,
) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _submit(net, customer, order_id, coins, request_id)
    info = error_info(err.value)
    assert info is not None, err.value
    return err.value.code(), info.reason, dict(info.metadata)


async def _booked(net: RunningNetwork, holder: str) -> int:
    network = net.network
    try:
        config = network.customer(holder)
        bank, account_id = config.bank, config.account_id
    except KeyError:
        merchant = network.merchant(holder)
        bank, account_id = merchant.bank, merchant.account_id
    async with _as(net, holder, bank) as channel:
        reply = await account_pb2_grpc.AccountServiceStub(channel).GetBalance(
            account_pb2.GetBalanceRequest(account_id=account_id)
        )
    assert isinstance(reply, account_pb2.GetBalanceResponse)
    return reply.booked.amount_minor


async def _outstanding(net: RunningNetwork) -> int:
    """The banks' e-cash outstanding liability together, once the audit passes."""
    report = await audit_network(net.network)
    assert report.ok, report.to_json()
    checks = report.to_json()["checks"]
    assert isinstance(checks, dict)
    outstanding = checks["cash_outstanding"]["outstanding"]
    assert isinstance(outstanding, int)
    return outstanding


def _paying(coins: list[WalletCoin], order: order_pb2.Order) -> list[cash_pb2.Coin]:
    """The coins, each signing the order's contract."""
    return spend(coins, order.order_id, order.order_digest, order.merchant_name)


async def _restart(net: RunningNetwork, name: str) -> None:
    node = net.network.node(name)
    net.procs[name] = launch_node(net.path, node, net.workdir)
    await wait_until_serving(dataclasses.replace(net.network, nodes=(node,)), 30.0, net.dead)


# -- paid and delivered ---------------------------------------------------------------------


async def test_coins_of_another_bank_pay_an_order_delivered_in_the_answer_with_balances_exact(
    net: RunningNetwork,
) -> None:
    order = await _order(net, "alice", ("book-001", 1), ("lamp-002", 1))
    total = order.total.amount_minor
    values = [5000, 2000, 500, 200, 50]
    assert sum(values) == total
    alice, shop, outstanding = (
        await _booked(net, "alice"),
        await _booked(net, SHOP),
        await _outstanding(net),
    )
    coins, _ = await withdraw(net.network, "alice", values)
    # The customer pays at withdrawal; the shop is paid at deposit.
    assert (await _booked(net, "alice"), await _outstanding(net)) == (
        alice - total,
        outstanding + total,
    )
    paying = _paying(coins, order)
    request_id = str(uuid.uuid4())
    delivered = await _submit(net, "alice", order.order_id, paying, request_id)
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED, delivered
    assert delivered.delivery.tracking_reference.startswith("TRK-")
    after = (alice - total, shop + total, outstanding)
    assert (await _booked(net, "alice"), await _booked(net, SHOP), await _outstanding(net)) == after
    # The same request again, and the same coins under another request_id: the order as it
    # is now, nothing deposited twice.
    again = await _submit(net, "alice", order.order_id, paying, request_id)
    assert again.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    other = await _submit(net, "alice", order.order_id, paying)
    assert other.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert (await _booked(net, "alice"), await _booked(net, SHOP), await _outstanding(net)) == after
    # The same request_id for other coins is a reused key.
    code, reason, _ = await _refused(net, "alice", order.order_id, paying[:-1], request_id)
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")


async def test_coins_of_the_shops_own_bank_are_taken_at_deposit(net: RunningNetwork) -> None:
    order = await _order(net, "bob")
    coins, _ = await withdraw(net.network, "bob", BOOK_COINS)
    bob, shop = await _booked(net, "bob"), await _booked(net, SHOP)
    delivered = await _submit(net, "bob", order.order_id, _paying(coins, order))
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED, delivered
    assert (await _booked(net, "bob"), await _booked(net, SHOP)) == (bob, shop + 4500)


# -- the offline checks: nothing moves ------------------------------------------------------


def _forged_signature(coin: cash_pb2.Coin) -> None:
    coin.denomination_signature = coin.denomination_signature[:-1] + bytes(
        [coin.denomination_signature[-1] ^ 0x01]
    )


def _unknown_key(coin: cash_pb2.Coin) -> None:
    coin.denomination_key_id = os.urandom(16).hex()


def _unsigned_by_the_bank(coin: cash_pb2.Coin) -> None:
    # Another coin key over the same bank signature: the bank never signed this key.
    coin.coin_public_key = os.urandom(32)


FORGERIES = {
    "forged denomination signature": _forged_signature,
    "unknown denomination key": _unknown_key,
    "coin key the bank never signed": _unsigned_by_the_bank,
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_a_forged_coin_is_coin_invalid_naming_it_with_the_order_unchanged(
    net: RunningNetwork, forgery: str
) -> None:
    order = await _order(net, "alice")
    coins, _ = await withdraw(net.network, "alice", BOOK_COINS)
    paying = _paying(coins, order)
    FORGERIES[forgery](paying[1])
    shop = await _booked(net, SHOP)
    code, reason, metadata = await _refused(net, "alice", order.order_id, paying)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "COIN_INVALID")
    assert metadata["coin_index"] == "1"
    assert await _get(net, "alice", order.order_id) == order
    assert await _booked(net, SHOP) == shop
    # The honest coins are unspent: they still pay the order.
    delivered = await _submit(net, "alice", order.order_id, _paying(coins, order))
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED


async def test_coins_signing_another_orders_contract_are_coin_invalid(
    net: RunningNetwork,
) -> None:
    order, other = await _order(net, "alice"), await _order(net, "alice")
    coins, _ = await withdraw(net.network, "alice", BOOK_COINS)
    code, reason, metadata = await _refused(net, "alice", order.order_id, _paying(coins, other))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "COIN_INVALID")
    assert metadata["coin_index"] == "0"
    assert await _get(net, "alice", order.order_id) == order
    assert await _get(net, "alice", other.order_id) == other


async def test_coins_that_do_not_add_up_to_the_total_are_amount_mismatch(
    net: RunningNetwork,
) -> None:
    order = await _order(net, "alice")
    coins, _ = await withdraw(net.network, "alice", [2000, 2000, 200, 200, 200])
    code, reason, _ = await _refused(net, "alice", order.order_id, _paying(coins[:3], order))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_MISMATCH")
    code, reason, _ = await _refused(net, "alice", order.order_id, _paying(coins, order))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_MISMATCH")
    assert await _get(net, "alice", order.order_id) == order


async def test_no_coins_or_coins_of_two_banks_or_of_no_bank_are_field_invalid(
    net: RunningNetwork,
) -> None:
    order = await _order(net, "alice")
    alfa_coins, _ = await withdraw(net.network, "alice", [2000, 2000])
    beta_coins, _ = await withdraw(net.network, "bob", [500])
    two_banks = _paying(alfa_coins, order) + _paying(beta_coins, order)
    no_bank = _paying([dataclasses.replace(alfa_coins[0], bank_code="NOPEXX99")], order)
    for coins in ([], two_banks, no_bank):
        code, reason, metadata = await _refused(net, "alice", order.order_id, coins)
        assert (code, reason, metadata["field"]) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
            "coins",
        )
    assert await _get(net, "alice", order.order_id) == order


async def test_an_order_that_is_not_created_is_not_payable_and_anothers_is_not_found(
    net: RunningNetwork,
) -> None:
    order = await _order(net, "alice")
    coins, _ = await withdraw(net.network, "alice", BOOK_COINS)
    async with _as(net, "alice") as channel:
        await order_grpc.OrderServiceStub(channel).CancelOrder(
            order_pb2.CancelOrderRequest(request_id=str(uuid.uuid4()), order_id=order.order_id)
        )
    code, reason, _ = await _refused(net, "alice", order.order_id, _paying(coins, order))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ORDER_NOT_PAYABLE")
    other = await _order(net, "alice")
    code, reason, _ = await _refused(net, "bob", other.order_id, _paying(coins, other))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


# -- spent twice ----------------------------------------------------------------------------


@pytest.mark.parametrize("customer", ["alice", "bob"])
async def test_coins_spent_before_are_refused_coin_double_spent_naming_the_first_order(
    net: RunningNetwork, customer: str
) -> None:
    first, second = await _order(net, customer), await _order(net, customer)
    coins, _ = await withdraw(net.network, customer, BOOK_COINS)
    delivered = await _submit(net, customer, first.order_id, _paying(coins, first))
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    shop, outstanding = await _booked(net, SHOP), await _outstanding(net)
    # The same coins, each signing the second order's contract: valid offline, spent at
    # the issuer.
    request_id = str(uuid.uuid4())
    code, reason, metadata = await _refused(
        net, customer, second.order_id, _paying(coins, second), request_id
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "COIN_DOUBLE_SPENT")
    assert metadata["coin_public_key"] in {coin.public_key.hex() for coin in coins}
    assert metadata["spent_order_id"] == first.order_id
    reopened = await _get(net, customer, second.order_id)
    assert (reopened.status, reopened.failure_reason) == (
        S.ORDER_STATUS_CREATED,
        "COIN_DOUBLE_SPENT",
    )
    assert (await _booked(net, SHOP), await _outstanding(net)) == (shop, outstanding)
    # The same request again: the same refusal, kept; the order stays open.
    again = await _refused(net, customer, second.order_id, _paying(coins, second), request_id)
    assert again[:2] == (grpc.StatusCode.ALREADY_EXISTS, "COIN_DOUBLE_SPENT")
    # New coins pay it.
    fresh, _ = await withdraw(net.network, customer, BOOK_COINS)
    paid = await _submit(net, customer, second.order_id, _paying(fresh, second))
    assert paid.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert await _booked(net, SHOP) == shop + 4500


async def test_one_set_of_coins_paying_two_orders_at_once_is_taken_once(
    net: RunningNetwork,
) -> None:
    orders = [await _order(net, "alice"), await _order(net, "alice")]
    coins, _ = await withdraw(net.network, "alice", BOOK_COINS)
    shop, outstanding = await _booked(net, SHOP), await _outstanding(net)
    answers = await asyncio.gather(
        *(_submit(net, "alice", order.order_id, _paying(coins, order)) for order in orders),
        return_exceptions=True,
    )
    delivered = [a for a in answers if isinstance(a, order_pb2.Order)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(delivered) == len(refused) == 1, answers
    assert delivered[0].status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    info = error_info(refused[0])
    assert refused[0].code() == grpc.StatusCode.ALREADY_EXISTS
    assert info is not None and info.reason == "COIN_DOUBLE_SPENT"
    assert info.metadata["spent_order_id"] == delivered[0].order_id
    # The shop is paid once and the liability reduced once; the audit passes.
    assert (await _booked(net, SHOP), await _outstanding(net)) == (shop + 4500, outstanding - 4500)


# -- deposits not decided at once -----------------------------------------------------------


async def _until_delivered(
    net: RunningNetwork, customer: str, order_id: str, coins: list[cash_pb2.Coin], request_id: str
) -> order_pb2.Order:
    """The same request again until the order is delivered (nodes reconnect with backoff)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        try:
            order = await _submit(net, customer, order_id, coins, request_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        else:
            if order.status != S.ORDER_STATUS_PAYMENT_PENDING:
                return order
        assert loop.time() < deadline, "the deposit was not decided in time"
        await asyncio.sleep(0.3)


async def _submit_while_the_issuer_is_down(
    net: RunningNetwork, order_id: str, coins: list[cash_pb2.Coin], request_id: str
) -> None:
    """alice's coins submitted while alfa is down: the acquirer keeps the deposit PENDING
    and the shop answers the order PAYMENT_PENDING (or, if a deadline on the way to alfa
    ran out first, PAYMENT_OUTCOME_UNKNOWN with the order pending all the same)."""
    try:
        pending = await _submit(net, "alice", order_id, coins, request_id)
        assert pending.status == S.ORDER_STATUS_PAYMENT_PENDING
    except grpc.aio.AioRpcError as exc:
        info = error_info(exc)
        assert info is not None and info.reason == "PAYMENT_OUTCOME_UNKNOWN", exc
    assert (await _get(net, "alice", order_id)).status == S.ORDER_STATUS_PAYMENT_PENDING


async def test_a_deposit_the_issuer_cannot_decide_yet_stays_pending_and_a_retry_settles_it(
    net: RunningNetwork,
) -> None:
    order = await _order(net, "alice")
    coins, _ = await withdraw(net.network, "alice", BOOK_COINS)
    paying = _paying(coins, order)
    # The shop has alfa's key set (an order of the wrong amount fetched it), then alfa stops.
    _, reason, _ = await _refused(net, "alice", order.order_id, paying[:1])
    assert reason == "AMOUNT_MISMATCH"
    shop = await _booked(net, SHOP)
    request_id = str(uuid.uuid4())
    stop({"alfa": net.procs["alfa"]})
    try:
        await _submit_while_the_issuer_is_down(net, order.order_id, paying, request_id)
        assert await _booked(net, SHOP) == shop
    finally:
        await _restart(net, "alfa")
    # The same request, answered from the shop's record, sends the deposit again.
    delivered = await _until_delivered(net, "alice", order.order_id, paying, request_id)
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED, delivered
    assert await _booked(net, SHOP) == shop + 4500


async def test_a_deposit_whose_answer_is_lost_is_payment_outcome_unknown_and_a_retry_pays_once(
    net: RunningNetwork,
) -> None:
    order = await _order(net, "alice")
    coins, _ = await withdraw(net.network, "alice", BOOK_COINS)
    paying = _paying(coins, order)
    shop = await _booked(net, SHOP)
    request_id = str(uuid.uuid4())
    stop({"beta": net.procs["beta"]})
    try:
        code, reason, _ = await _refused(net, "alice", order.order_id, paying, request_id)
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "PAYMENT_OUTCOME_UNKNOWN")
        pending = await _get(net, "alice", order.order_id)
        assert pending.status == S.ORDER_STATUS_PAYMENT_PENDING
    finally:
        await _restart(net, "beta")
    delivered = await _until_delivered(net, "alice", order.order_id, paying, request_id)
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED, delivered
    assert await _booked(net, SHOP) == shop + 4500


async def test_the_resolver_sends_an_undecided_deposit_again_until_the_issuer_takes_it(
    net: RunningNetwork,
) -> None:
    """The shop's own resolver step, run on its store while the node is stopped, over real
    channels to its bank."""
    network = net.network
    order = await _order(net, "alice")
    coins, _ = await withdraw(network, "alice", BOOK_COINS)
    paying = _paying(coins, order)
    _, reason, _ = await _refused(net, "alice", order.order_id, paying[:1])  # alfa's key set
    assert reason == "AMOUNT_MISMATCH"
    shop = await _booked(net, SHOP)
    stop({"alfa": net.procs["alfa"]})
    try:
        await _submit_while_the_issuer_is_down(net, order.order_id, paying, str(uuid.uuid4()))
    finally:
        await _restart(net, "alfa")
    stop({SHOP: net.procs[SHOP]})
    try:
        store = Store(network.node(SHOP).store_path, SCHEMA)
        await store.open()
        identity = TlsIdentity.load(Pki(network.pki_dir), SHOP)
        async with secure_channel(network.node("beta").address, identity) as beta:
            book = OrderBook(store, network.trust_domain, SHOP, _no_gateway, 5.0)
            acquirer: Any = cash_pb2_grpc.CashServiceStub(beta)
            desk = CashDesk(ChequeKeys(network), lambda code: None, lambda: acquirer)
            payments = CoinPayments(book, desk)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT_S
            while not await payments.resume_deposits(older_than_s=0.0):
                assert loop.time() < deadline, "the deposit was not decided in time"
                await asyncio.sleep(0.3)
        await store.close()
    finally:
        await _restart(net, SHOP)
    delivered = await _get(net, "alice", order.order_id)
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED, delivered
    assert await _booked(net, SHOP) == shop + 4500


def _no_gateway() -> Any:
    raise AssertionError("a coin payment never calls the gateway")


async def test_an_order_paid_with_coins_is_not_refunded_yet(net: RunningNetwork) -> None:
    order = await _order(net, "bob")
    coins, _ = await withdraw(net.network, "bob", BOOK_COINS)
    await _submit(net, "bob", order.order_id, _paying(coins, order))
    async with _as(net, SHOP) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await order_grpc.BackOfficeServiceStub(channel).RefundOrder(
                order_pb2.RefundOrderRequest(request_id=str(uuid.uuid4()), order_id=order.order_id)
            )
    info = error_info(err.value)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info is not None and info.reason == "REFUND_NOT_SUPPORTED"


# -- the issuers' key sets -------------------------------------------------------------------


async def _key_set(net: RunningNetwork, bank: str) -> cash_pb2.GetDenominationsResponse:
    async with _as(net, SHOP, bank) as channel:
        reply = await cash_pb2_grpc.CashServiceStub(channel).GetDenominations(
            cash_pb2.GetDenominationsRequest()
        )
    assert isinstance(reply, cash_pb2.GetDenominationsResponse)
    return reply


def _tampered(reply: cash_pb2.GetDenominationsResponse, change: str) -> None:
    if change == "signed bytes":
        reply.key_set = reply.key_set[:-1] + bytes([reply.key_set[-1] ^ 0x01])
    elif change == "a parsed value":
        reply.denominations[0].value.amount_minor += 1
    elif change == "a parsed key":
        reply.denominations[0].public_key = reply.denominations[1].public_key
    elif change == "the signing key":
        reply.bank_key_id = reply.bank_key_id + "0"
    else:
        reply.bank_code = "BETAXX02"


@pytest.mark.parametrize(
    "change", ["signed bytes", "a parsed value", "a parsed key", "the signing key", "the bank"]
)
async def test_a_key_set_is_taken_only_as_its_bank_signed_it(
    net: RunningNetwork, change: str
) -> None:
    reply = await _key_set(net, "alfa")
    trust = ChequeKeys(net.network)
    keys = read_key_set(reply, "ALFAXX01", trust)
    assert sorted(k.value_minor for k in keys) == [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000
    ]  # fmt: skip
    _tampered(reply, change)
    with pytest.raises(CashError):
        read_key_set(reply, "ALFAXX01", trust)


async def test_key_sets_are_kept_and_a_bank_that_cannot_answer_is_not_asked_again_at_once(
    net: RunningNetwork,
) -> None:
    """The shop's KeySets over real channels: alfa's set is fetched once, a made-up key id
    does not fetch it again, and a bank that does not answer is refused at once for a while."""
    network = net.network
    identity = TlsIdentity.load(Pki(network.pki_dir), SHOP)
    (closed_port,) = pick_ports(1)
    asked: list[str] = []
    async with (
        secure_channel(network.node("alfa").address, identity) as alfa,
        secure_channel(f"127.0.0.1:{closed_port}", identity) as nowhere,
    ):
        stubs = {"ALFAXX01": alfa, "BETAXX02": nowhere}

        def issuer(code: str) -> Any:
            asked.append(code)
            return cash_pb2_grpc.CashServiceStub(stubs[code])

        key_sets = KeySets(ChequeKeys(network), issuer, 2.0)
        keys = await key_sets.keys("ALFAXX01", set())
        known = next(iter(keys))
        assert await key_sets.keys("ALFAXX01", {known}) is keys
        assert known in await key_sets.keys("ALFAXX01", {os.urandom(16).hex()})
        assert asked == ["ALFAXX01"]
        for _ in range(2):
            with pytest.raises(errors.Unavailable) as err:
                await key_sets.keys("BETAXX02", set())
            assert err.value.reason == "KEY_SET_UNAVAILABLE"
        assert asked == ["ALFAXX01", "BETAXX02"]


# -- the books, last ------------------------------------------------------------------------


async def test_the_audit_and_the_reconciliation_pass_after_every_coin_payment(
    net: RunningNetwork,
) -> None:
    await _outstanding(net)
    report = reconcile(net.network)
    assert report.ok, render_table(report)
