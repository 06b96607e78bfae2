"""The electronic cash RPCs' entries of the hostile catalog (:func:`cash_specs`).

CashService at the banks (GetDenominations, Withdraw, DepositCoins), the coin
deposit between banks (SettlementService.SubmitCoinDeposit,
ClearingService.ReceiveCoinDeposit) and the storefront's SubmitCoins. The
strategies name the world's coins (:mod:`tests.hostile.cash`: every one spent),
as they were spent, field by field, or with a byte changed, and the world's key
ids; so a generated deposit is refused, or answered REJECTED with the issuer's
reason, and never moves money. A generated withdrawal (carol's, at alfa) may
succeed: it moves her money into the outstanding liability, which the audit
after it checks.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message
from hypothesis import strategies as st
from interbank.v1 import cash_pb2, common_pb2, order_pb2, settlement_pb2

from .cash import WorldCoinDeposit
from .catalog import (
    FIELD_INVALID,
    KEY_REUSED,
    REQUEST_ID_MISSING,
    RpcSpec,
    _ids,
    _request_id,
    _spec,
)
from .harness import Tables
from .strategies import hostile_bytes, hostile_text, messages, money, one_of_or
from .world import World

__all__ = [
    "COIN_REJECTIONS",
    "DEPOSITED",
    "DEPOSIT_REJECTIONS",
    "REJECTED_AT_ALFA",
    "REJECTED_AT_BETA",
    "SHOP_COIN_TABLES",
    "cash_specs",
]

COIN_REJECTIONS = frozenset({"COIN_INVALID", "COIN_DOUBLE_SPENT", "DENOMINATION_EXPIRED"})
"""Why an issuing bank refuses a coin deposit (ClearingService.ReceiveCoinDeposit)."""

DEPOSIT_REJECTIONS = COIN_REJECTIONS | {
    "INSUFFICIENT_RESERVE",
    "NET_DEBIT_CAP_EXCEEDED",
    "UNKNOWN_ISSUING_AGENT",
}
"""Reason codes of a coin deposit REJECTED through the settlement bank: the issuer's, or the
settlement bank's own before it asks the issuer."""

REJECTED_AT_ALFA = frozenset(
    {
        ("beta", "coin_deposits"),
        ("beta", "idempotency"),
        ("settlement", "settlement_transfers"),
        ("settlement", "settlement_windows"),
        ("settlement", "window_positions"),
        ("settlement", "idempotency"),
        ("alfa", "coin_deposits_received"),
        ("alfa", "idempotency"),
    }
)
"""A deposit at beta of coins named alfa's, sent through the settlement bank and refused."""

REJECTED_AT_BETA = frozenset(
    {("beta", "coin_deposits"), ("beta", "coin_deposits_received"), ("beta", "idempotency")}
)
"""A deposit at beta of coins named beta's, refused by beta's own mint."""

_LEDGER = ("transfers", "accounts", "outbox", "sqlite_sequence")
DEPOSITED = (
    REJECTED_AT_ALFA
    | REJECTED_AT_BETA
    | {
        ("alfa", "spent_coins"),
        ("beta", "spent_coins"),
        *(("alfa", table) for table in _LEDGER),
        *(("beta", table) for table in _LEDGER),
        # The shop reads beta's credit notice as soon as it is committed.
        ("shop", "processed_events"),
        ("shop", "subscription_cursor"),
    }
)
"""What a deposit taken by its issuer writes, whichever bank issued the coins."""

SHOP_COIN_TABLES = frozenset(
    {
        ("shop", "orders"),
        ("shop", "outbox"),
        ("shop", "sqlite_sequence"),
        ("shop", "coin_payments"),
        ("shop", "idempotency"),
    }
)
"""The storefront's record of a coin payment and its order's moves."""

_WITHDRAWN = frozenset(
    {
        ("alfa", "withdrawals"),
        ("alfa", "idempotency"),
        *(("alfa", table) for table in _LEDGER),
    }
)
"""A withdrawal at alfa: recorded, the customer debited into the outstanding liability."""

# -- strategies -----------------------------------------------------------------------------


def _world_coins(world: World) -> tuple[cash_pb2.Coin, ...]:
    return tuple(coin for d in world.cash.deposits for coin in d.coins)


def _flipped(coin: cash_pb2.Coin, field: str, at: int, value: int) -> cash_pb2.Coin:
    """The coin with one byte of a bytes field changed (or set, if it is empty)."""
    changed = cash_pb2.Coin()
    changed.CopyFrom(coin)
    data = getattr(changed, field)
    if not data:
        setattr(changed, field, bytes([value]))
        return changed
    at %= len(data)
    setattr(changed, field, data[:at] + bytes([data[at] ^ (value or 1)]) + data[at + 1 :])
    return changed


