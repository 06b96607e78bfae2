"""Boundary cases of electronic cash's RPCs, each with its exact answer.

The mint (GetDenominations and Withdraw at alfa), the acquirer's deposits
(DepositCoins at beta), the coin deposit between banks (SubmitCoinDeposit at
the settlement bank, ReceiveCoinDeposit at the issuer) and the storefront's
SubmitCoins. Cases that need coins no bank has seen withdraw them through
:class:`tests.hostile.cash.CoinKit` (carol's from alfa, bob's from beta): a
forged coin, a coin under another denomination key, coins signing another
contract than the one deposited are refused COIN_INVALID; the world's coins,
spent already, COIN_DOUBLE_SPENT with their first spending as proof. Cases that
move money (a withdrawal, a deposit taken by the issuer, an order paid with
coins) let the network settle, the audit (cash_outstanding among its checks)
must pass, and a repeat of the request must answer the same as it is now.

No case has an issuer take coins outside a deposit at beta: a bank collecting
money it never credited to anyone would rightly fail the audit.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from google.protobuf.message import Message
from interbank.v1 import cash_pb2, common_pb2, order_pb2, settlement_pb2

from payment.money import MAX_AMOUNT_MINOR
from tests.support.cash import Withdrawal, finish

from .boundary import Boundary, Build
from .cash import DENOMINATIONS_MINOR, WorldCoinDeposit, WorldDenomination, coin_values
from .cash_catalog import DEPOSITED, REJECTED_AT_ALFA, REJECTED_AT_BETA, SHOP_COIN_TABLES
from .catalog import Payer
from .strategies import INT64_MAX, INT64_MIN
from .world import World

__all__ = ["CASH_BOUNDARIES"]

C, S, OR = cash_pb2, settlement_pb2, order_pb2
STATE = cash_pb2.CoinDepositState

_ALFA_KEPT = frozenset({("alfa", "idempotency")})
_WITHDRAWN = frozenset(
    {
        ("alfa", "withdrawals"),
        ("alfa", "idempotency"),
        *(("alfa", table) for table in ("transfers", "accounts", "outbox", "sqlite_sequence")),
    }
)
_SUBMITTED = frozenset(
    {
        ("settlement", "settlement_transfers"),
        ("settlement", "settlement_windows"),
        ("settlement", "window_positions"),
        ("settlement", "idempotency"),
        ("alfa", "coin_deposits_received"),
        ("alfa", "idempotency"),
    }
)
"""A coin deposit the settlement bank records and the issuer (alfa) refuses."""
_RECEIVED = frozenset({("alfa", "coin_deposits_received"), ("alfa", "idempotency")})

_FIXED = {name: f"cash-boundary-{name}-{uuid.uuid4()}" for name in ("submit", "pay")}
"""request_ids a case and the request sent before it share (a reused id)."""


def _rid() -> str:
    return str(uuid.uuid4())


def _money(world: World, amount: int, currency: str | None = None) -> common_pb2.Money:
    return common_pb2.Money(
        amount_minor=amount, currency_code=world.currency if currency is None else currency
    )


def _amount(value: int, currency: str | None = None) -> Callable[[World], common_pb2.Money]:
    return lambda w: _money(w, value, currency)


def _contract(order_id: str | None = None) -> cash_pb2.CoinContract:
    """A contract of no shop order (a credit naming a shop order could settle it)."""
    return cash_pb2.CoinContract(
        order_id=order_id or f"cash-boundary-{uuid.uuid4()}",
        order_digest=os.urandom(32),
        merchant_name="shop",
    )


# -- coins ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spent:
    """Coins as a payer hands them over, the contract they are deposited with and the sum
    deposited."""

    coins: list[cash_pb2.Coin]
    contract: cash_pb2.CoinContract
    amount_minor: int


Coins = Callable[[World, Payer], Spent]
Alter = Callable[[World, Spent], Spent]


def _alfa(w: World) -> str:
    return w.alfa_code


def _beta(w: World) -> str:
    return w.beta_code


def _fresh(
    bank: Callable[[World], str],
    values: tuple[int, ...] | Callable[[World], tuple[int, ...]],
    *alters: Alter,
    contract: Callable[[World], cash_pb2.CoinContract] | None = None,
) -> Coins:
    """Coins of these values (or values of the world) just withdrawn from the bank,
    signing a contract of no order (or contract's), then changed by alters in turn."""

    def build(world: World, payer: Payer) -> Spent:
        signed = _contract() if contract is None else contract(world)
        chosen = values(world) if callable(values) else values
        wallet = payer.coins.coins(bank(world), chosen)
        spent = Spent(payer.coins.spent(wallet, signed), signed, sum(chosen))
        for alter in alters:
            spent = alter(world, spent)
        return spent

    return build


def _world_deposit(name: str) -> Callable[[World], WorldCoinDeposit]:
    return lambda w: {"X": w.cash.paid, "Z": w.cash.double_spent, "Y": w.cash.on_us}[name]


def _world(name: str, *alters: Alter) -> Coins:
    """A world deposit's coins (spent), contract and sum, changed by alters in turn."""

    def build(world: World, _payer: Payer) -> Spent:
        made = _world_deposit(name)(world)
        spent = Spent(made.coins, made.contract, made.amount_minor)
        for alter in alters:
            spent = alter(world, spent)
        return spent

    return build


def _changed(coin: cash_pb2.Coin, **fields: object) -> cash_pb2.Coin:
    copy = cash_pb2.Coin()
    copy.CopyFrom(coin)
    for name, value in fields.items():
        setattr(copy, name, value)
    return copy


def _forged(field: str, index: int = 0) -> Alter:
    """coins[index] with field (a signature) replaced by as many bytes of another value."""

    def alter(_world: World, spent: Spent) -> Spent:
        coins = list(spent.coins)
        original = getattr(coins[index], field)
        coins[index] = _changed(coins[index], **{field: bytes(b ^ 0x5A for b in original)})
        return replace(spent, coins=coins)

    return alter


def _key_of_value(value: int, index: int = 0) -> Alter:
    """coins[index] under its bank's key of another face value (the bank never signed it
    with that key)."""

    def alter(world: World, spent: Spent) -> Spent:
        coins = list(spent.coins)
        other = world.cash.key(coins[index].bank_code, value).key_id
        coins[index] = _changed(coins[index], denomination_key_id=other)
        return replace(spent, coins=coins)

    return alter


def _key_id(key_id: str) -> Alter:
    def alter(_world: World, spent: Spent) -> Spent:
        coins = [_changed(spent.coins[0], denomination_key_id=key_id), *spent.coins[1:]]
        return replace(spent, coins=coins)

    return alter


def _bank(code: Callable[[World], str]) -> Alter:
    """Every coin naming another issuing bank."""

    def alter(world: World, spent: Spent) -> Spent:
        return replace(spent, coins=[_changed(c, bank_code=code(world)) for c in spent.coins])

    return alter


def _deposited_for(**fields: object) -> Alter:
    """The contract deposited with changed (the coins signed the original)."""

    def alter(_world: World, spent: Spent) -> Spent:
        contract = cash_pb2.CoinContract()
        contract.CopyFrom(spent.contract)
        for name, value in fields.items():
            setattr(contract, name, value)
        return replace(spent, contract=contract)

    return alter


def _sum_off(delta: int) -> Alter:
    def alter(_world: World, spent: Spent) -> Spent:
        return replace(spent, amount_minor=spent.amount_minor + delta)

    return alter


def _first_twice(_world: World, spent: Spent) -> Spent:
    """coins[0] twice (the sum counts it twice)."""
    first = spent.coins[0]
    return Spent([*spent.coins, first], spent.contract, spent.amount_minor * 2)


def _none(_world: World, spent: Spent) -> Spent:
    return replace(spent, coins=[])


def _many(count: int) -> Alter:
    def alter(_world: World, spent: Spent) -> Spent:
        return replace(spent, coins=[spent.coins[0]] * count)

    return alter


def _both(first: Coins, second: Coins) -> Coins:
    """first's coins followed by second's, first's contract, both sums."""

    def build(world: World, payer: Payer) -> Spent:
        a, b = first(world, payer), second(world, payer)
        return Spent([*a.coins, *b.coins], a.contract, a.amount_minor + b.amount_minor)

    return build


def _proof_of(name: str, index: int = 0) -> Callable[[World], cash_pb2.CoinSpendProof]:
    """The first spending of a world deposit's coins[index]."""

    def proof(world: World) -> cash_pb2.CoinSpendProof:
        made = _world_deposit(name)(world)
        coin = made.coins[index]
        return cash_pb2.CoinSpendProof(
            coin_public_key=coin.coin_public_key,
            contract=made.contract,
            coin_signature=coin.coin_signature,
        )

    return proof


# -- requests ---------------------------------------------------------------------------------


def _deposit(
    coins: Coins,
    *,
    request_id: str | None = None,
    amount: Callable[[World], common_pb2.Money] | None = None,
) -> Build:
    """DepositCoins of the coins, as the shop (amount: their sum unless given)."""

    def build(world: World, payer: Payer) -> Message:
        spent = coins(world, payer)
        return C.DepositCoinsRequest(
            request_id=_rid() if request_id is None else request_id,
            contract=spent.contract,
            coins=spent.coins,
            amount=_money(world, spent.amount_minor) if amount is None else amount(world),
        )

    return build


def _world_deposit_again(name: str, request_id: str | None = None, **fields: object) -> Build:
    """A world deposit's request again, under its own request_id unless given, with fields
    changed (a function of the world, or a value)."""

    def build(world: World, _payer: Payer) -> Message:
        request = _world_deposit(name)(world).deposit_request(request_id)
        for field, value in fields.items():
            made = value(world) if callable(value) else value
            if isinstance(made, Message):
                getattr(request, field).CopyFrom(made)
            elif isinstance(made, list):
                del getattr(request, field)[:]
                getattr(request, field).extend(made)
            else:
                setattr(request, field, made)
        return request

    return build


DepositBuild = Callable[[World, Payer], cash_pb2.CoinDeposit]


def _coin_deposit(
    coins: Coins,
    *,
    deposit_id: str | None = None,
    presenting: Callable[[World], str] = _beta,
    issuing: Callable[[World], str] = _alfa,
    amount: Callable[[World], common_pb2.Money] | None = None,
) -> DepositBuild:
    """The CoinDeposit beta would make of the coins (a new deposit id), with fields changed."""

    def build(world: World, payer: Payer) -> cash_pb2.CoinDeposit:
        spent = coins(world, payer)
        return cash_pb2.CoinDeposit(
            deposit_id=f"boundary-{uuid.uuid4()}" if deposit_id is None else deposit_id,
            presenting_agent=presenting(world),
            issuing_agent=issuing(world),
            amount=_money(world, spent.amount_minor) if amount is None else amount(world),
            contract=spent.contract,
            coins=spent.coins,
        )

    return build


def _made(name: str, *, new_id: bool = True, **changes: object) -> DepositBuild:
    """beta's CoinDeposit of a world deposit, under a new deposit id unless new_id is false,
    with fields changed (a function of the world, or a value)."""

    def build(world: World, _payer: Payer) -> cash_pb2.CoinDeposit:
        fields = {k: v(world) if callable(v) else v for k, v in changes.items()}
        if new_id:
            fields.setdefault("deposit_id", f"boundary-{uuid.uuid4()}")
        return _world_deposit(name)(world).deposited(**fields)

    return build


def _submitted(deposit: DepositBuild | None, request_id: str | None = None) -> Build:
    def build(world: World, payer: Payer) -> Message:
        return S.SubmitCoinDepositRequest(
            request_id=_rid() if request_id is None else request_id,
            deposit=None if deposit is None else deposit(world, payer),
        )

    return build


def _received(deposit: DepositBuild | None, request_id: str | None = None) -> Build:
    def build(world: World, payer: Payer) -> Message:
        return S.ReceiveCoinDepositRequest(
            request_id=_rid() if request_id is None else request_id,
            deposit=None if deposit is None else deposit(world, payer),
        )

    return build


def _order_contract(letter: str) -> Callable[[World], cash_pb2.CoinContract]:
    def contract(world: World) -> cash_pb2.CoinContract:
        assert letter == "M", "only M's digest is kept"
        return cash_pb2.CoinContract(
            order_id=world.orders[letter], order_digest=world.m_digest, merchant_name="shop"
        )

    return contract


def _pay(
    order: str,
    coins: Coins | None = None,
    *alters: Alter,
    total_off: int = 0,
    request_id: str | None = None,
) -> Build:
    """SubmitCoins of the order (by letter) with the coins (by default fresh alfa coins whose
    face values add up to M's total, plus total_off, signing M's contract), altered."""

    def build(world: World, payer: Payer) -> Message:
        made = coins or _fresh(
            _alfa,
            lambda w: tuple(coin_values(w.m_total + total_off)),
            *alters,
            contract=_order_contract("M"),
        )
        spent = made(world, payer)
        return OR.SubmitCoinsRequest(
            request_id=_rid() if request_id is None else request_id,
            order_id=world.orders[order] if order in world.orders else order,
            coins=spent.coins,
        )

    return build


class _Drawn:
    """A withdrawal a case makes with real blinded coins, kept for its answer's check:
    the coins must unblind into coins the published keys verify. Secret (blinding
    factors and coin keys): no repr."""

    def __init__(self, customer: str, values: tuple[int, ...]) -> None:
        self._customer = customer
        self._values = values
        self._withdrawal: Withdrawal | None = None

    def __repr__(self) -> str:
        return f"_Drawn({self._customer}, {self._values})"

    def build(self, _world: World, payer: Payer) -> Message:
        """The WithdrawRequest (a new request_id)."""
        self._withdrawal = payer.coins.prepared(self._customer, self._values, _rid())
        return self._withdrawal.request

    def check(self, response: bytes, world: World) -> None:
        """The answer debits the face values and its blind signatures make genuine coins."""
        assert self._withdrawal is not None
        reply = C.WithdrawResponse.FromString(response)
        assert reply.debited == _money(world, sum(self._values)), reply.debited
        coins = finish(self._withdrawal, reply)  # raises unless every coin verifies
        assert [coin.value_minor for coin in coins] == list(self._values)


def _blinded(
    key: Callable[[World], WorldDenomination],
    message: Callable[[WorldDenomination], bytes],
    *,
    count: int = 1,
    account: Callable[[World], str] = lambda w: w.carol_account,
    request_id: str | None = None,
) -> Build:
    """A WithdrawRequest of count coins of one key, each blinded message made by message
    (from the key: no coin needs to be behind a number below the modulus)."""

    def build(world: World, _payer: Payer) -> Message:
        chosen = key(world)
        return C.WithdrawRequest(
            request_id=_rid() if request_id is None else request_id,
            account_id=account(world),
            coins=[
                C.BlindedCoin(denomination_key_id=chosen.key_id, blinded_message=message(chosen))
                for _ in range(count)
            ],
        )

    return build


def _under_key(key_id: Callable[[World], str]) -> Build:
    """A withdrawal of one coin under a key id (and a number below alfa's 0.05 key)."""

    def build(world: World, _payer: Payer) -> Message:
        return C.WithdrawRequest(
            request_id=_rid(),
            account_id=world.carol_account,
            coins=[
                C.BlindedCoin(
                    denomination_key_id=key_id(world),
                    blinded_message=_below(world.cash.key(world.alfa_code, 5)),
                )
            ],
        )

    return build


def _naming_key(key_id: Callable[[World], str]) -> Callable[[World], Mapping[str, str]]:
    return lambda world: {"denomination_key_id": key_id(world)}


def _length(key: WorldDenomination) -> int:
    return (key.modulus.bit_length() + 7) // 8


def _below(key: WorldDenomination) -> bytes:
    """A random number below the key's modulus, as many bytes as the modulus."""
    size = _length(key)
    return (int.from_bytes(os.urandom(size), "big") % key.modulus).to_bytes(size, "big")


def _value_of(world: World, coin: cash_pb2.Coin) -> int:
    """A coin's face value, by its denomination key."""
    return next(
        d.value_minor for d in world.cash.denominations if d.key_id == coin.denomination_key_id
    )


def _key(bank: Callable[[World], str], value: int) -> Callable[[World], WorldDenomination]:
    return lambda w: w.cash.key(bank(w), value)


# -- answers ----------------------------------------------------------------------------------


def _deposit_is(
    state: int,
    reason: str = "",
    *,
    proof: Callable[[World], cash_pb2.CoinSpendProof] | None = None,
    deposit_id: Callable[[World], str] | None = None,
) -> Callable[[bytes, World], None]:
    """A DepositCoins answer: state and reason, the double-spend proof exactly (or none)."""

    def check(response: bytes, world: World) -> None:
        answer = C.DepositCoinsResponse.FromString(response)
        assert (answer.state, answer.reason) == (state, reason), (
            STATE.Name(answer.state),
            answer.reason,
        )
        if proof is None:
            assert not answer.HasField("double_spend_proof"), answer.double_spend_proof
        else:
            assert answer.double_spend_proof == proof(world), answer.double_spend_proof
        if deposit_id is not None:
            assert answer.deposit_id == deposit_id(world), answer.deposit_id

    return check


def _report_is(
    response_type: type[Message],
    status: str,
    reason: str = "",
    *,
    proof: Callable[[World], cash_pb2.CoinSpendProof] | None = None,
) -> Callable[[bytes, World], None]:
    """A SubmitCoinDeposit or ReceiveCoinDeposit answer: status, reason and proof exactly."""

    def check(response: bytes, world: World) -> None:
        report = response_type.FromString(response)
        found = (
            S.TransferStatus.Name(report.status),  # type: ignore[attr-defined]
            report.reason_code,  # type: ignore[attr-defined]
        )
        assert found == (status, reason), found
        if proof is None:
            assert not report.HasField("double_spend_proof"), report
        else:
            assert report.double_spend_proof == proof(world), report  # type: ignore[attr-defined]

    return check


def _order_is(*statuses: int) -> Callable[[bytes, World], None]:
    def check(response: bytes, world: World) -> None:
        order = OR.SubmitCoinsResponse.FromString(response).order
        assert order.order_id == world.orders["M"], order.order_id
        assert order.status in statuses, OR.OrderStatus.Name(order.status)

    return check


def _key_set(response: bytes, world: World) -> None:
    """alfa's signed key set: twelve denominations, each key's id its own, as the world
    read them."""
    answer = C.GetDenominationsResponse.FromString(response)
    assert answer.bank_code == world.alfa_code
    assert answer.bank_key_id and len(answer.signature) == 64, answer.bank_key_id
    values = sorted(d.value.amount_minor for d in answer.denominations)
    assert values == sorted(DENOMINATIONS_MINOR), values
    assert {d.denomination_key_id for d in answer.denominations} == {
        k.key_id for k in world.cash.keys(world.alfa_code)
    }
    assert all(d.value.currency_code == world.currency for d in answer.denominations)


def _same_withdrawal(response: bytes, world: World) -> None:
    assert response == world.cash.withdrawn, "not W's first answer"


_DRAWN = _Drawn("carol", (2000, 50, 5))
_DRAWN_AT_THE_EDGE = _Drawn("carol", (1,))
_X_PROOF = _proof_of("X")
_Y_PROOF = _proof_of("Y")
_THROUGH_SETTLEMENT = frozenset(
    DEPOSITED - {("beta", "coin_deposits_received"), ("beta", "spent_coins")}
)
"""A deposit of alfa coins taken through the settlement bank."""
_ON_US = frozenset(
    {
        ("beta", "coin_deposits"),
        ("beta", "coin_deposits_received"),
        ("beta", "spent_coins"),
        ("beta", "idempotency"),
        *(("beta", table) for table in ("transfers", "accounts", "outbox", "sqlite_sequence")),
        ("shop", "processed_events"),
        ("shop", "subscription_cursor"),
    }
)
"""A deposit of beta coins taken by beta at once."""


CASH_BOUNDARIES: list[Boundary] = [
    # -- CashService.GetDenominations at alfa ---------------------------------------------
    *(
        Boundary(
            f"as-{caller}",
            "CashService/GetDenominations",
            "alfa",
            lambda w, p: C.GetDenominationsRequest(),
            "OK",
            response=_key_set,
            caller=caller,
        )
        for caller in ("alice", "shop", "beta", "settlement", "gateway")
    ),
    # -- CashService.Withdraw at alfa, as carol -------------------------------------------
    Boundary(
        "three-coins",
        "CashService/Withdraw",
        "alfa",
        _DRAWN.build,
        "OK",
        writes=_WITHDRAWN,
        response=_DRAWN.check,
    ),
    Boundary(
        "w-replayed",
        "CashService/Withdraw",
        "alfa",
        lambda w, p: w.cash.withdraw_request(),
        "OK",
        response=_same_withdrawal,
    ),
    Boundary(
        "w-request-id-other-coins",
        "CashService/Withdraw",
        "alfa",
        lambda w, p: C.WithdrawRequest(
            request_id=w.cash.withdraw_request().request_id,
            account_id=w.carol_account,
            coins=w.cash.withdraw_request().coins[:-1],
        ),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
    ),
    Boundary(
        "blinded-the-modulus-less-one",
        "CashService/Withdraw",
        "alfa",
        _blinded(
            _key(_alfa, 1),
            lambda k: (k.modulus - 1).to_bytes(_length(k), "big"),
        ),
        "OK",
        writes=_WITHDRAWN,
        response=lambda r, w: _same(C.WithdrawResponse.FromString(r).debited, _money(w, 1)),
    ),
    Boundary(
        "real-coin-at-the-edge",
        "CashService/Withdraw",
        "alfa",
        _DRAWN_AT_THE_EDGE.build,
        "OK",
        writes=_WITHDRAWN,
        response=_DRAWN_AT_THE_EDGE.check,
    ),
    *(
        Boundary(
            f"blinded-{name}",
            "CashService/Withdraw",
            "alfa",
            _blinded(_key(_alfa, 5), message),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": "coins[0].blinded_message"},
        )
        for name, message in (
            ("the-modulus", lambda k: k.modulus.to_bytes(_length(k), "big")),
            ("all-ff", lambda k: b"\xff" * _length(k)),
            ("empty", lambda k: b""),
            ("one-byte-short", lambda k: _below(k)[1:]),
            ("one-byte-long", lambda k: b"\x00" + _below(k)),
        )
    ),
    Boundary(
        "second-coin-blinded-badly",
        "CashService/Withdraw",
        "alfa",
        lambda w, p: C.WithdrawRequest(
            request_id=_rid(),
            account_id=w.carol_account,
            coins=[
                C.BlindedCoin(
                    denomination_key_id=w.cash.key(w.alfa_code, 5).key_id,
                    blinded_message=_below(w.cash.key(w.alfa_code, 5)),
                ),
                C.BlindedCoin(
                    denomination_key_id=w.cash.key(w.alfa_code, 5).key_id,
                    blinded_message=b"\xff" * _length(w.cash.key(w.alfa_code, 5)),
                ),
            ],
        ),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "coins[1].blinded_message"},
    ),
    *(
        Boundary(
            f"key-{name}",
            "CashService/Withdraw",
            "alfa",
            _under_key(key_id),
            "INVALID_ARGUMENT",
            "DENOMINATION_UNKNOWN",
            metadata=_naming_key(key_id),
        )
        for name, key_id in (
            ("of-beta", lambda w: w.cash.key(w.beta_code, 5).key_id),
            ("unknown", lambda _w: "0" * 32),
            ("upper-case", lambda w: w.cash.key(w.alfa_code, 5).key_id.upper()),
            ("empty", lambda _w: ""),
        )
    ),
    *(
        Boundary(
            f"{count}-coins",
            "CashService/Withdraw",
            "alfa",
            _blinded(_key(_alfa, 1), _below, count=count),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": "coins", "limit": "64"},
        )
        for count in (0, 65)
    ),
    *(
        Boundary(
            f"{name}-account",
            "CashService/Withdraw",
            "alfa",
            _blinded(_key(_alfa, 1), _below, account=account),
            "PERMISSION_DENIED",
            "ACCOUNT_NOT_HELD_BY_CALLER",
        )
        for name, account in (
            ("alices", lambda w: w.alice_account),
            ("bobs-at-another-bank", lambda w: w.bob_account),
            ("reserve", lambda _w: "@reserve"),
            ("outstanding-liability", lambda _w: "@cash-outstanding"),
            ("empty", lambda _w: ""),
        )
    ),
    Boundary(
        "beyond-funds",
        "CashService/Withdraw",
        "alfa",
        # 64 coins of 50.00: more than alice has (2500.00 at opening).
        _blinded(_key(_alfa, 5000), _below, count=64, account=lambda w: w.alice_account),
        "FAILED_PRECONDITION",
        "INSUFFICIENT_FUNDS",
        caller="alice",
    ),
    Boundary(
        "no-request-id",
        "CashService/Withdraw",
        "alfa",
        _blinded(_key(_alfa, 1), _below, request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    # -- CashService.DepositCoins at beta, as the shop ------------------------------------
    Boundary(
        "alfa-coins-taken",
        "CashService/DepositCoins",
        "beta",
        _deposit(_fresh(_alfa, (100, 20))),
        "OK",
        writes=_THROUGH_SETTLEMENT,
        response=_deposit_is(STATE.COIN_DEPOSIT_STATE_ACCEPTED),
        settled=_deposit_is(STATE.COIN_DEPOSIT_STATE_ACCEPTED),
    ),
    Boundary(
        "beta-coins-taken",
        "CashService/DepositCoins",
        "beta",
        _deposit(_fresh(_beta, (50, 2))),
        "OK",
        writes=_ON_US,
        response=_deposit_is(STATE.COIN_DEPOSIT_STATE_ACCEPTED),
        settled=_deposit_is(STATE.COIN_DEPOSIT_STATE_ACCEPTED),
    ),
    *(
        Boundary(
            f"{bank}-{name}",
            "CashService/DepositCoins",
            "beta",
            _deposit(coins),
            "OK",
            writes=REJECTED_AT_ALFA if bank == "alfa" else REJECTED_AT_BETA,
            response=_deposit_is(STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_INVALID"),
            settled=_deposit_is(STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_INVALID"),
        )
        for bank, issuer in (("alfa", _alfa), ("beta", _beta))
        for name, coins in (
            (
                "forged-denomination-signature",
                _fresh(issuer, (10,), _forged("denomination_signature")),
            ),
            ("forged-second-coin", _fresh(issuer, (10, 5), _forged("denomination_signature", 1))),
            ("coin-signature-forged", _fresh(issuer, (10,), _forged("coin_signature"))),
            ("key-of-another-value", _fresh(issuer, (10,), _key_of_value(20))),
            ("unknown-key", _fresh(issuer, (10,), _key_id("0" * 32))),
            ("signed-another-contract", _fresh(issuer, (10,), _deposited_for(order_id="other"))),
            (
                "signed-another-digest",
                _fresh(issuer, (10,), _deposited_for(order_digest=b"\x01" * 32)),
            ),
            ("sum-one-more", _fresh(issuer, (10, 5), _sum_off(1))),
            ("sum-one-less", _fresh(issuer, (10, 5), _sum_off(-1))),
            ("same-coin-twice", _fresh(issuer, (10,), _first_twice)),
            (
                "prefix-cut",
                _fresh(
                    issuer,
                    (10,),
                    lambda w, s: replace(
                        s,
                        coins=[_changed(s.coins[0], message_prefix=s.coins[0].message_prefix[:-1])],
                    ),
                ),
            ),
        )
    ),
    Boundary(
        "spent-through-settlement",
        "CashService/DepositCoins",
        "beta",
        _deposit(_world("X")),
        "OK",
        writes=REJECTED_AT_ALFA,
        response=_deposit_is(
            STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_DOUBLE_SPENT", proof=_X_PROOF
        ),
        settled=_deposit_is(STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_DOUBLE_SPENT", proof=_X_PROOF),
    ),
    Boundary(
        "spent-on-us",
        "CashService/DepositCoins",
        "beta",
        _deposit(_world("Y")),
        "OK",
        writes=REJECTED_AT_BETA,
        response=_deposit_is(
            STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_DOUBLE_SPENT", proof=_Y_PROOF
        ),
        settled=_deposit_is(STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_DOUBLE_SPENT", proof=_Y_PROOF),
    ),
    Boundary(
        "fresh-coin-beside-a-spent-one",
        "CashService/DepositCoins",
        "beta",
        _deposit(_both(_world("X"), _fresh(_alfa, (1,), contract=lambda w: w.cash.paid.contract))),
        "OK",
        writes=REJECTED_AT_ALFA,
        response=_deposit_is(
            STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_DOUBLE_SPENT", proof=_X_PROOF
        ),
    ),
    *(
        Boundary(
            name,
            "CashService/DepositCoins",
            "beta",
            _deposit(coins),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata=metadata,
        )
        for name, coins, metadata in (
            ("no-coins", _world("X", _none), {"field": "coins", "limit": "64"}),
            ("65-coins", _world("X", _many(65)), {"field": "coins", "limit": "64"}),
            ("coins-of-two-banks", _both(_world("X"), _world("Y")), {"field": "coins"}),
            ("coins-of-no-member", _world("X", _bank(lambda _w: "ZZZZXX99")), {"field": "coins"}),
            (
                "coins-of-the-settlement-bank",
                _world("X", _bank(lambda w: w.settlement_code)),
                {"field": "coins"},
            ),
            (
                "another-merchants-contract",
                _world("X", _deposited_for(merchant_name="other")),
                {"field": "contract.merchant_name"},
            ),
            (
                "no-contract",
                _world("X", lambda w, s: replace(s, contract=cash_pb2.CoinContract())),
                {"field": "contract.merchant_name"},
            ),
        )
    ),
    *(
        Boundary(
            f"amount-{name}",
            "CashService/DepositCoins",
            "beta",
            _deposit(_world("X"), amount=amount),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": field},
        )
        for name, amount, field in (
            ("0", _amount(0), "amount"),
            ("minus-1", _amount(-1), "amount"),
            ("int64-min", _amount(INT64_MIN), "amount"),
            ("above-the-maximum", _amount(MAX_AMOUNT_MINOR + 1), "amount"),
            ("int64-max", _amount(INT64_MAX), "amount"),
            (
                "in-usd",
                lambda w: _money(w, w.cash.paid.amount_minor, "USD"),
                "amount.currency_code",
            ),
            ("missing", lambda _w: common_pb2.Money(), "amount"),
        )
    ),
    *(
        Boundary(
            f"world-deposit-{name}-asked-again",
            "CashService/DepositCoins",
            "beta",
            _world_deposit_again(name),
            "OK",
            response=answer,
        )
        for name, answer in (
            (
                "X",
                _deposit_is(
                    STATE.COIN_DEPOSIT_STATE_ACCEPTED, deposit_id=lambda w: w.cash.paid.deposit_id
                ),
            ),
            (
                "Z",
                _deposit_is(STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_DOUBLE_SPENT", proof=_X_PROOF),
            ),
            ("Y", _deposit_is(STATE.COIN_DEPOSIT_STATE_ACCEPTED)),
        )
    ),
    Boundary(
        "request-id-of-another-deposit",
        "CashService/DepositCoins",
        "beta",
        _world_deposit_again(
            "X", coins=lambda w: w.cash.on_us.coins, contract=lambda w: w.cash.on_us.contract
        ),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
    ),
    Boundary(
        "no-request-id",
        "CashService/DepositCoins",
        "beta",
        _deposit(_world("X"), request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    # -- SettlementService.SubmitCoinDeposit, as beta -------------------------------------
    *(
        Boundary(
            name,
            "SettlementService/SubmitCoinDeposit",
            "settlement",
            _submitted(deposit),
            code,
            reason,
            metadata=metadata,
        )
        for name, deposit, code, reason, metadata in (
            (
                "issuer-is-the-presenter",
                _made("X", issuing_agent=_beta),
                "INVALID_ARGUMENT",
                "SAME_AGENT",
                {"field": "deposit.issuing_agent"},
            ),
            (
                "world-on-us-deposit",
                _made("Y", new_id=False),
                "INVALID_ARGUMENT",
                "SAME_AGENT",
                {"field": "deposit.issuing_agent"},
            ),
            (
                "presenter-not-the-caller",
                _made("X", presenting_agent=_alfa, issuing_agent=_beta),
                "PERMISSION_DENIED",
                "PRESENTING_AGENT_NOT_CALLER",
                {},
            ),
            (
                "no-presenter",
                _made("X", presenting_agent=""),
                "PERMISSION_DENIED",
                "PRESENTING_AGENT_NOT_CALLER",
                {},
            ),
            (
                "no-deposit-id",
                _made("X", deposit_id=""),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "deposit.deposit_id"},
            ),
            (
                "no-issuer",
                _made("X", issuing_agent=""),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "deposit.issuing_agent"},
            ),
            (
                "amount-in-usd",
                _made("X", amount=lambda w: _money(w, w.cash.paid.amount_minor, "USD")),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "deposit.amount"},
            ),
            *(
                (
                    f"amount-{label}",
                    _made("X", amount=_amount(value)),
                    "INVALID_ARGUMENT",
                    "FIELD_INVALID",
                    {"field": "deposit.amount"},
                )
                for label, value in (
                    ("0", 0),
                    ("minus-1", -1),
                    ("int64-min", INT64_MIN),
                    ("above-the-maximum", MAX_AMOUNT_MINOR + 1),
                    ("int64-max", INT64_MAX),
                )
            ),
            (
                "id-reused-for-other-content",
                _made("X", new_id=False, contract=lambda w: w.cash.on_us.contract),
                "ALREADY_EXISTS",
                "IDEMPOTENCY_KEY_REUSED",
                {},
            ),
        )
    ),
    Boundary(
        "no-request-id",
        "SettlementService/SubmitCoinDeposit",
        "settlement",
        _submitted(_made("X"), request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    Boundary(
        "no-deposit",
        "SettlementService/SubmitCoinDeposit",
        "settlement",
        _submitted(None),
        "PERMISSION_DENIED",
        "PRESENTING_AGENT_NOT_CALLER",
    ),
    Boundary(
        "request-id-reused",
        "SettlementService/SubmitCoinDeposit",
        "settlement",
        _submitted(_made("X"), request_id=_FIXED["submit"]),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_submitted(_made("Z"), request_id=_FIXED["submit"]),
    ),
    *(
        Boundary(
            name,
            "SettlementService/SubmitCoinDeposit",
            "settlement",
            _submitted(deposit),
            "OK",
            writes=writes,
            response=_report_is(
                S.SubmitCoinDepositResponse, "TRANSFER_STATUS_REJECTED", reason, proof=proof
            ),
        )
        for name, deposit, reason, proof, writes in (
            (
                "issuer-no-member",
                _made("X", issuing_agent="ZZZZXX99"),
                "UNKNOWN_ISSUING_AGENT",
                None,
                frozenset({("settlement", "settlement_transfers"), ("settlement", "idempotency")}),
            ),
            (
                "issuer-the-settlement-bank",
                _made("X", issuing_agent=lambda w: w.settlement_code),
                "UNKNOWN_ISSUING_AGENT",
                None,
                frozenset({("settlement", "settlement_transfers"), ("settlement", "idempotency")}),
            ),
            (
                "beyond-the-net-debit-cap",
                _made("X", amount=_amount(MAX_AMOUNT_MINOR)),
                "NET_DEBIT_CAP_EXCEEDED",
                None,
                frozenset(
                    {
                        ("settlement", "settlement_transfers"),
                        ("settlement", "settlement_windows"),
                        ("settlement", "idempotency"),
                    }
                ),
            ),
            ("spent-coins", _made("X"), "COIN_DOUBLE_SPENT", _X_PROOF, _SUBMITTED),
            ("spent-coins-other-contract", _made("Z"), "COIN_DOUBLE_SPENT", _X_PROOF, _SUBMITTED),
            # The coins and the sum are checked before whether a coin is spent.
            (
                "spent-coins-sum-off",
                _made("X", amount=lambda w: _money(w, w.cash.paid.amount_minor + 1)),
                "COIN_INVALID",
                None,
                _SUBMITTED,
            ),
            ("coins-of-beta", _made("Y", issuing_agent=_alfa), "COIN_INVALID", None, _SUBMITTED),
            ("no-coins", _made("X", coins=[]), "COIN_INVALID", None, _SUBMITTED),
            (
                "forged-coin",
                _coin_deposit(_fresh(_alfa, (10,), _forged("denomination_signature"))),
                "COIN_INVALID",
                None,
                _SUBMITTED,
            ),
            (
                "key-of-another-value",
                _coin_deposit(_fresh(_alfa, (10,), _key_of_value(5))),
                "COIN_INVALID",
                None,
                _SUBMITTED,
            ),
            (
                "signed-another-contract",
                _coin_deposit(_fresh(_alfa, (10,), _deposited_for(order_id="other"))),
                "COIN_INVALID",
                None,
                _SUBMITTED,
            ),
        )
    ),
    *(
        Boundary(
            f"world-deposit-{name}-again",
            "SettlementService/SubmitCoinDeposit",
            "settlement",
            _submitted(_made(name, new_id=False)),
            "OK",
            writes=frozenset({("settlement", "idempotency")}),
            response=_report_is(S.SubmitCoinDepositResponse, *answer, proof=proof),
        )
        for name, answer, proof in (
            ("X", ("TRANSFER_STATUS_ACCEPTED", ""), None),
            ("Z", ("TRANSFER_STATUS_REJECTED", "COIN_DOUBLE_SPENT"), _X_PROOF),
        )
    ),
    # -- ClearingService.ReceiveCoinDeposit at alfa, as the settlement bank ---------------
    *(
        Boundary(
            name,
            "ClearingService/ReceiveCoinDeposit",
            "alfa",
            _received(deposit),
            code,
            reason,
            metadata=metadata,
        )
        for name, deposit, code, reason, metadata in (
            (
                "presenter-is-the-issuer",
                _made("X", presenting_agent=_alfa),
                "INVALID_ARGUMENT",
                "SAME_AGENT",
                {"field": "deposit.issuing_agent"},
            ),
            (
                "issuer-another-bank",
                _made("X", issuing_agent=lambda w: w.settlement_code),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "deposit.issuing_agent"},
            ),
            (
                "no-deposit-id",
                _made("X", deposit_id=""),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "deposit.deposit_id"},
            ),
            (
                "no-presenter",
                _made("X", presenting_agent=""),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "deposit.presenting_agent"},
            ),
            *(
                (
                    f"amount-{label}",
                    _made("X", amount=_amount(value)),
                    "INVALID_ARGUMENT",
                    "FIELD_INVALID",
                    {"field": "deposit.amount"},
                )
                for label, value in (
                    ("0", 0),
                    ("minus-1", -1),
                    ("int64-min", INT64_MIN),
                    ("above-the-maximum", MAX_AMOUNT_MINOR + 1),
                )
            ),
            (
                "id-reused-for-other-content",
                _made("X", new_id=False, contract=lambda w: w.cash.on_us.contract),
                "ALREADY_EXISTS",
                "IDEMPOTENCY_KEY_REUSED",
                {},
            ),
        )
    ),
    Boundary(
        "no-deposit",
        "ClearingService/ReceiveCoinDeposit",
        "alfa",
        _received(None),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "deposit.deposit_id"},
    ),
    Boundary(
        "no-request-id",
        "ClearingService/ReceiveCoinDeposit",
        "alfa",
        _received(_made("X"), request_id=""),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    *(
        Boundary(
            name,
            "ClearingService/ReceiveCoinDeposit",
            "alfa",
            _received(deposit),
            "OK",
            writes=_RECEIVED,
            response=_report_is(
                S.ReceiveCoinDepositResponse, "TRANSFER_STATUS_REJECTED", reason, proof=proof
            ),
        )
        for name, deposit, reason, proof in (
            ("spent-coins", _made("X"), "COIN_DOUBLE_SPENT", _X_PROOF),
            ("spent-coins-other-contract", _made("Z"), "COIN_DOUBLE_SPENT", _X_PROOF),
            (
                "spent-coins-presented-by-another",
                _made("X", presenting_agent=lambda w: w.settlement_code),
                "COIN_DOUBLE_SPENT",
                _X_PROOF,
            ),
            (
                "spent-coins-sum-off",
                _made("X", amount=lambda w: _money(w, w.cash.paid.amount_minor - 1)),
                "COIN_INVALID",
                None,
            ),
            (
                "spent-coin-twice",
                _made(
                    "X",
                    coins=lambda w: [w.cash.paid.coins[0]] * 2,
                    amount=lambda w: _money(w, 2 * _value_of(w, w.cash.paid.coins[0])),
                ),
                "COIN_INVALID",
                None,
            ),
            ("coins-of-beta", _made("Y", issuing_agent=_alfa), "COIN_INVALID", None),
            ("no-coins", _made("X", coins=[]), "COIN_INVALID", None),
            (
                "forged-coin",
                _coin_deposit(_fresh(_alfa, (10,), _forged("denomination_signature"))),
                "COIN_INVALID",
                None,
            ),
            (
                "coin-signature-forged",
                _coin_deposit(_fresh(_alfa, (10,), _forged("coin_signature"))),
                "COIN_INVALID",
                None,
            ),
            (
                "key-of-another-value",
                _coin_deposit(_fresh(_alfa, (10,), _key_of_value(5))),
                "COIN_INVALID",
                None,
            ),
            (
                "unknown-key",
                _coin_deposit(_fresh(_alfa, (10,), _key_id("f" * 32))),
                "COIN_INVALID",
                None,
            ),
            (
                "signed-another-contract",
                _coin_deposit(_fresh(_alfa, (10,), _deposited_for(order_id="other"))),
                "COIN_INVALID",
                None,
            ),
            # Genuine, unspent coins, and the sum right but in another currency.
            (
                "amount-in-usd",
                _coin_deposit(_fresh(_alfa, (10,)), amount=_amount(10, "USD")),
                "COIN_INVALID",
                None,
            ),
        )
    ),
    Boundary(
        "world-deposit-X-again",
        "ClearingService/ReceiveCoinDeposit",
        "alfa",
        _received(_made("X", new_id=False)),
        "OK",
        writes=_ALFA_KEPT,
        response=_report_is(S.ReceiveCoinDepositResponse, "TRANSFER_STATUS_ACCEPTED"),
    ),
    Boundary(
        "world-deposit-Z-again",
        "ClearingService/ReceiveCoinDeposit",
        "alfa",
        _received(_made("Z", new_id=False)),
        "OK",
        writes=_ALFA_KEPT,
        response=_report_is(
            S.ReceiveCoinDepositResponse,
            "TRANSFER_STATUS_REJECTED",
            "COIN_DOUBLE_SPENT",
            proof=_X_PROOF,
        ),
    ),
    # -- OrderService.SubmitCoins at the shop, as alice -----------------------------------
    *(
        Boundary(name, "OrderService/SubmitCoins", "shop", build, code, reason, metadata=metadata)
        for name, build, code, reason, metadata in (
            (
                "order-not-found",
                _pay("no-such-order", _world("X")),
                "NOT_FOUND",
                "ORDER_NOT_FOUND",
                {},
            ),
            ("bobs-order", _pay("G", _world("X")), "NOT_FOUND", "ORDER_NOT_FOUND", {}),
            (
                "delivered-order",
                _pay("A", _world("X")),
                "FAILED_PRECONDITION",
                "ORDER_NOT_PAYABLE",
                {},
            ),
            (
                "no-coins",
                _pay("M", _world("X", _none)),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "coins", "limit": "64"},
            ),
            (
                "65-coins",
                _pay("M", _world("X", _many(65))),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "coins", "limit": "64"},
            ),
            (
                "coins-of-two-banks",
                _pay("M", _both(_world("X"), _world("Y"))),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "coins"},
            ),
            (
                "coins-of-no-member",
                _pay("M", _world("X", _bank(lambda _w: "ZZZZXX99"))),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "coins"},
            ),
            (
                "coins-of-the-settlement-bank",
                _pay("M", _world("X", _bank(lambda w: w.settlement_code))),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
                {"field": "coins"},
            ),
            (
                "forged-denomination-signature",
                _pay("M", None, _forged("denomination_signature")),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {"coin_index": "0"},
            ),
            (
                "forged-last-coin",
                _pay("M", None, _forged("denomination_signature", -1)),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {},
            ),
            (
                "coin-signature-forged",
                _pay("M", None, _forged("coin_signature")),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {"coin_index": "0"},
            ),
            (
                "key-of-another-value",
                _pay("M", None, _key_of_value(1)),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {"coin_index": "0"},
            ),
            (
                "unknown-key",
                _pay("M", None, _key_id("0" * 32)),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {"coin_index": "0"},
            ),
            (
                "same-coin-twice",
                _pay("M", None, _first_twice),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {},
            ),
            (
                "signed-for-another-order",
                _pay("M", _fresh(_alfa, lambda w: tuple(coin_values(w.m_total)))),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {"coin_index": "0"},
            ),
            (
                "spent-coins-of-another-order",
                _pay("M", _world("X")),
                "INVALID_ARGUMENT",
                "COIN_INVALID",
                {"coin_index": "0"},
            ),
            (
                "one-cent-more-than-the-total",
                _pay("M", total_off=1),
                "INVALID_ARGUMENT",
                "AMOUNT_MISMATCH",
                {},
            ),
            (
                "one-cent-less-than-the-total",
                _pay("M", total_off=-1),
                "INVALID_ARGUMENT",
                "AMOUNT_MISMATCH",
                {},
            ),
            (
                "no-request-id",
                _pay("M", request_id=""),
                "INVALID_ARGUMENT",
                "REQUEST_ID_MISSING",
                {},
            ),
        )
    ),
    Boundary(
        "coins-spent-already",
        "OrderService/SubmitCoins",
        "shop",
        _pay("K", _world("X")),
        "ALREADY_EXISTS",
        "COIN_DOUBLE_SPENT",
        writes=SHOP_COIN_TABLES | REJECTED_AT_ALFA,
        metadata=lambda w: {"coin_public_key": w.cash.paid.coins[0].coin_public_key.hex()},
    ),
    Boundary(
        "request-id-reused",
        "OrderService/SubmitCoins",
        "shop",
        _pay("K", _world("Z"), request_id=_FIXED["pay"]),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_pay("K", _world("X"), request_id=_FIXED["pay"]),
    ),
    Boundary(
        "pays-the-order",
        "OrderService/SubmitCoins",
        "shop",
        _pay("M"),
        "OK",
        writes=SHOP_COIN_TABLES | _THROUGH_SETTLEMENT,
        response=_order_is(OR.ORDER_STATUS_SETTLED, OR.ORDER_STATUS_DELIVERY_CONFIRMED),
        settled=_order_is(OR.ORDER_STATUS_DELIVERY_CONFIRMED),
    ),
]
"""Every cash RPC's boundary cases."""


def _same(found: object, expected: object) -> None:
    assert found == expected, (found, expected)
