"""Electronic cash's cases of the idempotency table.

==========================================  ==========  ==========  =============================
RPC                                         caller      node        effect observed (rules)
==========================================  ==========  ==========  =============================
CashService.Withdraw                        alice       alfa        alice debited once into alfa's
                                                                    outstanding liability; a
                                                                    repeat returns the same blind
                                                                    signatures (1-4)
CashService.DepositCoins                    shop        beta        alice's coins taken once by
                                                                    alfa through the settlement
                                                                    bank, the shop credited (1-4)
SettlementService.SubmitCoinDeposit         beta        settlement  alfa takes the coins once,
                                                                    window +1 (1-4)
ClearingService.ReceiveCoinDeposit          settlement  alfa        alfa takes the coins once: its
                                                                    liability down (1-4)
OrderService.SubmitCoins                    alice       shop        the order paid once with
                                                                    coins, delivered (1-4)
==========================================  ==========  ==========  =============================

Every case withdraws real coins of alice's at alfa (:mod:`tests.support.cash`: blinded,
blind-signed, unblinded and checked); the variants of rule 2 are other coins, each a
request that would take money of its own. alfa's books (AuditService.GetBooks, as the
settlement bank) show its e-cash liability: issued, deposited back, outstanding.

DepositCoins and SubmitCoins answer a repeat with their subject as it is now, not with
the stored first answer (the deposit, the order): a repeat must name the same deposit
(or order) in the same or a later state, and once the network has come to rest, the
final one.

The two interbank cases send coin deposits no deposit at beta accounts for: like the
other interbank cases, they leave beta's books short of what alfa paid out (through the
settlement bank, or not at all when alfa is asked directly).
"""

from __future__ import annotations

import os
import uuid
from functools import partial

from google.protobuf.message import Message
from interbank.v1 import audit_pb2, cash_pb2, order_pb2
from interbank.v1 import settlement_pb2 as pb

from tests.support.cash import WalletCoin, finish, prepare_withdrawal, spend, withdraw

from .case import Case, Prepared, Snapshot, delta
from .harness import ALFA, ALICE, BETA, SETTLEMENT, SHOP, Net, money, new_request_id

__all__ = ["CASH_CASES"]

STATE = cash_pb2.CoinDepositState
OS = order_pb2.OrderStatus
_VALUES = (100, 20)
"""The coins of each case's request: 1.20 EUR."""
_OTHER_VALUES = (50,)
"""The coins of its variant."""


async def _cash_books(net: Net) -> tuple[int, int, int]:
    """alfa's (outstanding, issued, deposited) e-cash, from its books."""
    reply = await net.ok(
        SETTLEMENT, ALFA, "/interbank.v1.AuditService/GetBooks", audit_pb2.GetBooksRequest()
    )
    member = reply.member
    return (
        member.cash_outstanding_minor,
        member.cash_issued_minor,
        member.cash_deposited_minor,
    )


def _contract() -> cash_pb2.CoinContract:
    """A contract of no shop order (a credit naming a shop order could settle it)."""
    return cash_pb2.CoinContract(
        order_id=f"idempotency-coins-{uuid.uuid4()}",
        order_digest=os.urandom(32),
        merchant_name=SHOP,
    )


async def _coins(net: Net, values: tuple[int, ...]) -> list[WalletCoin]:
    """Fresh coins of alice's from alfa."""
    coins, _ = await withdraw(net.network, ALICE, list(values))
    return coins


# -- the mint (customer -> its bank) --------------------------------------------------------------