def _coins(world: World) -> st.SearchStrategy[cash_pb2.Coin]:
    """A world coin as spent, with one byte changed, or drawn field by field."""
    real = _world_coins(world)
    cash = world.cash
    fields = messages(
        cash_pb2.Coin.DESCRIPTOR,
        {
            "bank_code": one_of_or(
                (world.alfa_code, world.beta_code, world.settlement_code), hostile_text(12)
            ),
            "denomination_key_id": one_of_or(
                tuple(d.key_id for d in cash.denominations), hostile_text(40)
            ),
            "coin_public_key": one_of_or(tuple(c.coin_public_key for c in real), hostile_bytes(40)),
            "message_prefix": one_of_or(tuple(c.message_prefix for c in real), hostile_bytes(40)),
            "denomination_signature": one_of_or(
                tuple(c.denomination_signature for c in real), hostile_bytes(400)
            ),
            "coin_signature": one_of_or(tuple(c.coin_signature for c in real), hostile_bytes(70)),
        },
    )
    flipped = st.builds(
        _flipped,
        st.sampled_from(real),
        st.sampled_from(
            ("coin_public_key", "message_prefix", "denomination_signature", "coin_signature")
        ),
        st.integers(0, 1000),
        st.integers(0, 255),
    )
    return st.one_of(st.sampled_from(real), flipped, fields)


def _coin_lists(world: World) -> st.SearchStrategy[list[cash_pb2.Coin]]:
    """The coins of a world deposit, or up to four coins of :func:`_coins`."""
    return st.one_of(
        st.sampled_from(tuple(d.coins for d in world.cash.deposits)),
        st.lists(_coins(world), max_size=4),
    )


def _contracts(world: World) -> st.SearchStrategy[cash_pb2.CoinContract | None]:
    real = tuple(d.contract for d in world.cash.deposits)
    fields = messages(
        cash_pb2.CoinContract.DESCRIPTOR,
        {
            "order_id": _ids(*(c.order_id for c in real), *world.orders.values()),
            "order_digest": one_of_or(tuple(c.order_digest for c in real), hostile_bytes(40)),
            "merchant_name": _ids("shop"),
        },
    )
    return st.one_of(st.none(), st.sampled_from(real), fields)


def _coin_amounts(world: World) -> st.SearchStrategy[common_pb2.Money | None]:
    real = tuple(
        common_pb2.Money(amount_minor=d.amount_minor, currency_code=world.currency)
        for d in world.cash.deposits
    )
    return st.one_of(money(world.currency), st.sampled_from(real))


def _coin_deposits(
    world: World,
    ids: st.SearchStrategy[str],
    presenters: tuple[str, ...],
    issuers: tuple[str, ...],
    named: tuple[WorldCoinDeposit, ...],
) -> st.SearchStrategy[Message]:
    """CoinDeposits of the world's deposits (or noise): as beta made them, under another
    id, or field by field; the ids named are those of the deposits in named."""
    made = tuple(d.deposited() for d in world.cash.deposits)
    renamed = st.builds(
        lambda d, new_id: d.deposited(deposit_id=new_id), st.sampled_from(world.cash.deposits), ids
    )
    fields = messages(
        cash_pb2.CoinDeposit.DESCRIPTOR,
        {
            "deposit_id": st.one_of(st.sampled_from(tuple(d.deposit_id for d in named)), ids),
            "presenting_agent": one_of_or(presenters, hostile_text(12)),
            "issuing_agent": one_of_or(issuers, hostile_text(12)),
            "amount": _coin_amounts(world),
            "contract": _contracts(world),
            "coins": _coin_lists(world),
        },
    )
    return st.one_of(st.sampled_from(made), renamed, fields)


def _blinded(world: World) -> st.SearchStrategy[Message]:
    """Blinded coins: W's own, or a world key id with a modulus-sized number, or noise."""
    cash = world.cash
    real = tuple(cash.withdraw_request().coins)
    size = len(real[0].blinded_message)
    return st.one_of(
        st.sampled_from(real),
        messages(
            cash_pb2.BlindedCoin.DESCRIPTOR,
            {
                "denomination_key_id": one_of_or(
                    tuple(d.key_id for d in cash.denominations), hostile_text(40)
                ),
                "blinded_message": st.one_of(
                    st.sampled_from(tuple(c.blinded_message for c in real)),
                    st.binary(min_size=size, max_size=size),
                    hostile_bytes(600),
                ),
            },
        ),
    )


# -- what successes may write ---------------------------------------------------------------


def _withdrawn(world: World, response: bytes) -> Tables:
    """W asked again (its answer), or a new withdrawal of carol's (W's blinded coins under
    another request_id get W's blind signatures again: RSA signing is deterministic)."""
    answer = cash_pb2.WithdrawResponse.FromString(response)
    assert answer.blind_signatures, "a withdrawal answered no blind signature"
    assert answer.debited.currency_code == world.currency, answer.debited
    assert answer.debited.amount_minor > 0, answer.debited
    return _WITHDRAWN


def _deposit_answer(world: World, response: bytes) -> Tables:
    """A world deposit asked again with its request_id (as it is: nothing written), or a
    new deposit, REJECTED: every coin a generated request names is spent or not genuine."""
    answer = cash_pb2.DepositCoinsResponse.FromString(response)
    known = {d.deposit_id: (d.state, d.reason) for d in world.cash.deposits}
    if answer.deposit_id in known:
        assert (answer.state, answer.reason) == known[answer.deposit_id], answer
        return frozenset()
    assert answer.state == cash_pb2.COIN_DEPOSIT_STATE_REJECTED, f"a hostile deposit: {answer}"
    assert answer.reason in DEPOSIT_REJECTIONS, f"undocumented rejection {answer.reason!r}"
    return REJECTED_AT_ALFA | REJECTED_AT_BETA


def _coin_report(
    response_type: type[Message], tables: Tables, rejections: frozenset[str]
) -> Callable[[World, bytes], Tables]:
    """A coin deposit's report: REJECTED with a known reason, or X's own recorded answer
    (ACCEPTED, once, when beta deposited it). Never PENDING, never a new acceptance."""

    def check(world: World, response: bytes) -> Tables:
        report = response_type.FromString(response)
        status = settlement_pb2.TransferStatus.Name(report.status)  # type: ignore[attr-defined]
        deposit_id = report.deposit_id  # type: ignore[attr-defined]
        if status == "TRANSFER_STATUS_ACCEPTED":
            assert deposit_id == world.cash.paid.deposit_id, f"hostile coins {deposit_id!r} taken"
            return tables
        assert status == "TRANSFER_STATUS_REJECTED", f"a hostile coin deposit was {status}"
        reason = report.reason_code  # type: ignore[attr-defined]
        assert reason in rejections, f"undocumented rejection reason {reason!r}"
        return tables

    return check


# -- the specs ------------------------------------------------------------------------------