async def withdraw_coins(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """Withdraw of 1.20 EUR of coins (1.00 and 0.20) from alice's account; the variant
    withdraws one coin of 0.50."""
    drawn = await prepare_withdrawal(net.network, ALICE, list(_VALUES), request_id)
    variants = []
    if with_variants:
        other = await prepare_withdrawal(net.network, ALICE, list(_OTHER_VALUES), request_id)
        variants.append(other.request)

    async def observe() -> Snapshot:
        return {"alice": await net.balance(ALICE), "cash": await _cash_books(net)}

    async def effect(before: Snapshot, after: Snapshot, reply: cash_pb2.WithdrawResponse) -> None:
        assert reply.debited == money(120)
        assert delta(before, after, "alice") == (-120, -120, 0)
        assert delta(before, after, "cash") == (120, 120, 0)
        coins = finish(drawn, reply)  # raises unless every blind signature makes a coin
        assert [coin.value_minor for coin in coins] == list(_VALUES)

    return Prepared(drawn.request, observe, effect, variants)


# -- the acquirer (merchant -> its bank) ----------------------------------------------------------


def deposit_repeat(first: Message, again: Message, at_rest: bool) -> str | None:
    """A repeated DepositCoins answers the same deposit, as it is now: PENDING or ACCEPTED
    while the issuer decides, ACCEPTED once the network has come to rest."""
    assert isinstance(first, cash_pb2.DepositCoinsResponse)
    assert isinstance(again, cash_pb2.DepositCoinsResponse)
    if (again.deposit_id, again.amount) != (first.deposit_id, first.amount):
        return f"another deposit: {again.deposit_id}"
    states = {STATE.COIN_DEPOSIT_STATE_ACCEPTED}
    if not at_rest:
        states.add(STATE.COIN_DEPOSIT_STATE_PENDING)
    if again.state not in states or again.reason:
        return f"the deposit is {STATE.Name(again.state)} {again.reason}"
    return None


def _deposit_request(
    request_id: str, coins: list[WalletCoin], contract: cash_pb2.CoinContract
) -> cash_pb2.DepositCoinsRequest:
    return cash_pb2.DepositCoinsRequest(
        request_id=request_id,
        contract=contract,
        coins=spend(coins, contract.order_id, contract.order_digest, contract.merchant_name),
        amount=money(sum(coin.value_minor for coin in coins)),
    )


async def deposit_coins(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """DepositCoins of alice's 1.20 EUR of coins from alfa (taken through the settlement
    bank); the variant deposits another coin of hers (0.50) for another contract."""
    request = _deposit_request(request_id, await _coins(net, _VALUES), _contract())
    variants = []
    if with_variants:
        variants.append(_deposit_request(request_id, await _coins(net, _OTHER_VALUES), _contract()))

    async def observe() -> Snapshot:
        return {
            "shop": await net.balance(SHOP),
            "alice": await net.balance(ALICE),
            "cash": await _cash_books(net),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: cash_pb2.DepositCoinsResponse
    ) -> None:
        assert (reply.state, reply.reason) == (STATE.COIN_DEPOSIT_STATE_ACCEPTED, "")
        assert reply.amount == money(120)
        assert not reply.HasField("double_spend_proof")
        assert delta(before, after, "shop") == (120, 120, 0)
        assert delta(before, after, "alice") == (0, 0, 0)
        assert delta(before, after, "cash") == (-120, 0, 120)

    return Prepared(request, observe, effect, variants)


# -- the coin deposit between banks (acquirer -> settlement bank -> issuer) -----------------------


async def _coin_deposits(
    net: Net, amounts: tuple[tuple[int, ...], ...]
) -> list[cash_pb2.CoinDeposit]:
    """beta presenting new coins of alice's (one deposit per tuple of values) to alfa."""
    made = []
    for values in amounts:
        contract = _contract()
        coins = await _coins(net, values)
        made.append(
            cash_pb2.CoinDeposit(
                deposit_id=str(uuid.uuid4()),
                presenting_agent=net.code(BETA),
                issuing_agent=net.code(ALFA),
                amount=money(sum(values)),
                contract=contract,
                coins=spend(coins, contract.order_id, contract.order_digest, SHOP),
            )
        )
    return made


async def submit_coin_deposit(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """SubmitCoinDeposit: beta presents alice's 1.20 EUR of coins, which alfa takes; the
    variant presents another coin of hers (0.50)."""
    deposits = await _coin_deposits(net, (_VALUES, _OTHER_VALUES) if with_variants else (_VALUES,))
    request, *variants = (
        pb.SubmitCoinDepositRequest(request_id=request_id, deposit=d) for d in deposits
    )
    ids = [d.deposit_id for d in deposits]

    async def observe() -> Snapshot:
        window = await net.window()
        return {
            "cash": await _cash_books(net),
            "statuses": [await net.transfer_status(BETA, i) for i in ids],
            "window": (window.window_id, window.transfer_count),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.SubmitCoinDepositResponse
    ) -> None:
        assert (reply.deposit_id, reply.status) == (ids[0], pb.TRANSFER_STATUS_ACCEPTED)
        assert not reply.HasField("double_spend_proof")
        assert delta(before, after, "cash") == (-120, 0, 120)
        assert after["statuses"][0] == "TRANSFER_STATUS_ACCEPTED"
        assert after["statuses"][1:] == before["statuses"][1:] == [None] * len(variants)
        assert after["window"] == (before["window"][0], before["window"][1] + 1)
        assert reply.window_id == after["window"][0]

    return Prepared(request, observe, effect, variants, partial(_close_window, net))


async def _close_window(net: Net) -> None:
    """Close the open settlement window (a replay must then not join the next one)."""
    await net.ok(
        SETTLEMENT,
        SETTLEMENT,
        "/interbank.v1.SettlementService/CloseSettlementWindow",
        pb.CloseSettlementWindowRequest(request_id=new_request_id()),
    )


async def receive_coin_deposit(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """ReceiveCoinDeposit at alfa: alice's 1.20 EUR of coins presented by beta are taken;
    the variant is another coin of hers (0.50)."""
    deposits = await _coin_deposits(net, (_VALUES, _OTHER_VALUES) if with_variants else (_VALUES,))
    request, *variants = (
        pb.ReceiveCoinDepositRequest(request_id=request_id, deposit=d) for d in deposits
    )

    async def observe() -> Snapshot:
        return {"cash": await _cash_books(net), "alice": await net.balance(ALICE)}

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.ReceiveCoinDepositResponse
    ) -> None:
        assert (reply.deposit_id, reply.status) == (
            deposits[0].deposit_id,
            pb.TRANSFER_STATUS_ACCEPTED,
        )
        assert delta(before, after, "cash") == (-120, 0, 120)
        assert delta(before, after, "alice") == (0, 0, 0)

    return Prepared(request, observe, effect, variants)


# -- the storefront (customer -> merchant) ------------------------------------------------------


def order_repeat(first: Message, again: Message, at_rest: bool) -> str | None:
    """A repeated SubmitCoins answers the same order, as it is now: SETTLED, then
    DELIVERY_CONFIRMED once the network has come to rest."""
    assert isinstance(first, order_pb2.SubmitCoinsResponse)
    assert isinstance(again, order_pb2.SubmitCoinsResponse)
    a, b = first.order, again.order
    if (b.order_id, b.total) != (a.order_id, a.total):
        return f"another order: {b.order_id}"
    statuses = {OS.ORDER_STATUS_DELIVERY_CONFIRMED}
    if not at_rest:
        statuses |= {OS.ORDER_STATUS_PAYMENT_PENDING, OS.ORDER_STATUS_SETTLED}
    if b.status not in statuses:
        return f"the order is {OS.Name(b.status)}"
    return None


def _coin_values(total_minor: int) -> list[int]:
    """The fewest coins whose face values add up to total_minor."""
    values, left = [], total_minor
    for value in (5000, 2000, 1000, 500, 200, 100, 50, 20, 10, 5, 2, 1):
        while left >= value:
            values.append(value)
            left -= value
    return values


async def submit_coins(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """SubmitCoins of a 45.00 EUR order with coins alice withdrew from alfa; the variant
    pays another order (32.50 EUR) with other coins of hers."""
    placed = [await net.place_order([("book-001", 1)])]
    if with_variants:
        placed.append(await net.place_order([("lamp-002", 1)]))
    requests = []
    for p in placed:
        order = p.order
        coins = await _coins(net, tuple(_coin_values(order.total.amount_minor)))
        requests.append(
            order_pb2.SubmitCoinsRequest(
                request_id=request_id,
                order_id=order.order_id,
                coins=spend(coins, order.order_id, order.order_digest, order.merchant_name),
            )
        )
    request, *variants = requests
    order_ids = [p.order.order_id for p in placed]

    async def observe() -> Snapshot:
        # The orders first: each is read once it has come to rest, and the balances then.
        orders = [await net.order(o) for o in order_ids]
        return {
            "orders": orders,
            "shop": await net.balance(SHOP),
            "alice": await net.balance(ALICE),
            "cash": await _cash_books(net),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: order_pb2.SubmitCoinsResponse
    ) -> None:
        assert reply.order.order_id == order_ids[0]
        assert reply.order.status in (
            OS.ORDER_STATUS_SETTLED,
            OS.ORDER_STATUS_DELIVERY_CONFIRMED,
        ), OS.Name(reply.order.status)
        assert delta(before, after, "shop") == (4500, 4500, 0)
        assert delta(before, after, "alice") == (0, 0, 0)  # paid at the withdrawal
        assert delta(before, after, "cash") == (-4500, 0, 4500)
        assert after["orders"][0] == ("ORDER_STATUS_DELIVERY_CONFIRMED", 0)
        assert after["orders"][1:] == before["orders"][1:]

    return Prepared(request, observe, effect, variants)


CASH_CASES: dict[str, Case] = {
    "/interbank.v1.CashService/Withdraw": Case(ALICE, ALFA, withdraw_coins),
    "/interbank.v1.CashService/DepositCoins": Case(
        SHOP, BETA, deposit_coins, repeat=deposit_repeat
    ),
    "/interbank.v1.SettlementService/SubmitCoinDeposit": Case(
        BETA, SETTLEMENT, submit_coin_deposit
    ),
    "/interbank.v1.ClearingService/ReceiveCoinDeposit": Case(
        SETTLEMENT, ALFA, receive_coin_deposit
    ),
    "/interbank.v1.OrderService/SubmitCoins": Case(ALICE, SHOP, submit_coins, repeat=order_repeat),
}
"""The cash RPCs' cases, by full method name."""