def cash_specs() -> list[RpcSpec]:
    """One spec per cash RPC and serving node."""
    c, s = cash_pb2, settlement_pb2
    return [
        # -- CashService at alfa: the key set (any role), withdrawals (its customers) ------
        _spec(
            "CashService/GetDenominations",
            "alfa",
            "alice",
            c.GetDenominationsRequest,
            lambda w: messages(c.GetDenominationsRequest.DESCRIPTOR),
            set(),
            may_succeed=True,
            max_examples=25,
        ),
        _spec(
            "CashService/Withdraw",
            "alfa",
            "carol",
            c.WithdrawRequest,
            lambda w: st.one_of(
                messages(
                    c.WithdrawRequest.DESCRIPTOR,
                    {
                        "request_id": one_of_or(
                            (w.cash.withdraw_request().request_id,), _request_id()
                        ),
                        "account_id": _ids(
                            w.carol_account,
                            w.alice_account,
                            w.bob_account,
                            "@reserve",
                            "@cash-outstanding",
                        ),
                        "coins": st.lists(_blinded(w), max_size=4),
                    },
                ),
                st.builds(w.cash.withdraw_request, st.one_of(st.none(), _request_id())),
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("INVALID_ARGUMENT", "DENOMINATION_UNKNOWN"),
                ("INVALID_ARGUMENT", "DENOMINATION_EXPIRED"),
                ("PERMISSION_DENIED", "ACCOUNT_NOT_HELD_BY_CALLER"),
                ("FAILED_PRECONDITION", "INSUFFICIENT_FUNDS"),
            },
            # W again, or a well-formed withdrawal of carol's: her money into the liability.
            may_succeed=True,
            success_writes=_withdrawn,
        ),
        # -- CashService.DepositCoins at beta, called by the shop --------------------------
        _spec(
            "CashService/DepositCoins",
            "beta",
            "shop",
            c.DepositCoinsRequest,
            lambda w: st.one_of(
                messages(
                    c.DepositCoinsRequest.DESCRIPTOR,
                    {
                        "request_id": one_of_or(
                            tuple(d.request_id for d in w.cash.deposits), _request_id()
                        ),
                        "contract": _contracts(w),
                        "coins": _coin_lists(w),
                        "amount": _coin_amounts(w),
                    },
                ),
                st.builds(
                    lambda deposit, request_id: deposit.deposit_request(request_id),
                    st.sampled_from(w.cash.deposits),
                    st.one_of(st.none(), _request_id()),
                ),
            ),
            {REQUEST_ID_MISSING, KEY_REUSED, FIELD_INVALID},
            may_succeed=True,  # refused by the issuer (REJECTED), or a world deposit as it is
            success_writes=_deposit_answer,
            max_examples=150,
        ),
        # -- the coin deposit between banks: beta -> settlement bank -> alfa ---------------
        _spec(
            "SettlementService/SubmitCoinDeposit",
            "settlement",
            "beta",
            s.SubmitCoinDepositRequest,
            lambda w: messages(
                s.SubmitCoinDepositRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "deposit": st.one_of(
                        st.none(),
                        _coin_deposits(
                            w,
                            hostile_text(),
                            (w.beta_code, w.alfa_code),
                            (w.alfa_code, w.beta_code),
                            w.cash.deposits,
                        ),
                    ),
                },
            ),
            {
                REQUEST_ID_MISSING,
                FIELD_INVALID,
                KEY_REUSED,
                ("PERMISSION_DENIED", "PRESENTING_AGENT_NOT_CALLER"),
                ("INVALID_ARGUMENT", "SAME_AGENT"),
            },
            may_succeed=True,
            success_writes=_coin_report(
                s.SubmitCoinDepositResponse,
                frozenset(
                    {
                        ("settlement", "settlement_transfers"),
                        ("settlement", "settlement_windows"),
                        ("settlement", "window_positions"),
                        ("settlement", "idempotency"),
                        ("alfa", "coin_deposits_received"),
                        ("alfa", "idempotency"),
                    }
                ),
                DEPOSIT_REJECTIONS,
            ),
        ),
        _spec(
            "ClearingService/ReceiveCoinDeposit",
            "alfa",
            "settlement",
            s.ReceiveCoinDepositRequest,
            lambda w: messages(
                s.ReceiveCoinDepositRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "deposit": st.one_of(
                        st.none(),
                        _coin_deposits(
                            w,
                            # Not ids beta may later present: a deposit id is beta's, once
                            # per content.
                            hostile_text().map(lambda text: f"direct-{text}"),
                            (w.beta_code, w.alfa_code, w.settlement_code),
                            (w.alfa_code, w.beta_code),
                            (w.cash.paid, w.cash.double_spent),
                        ),
                    ),
                },
            ),
            {REQUEST_ID_MISSING, FIELD_INVALID, KEY_REUSED, ("INVALID_ARGUMENT", "SAME_AGENT")},
            may_succeed=True,
            success_writes=_coin_report(
                s.ReceiveCoinDepositResponse,
                frozenset({("alfa", "coin_deposits_received"), ("alfa", "idempotency")}),
                COIN_REJECTIONS,
            ),
        ),
        # -- OrderService.SubmitCoins at the shop, as alice --------------------------------
        _spec(
            "OrderService/SubmitCoins",
            "shop",
            "alice",
            order_pb2.SubmitCoinsRequest,
            lambda w: st.one_of(
                messages(
                    order_pb2.SubmitCoinsRequest.DESCRIPTOR,
                    {
                        "request_id": _request_id(),
                        "order_id": _ids(*w.orders.values()),
                        "coins": _coin_lists(w),
                    },
                ),
                # K's own coins (X's, spent) or Z's (signed for another contract).
                st.builds(
                    lambda deposit, request_id: order_pb2.SubmitCoinsRequest(
                        request_id=request_id, order_id=w.orders["K"], coins=deposit.coins
                    ),
                    st.sampled_from((w.cash.paid, w.cash.double_spent)),
                    _request_id(),
                ),
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "ORDER_NOT_FOUND"),
                ("FAILED_PRECONDITION", "ORDER_NOT_PAYABLE"),
                ("INVALID_ARGUMENT", "COIN_INVALID"),
                ("INVALID_ARGUMENT", "AMOUNT_MISMATCH"),
                ("FAILED_PRECONDITION", "DENOMINATION_EXPIRED"),
                # Passed on from the issuer: every world coin was spent already.
                ("ALREADY_EXISTS", "COIN_DOUBLE_SPENT"),
            },
            # The refused payment is kept with the issuer's reason and the order reopened.
            refusal_writes={"COIN_DOUBLE_SPENT": SHOP_COIN_TABLES | REJECTED_AT_ALFA},
        ),
    ]
