"""Paying an order with electronic coins: the merchant's side of docs/cash.md section 4.

The customer's SubmitCoins carries coins of one issuing bank, each signing the
order's contract (order id, order digest, merchant) for its face value. The
merchant checks them offline against the issuer's key set
(CashService.GetDenominations at that bank, its signature checked with the
bank's published signing key, kept per bank by :class:`KeySets` and fetched
again when a coin names a key it does not know): every coin's denomination key
is in the set and still open for deposit, the bank signed the coin, the coin
signed this order's contract, no coin twice, and the face values add up to the
order's total exactly. Each refusal leaves the order as it was.

The payment is then recorded (the DepositCoins request, :mod:`merchant.coin_deposits`)
in the transaction that makes the order PAYMENT_PENDING, and deposited at the
merchant's bank (CashService.DepositCoins), which has the issuing bank take
the coins. Accepted: the order is SETTLED and its delivery confirmed in the
answer. Refused by the issuer: the order is CREATED again (failure_reason the
reason) and the refusal passed on, COIN_DOUBLE_SPENT with the first spending
as proof. Not decided yet (the issuer unreachable) or an answer lost: the order
stays PAYMENT_PENDING with its deposit, which the customer's retry (the same
request, or the same coins) or the merchant's resolver
(:meth:`CoinPayments.resume_deposits`) sends again with the same request_id;
the acquirer answers a repeat with the deposit as it is now.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from interbank.v1 import cash_pb2, order_pb2

from merchant import orders
from merchant.coin_deposits import (
    DEPOSITING,
    REJECTED,
    CoinDepositApplied,
    CoinPayment,
    apply_coin_deposit,
    coins_digest,
    insert_coin_payment,
    live_coin_payment,
    load_coin_payment,
    paid_by_coins,
    reject_coin_payment,
    waiting_coin_deposits,
)
from merchant.coin_keys import KeySets
from merchant.ordering import OrderBook, require_unpaid
from payment import cash, errors, ids
from payment.cash import CashError, DenominationKey
from payment.cheque_trust import ChequeKeys
from payment.clock import now, now_iso, to_iso
from payment.errors import outcome_unknown, relayed
from payment.logs import get_logger

if TYPE_CHECKING:
    from interbank.v1.cash_pb2_grpc import CashServiceAsyncStub

__all__ = ["CashDesk", "CoinPayments", "deposit_request_id"]

_log = get_logger("paynet.merchant")
_STATE_NAMES = {value: name for name, value in cash_pb2.CoinDepositState.items()}


@dataclass(frozen=True)
class CashDesk:
    """What the merchant needs to take coins: whom to trust, the banks, its clock."""

    keys: ChequeKeys
    """The banks' published signing keys, which sign their key sets."""
    issuer: Callable[[str], CashServiceAsyncStub | None]
    """The CashService of the bank with this code; None for a code no bank of the network has."""
    acquirer: Callable[[], CashServiceAsyncStub]
    """The merchant's bank's CashService, where coins are deposited."""
    clock: Callable[[], dt.datetime] = now
    """The merchant's clock: a coin whose key is past its deposit period is refused."""


def deposit_request_id(order_id: str, request_id: str) -> str:
    """The DepositCoins request_id for a customer's SubmitCoins request_id."""
    return ids.derived_request_id("coins", order_id, request_id)


class CoinPayments:
    """Electronic cash's acceptance: SubmitCoins, and deposits not yet decided."""

    def __init__(self, book: OrderBook, desk: CashDesk | None) -> None:
        """desk None: this storefront takes no coins (SubmitCoins is UNIMPLEMENTED)."""
        self._book = book
        self._desk = desk
        self._key_sets = (
            None if desk is None else KeySets(desk.keys, desk.issuer, book.call_timeout_s)
        )

    async def submit_coins(
        self,
        customer_name: str,
        request_id: str,
        order_id: str,
        coins: Sequence[cash_pb2.Coin],
    ) -> order_pb2.Order:
        """Check coins paying one of the customer's orders and deposit them.

        The order must be CREATED (FAILED_PRECONDITION, ORDER_NOT_PAYABLE) and the
        coins pass the offline checks (INVALID_ARGUMENT: FIELD_INVALID, COIN_INVALID
        with coin_index, AMOUNT_MISMATCH; FAILED_PRECONDITION, DENOMINATION_EXPIRED);
        a refusal leaves the order unchanged. The same request, or the same coins for
        the order under another request_id, answers the payment as it is now (sending
        an undecided deposit again); the same request_id with other coins is
        IDEMPOTENCY_KEY_REUSED. The issuer's refusal reopens the order and is passed
        on; an unknown outcome is UNAVAILABLE, PAYMENT_OUTCOME_UNKNOWN.
        """
        desk, key_sets = self._require_desk()
        book = self._book
        deposit_rid = deposit_request_id(order_id, request_id)
        digest = coins_digest(coins)
        record, taken = await book.store.read(
            lambda conn: (
                orders.customer_order(conn, order_id, customer_name),
                _taken(conn, deposit_rid, order_id, digest, request_id),
            )
        )
        if taken is not None:
            return await self._resume(desk, taken)
        require_unpaid(record)
        issuer = _issuer(desk, coins)
        keys = await key_sets.keys(issuer, {coin.denomination_key_id for coin in coins})
        order = record.order
        await asyncio.to_thread(_check, order, coins, keys, int(desk.clock().timestamp()))
        payment = CoinPayment(
            deposit_request_id=deposit_rid,
            order_id=order_id,
            coins_digest=digest,
            deposit_request=cash_pb2.DepositCoinsRequest(
                request_id=deposit_rid,
                contract=cash_pb2.CoinContract(
                    order_id=order_id,
                    order_digest=order.order_digest,
                    merchant_name=order.merchant_name,
                ),
                coins=coins,
                amount=order.total,
            ),
            issuing_bank_code=issuer,
            amount_minor=order.total.amount_minor,
            deposit_id="",
            state=DEPOSITING,
            reason="",
            proof=None,
            submitted_at=now_iso(),
        )

        def begin(conn: sqlite3.Connection) -> CoinPayment:
            current = orders.customer_order(conn, order_id, customer_name)
            recorded = _taken(conn, deposit_rid, order_id, digest, request_id)
            if recorded is not None:
                return recorded  # recorded meanwhile by a concurrent twin
            require_unpaid(current)
            orders.transition(conn, book.trust_domain, current, orders.PAYMENT_PENDING)
            insert_coin_payment(conn, payment)
            return payment

        recorded = await book.store.transaction(begin)
        if recorded is not payment:
            return await self._resume(desk, recorded)
        _log.info(
            "coins.accepted",
            order_id=order_id,
            issuing_bank_code=issuer,
            coins=len(coins),
            amount_minor=payment.amount_minor,
        )
        return await self._deposit(desk, payment)

    async def answer_again(
        self, customer_name: str, request_id: str, order_id: str
    ) -> order_pb2.Order:
        """The order a SubmitCoins request paid, as it is now: its deposit sent again if
        still undecided, the issuer's refusal raised again if it refused."""
        desk, _ = self._require_desk()
        book = self._book
        record, payment = await book.store.read(
            lambda conn: (
                orders.customer_order(conn, order_id, customer_name),
                load_coin_payment(conn, deposit_request_id(order_id, request_id)),
            )
        )
        if payment is None:
            return record.order
        return await self._resume(desk, payment)

    async def resume_deposits(self, *, older_than_s: float) -> int:
        """Send again the deposits still undecided, recorded more than older_than_s ago; how
        many the acquirer answered with a decision (their orders then move as it says)."""
        desk = self._desk
        if desk is None:
            return 0
        cutoff = to_iso(now() - dt.timedelta(seconds=older_than_s))
        waiting = await self._book.store.read(lambda conn: waiting_coin_deposits(conn, cutoff))
        decided = 0
        for payment in waiting:
            try:
                order = await self._deposit(desk, payment)
            except errors.PaynetError as exc:
                if outcome_unknown(exc):
                    _log.warning(
                        "coins.resume_failed", order_id=payment.order_id, reason=exc.reason
                    )
                    continue
                decided += 1  # refused: the order is open again
                continue
            if order.status != orders.PAYMENT_PENDING:
                decided += 1
        return decided

    async def refuse_refund(self, order_id: str) -> None:
        """FAILED_PRECONDITION, REFUND_NOT_SUPPORTED, for a settled order paid with coins.

        The coins' money came through the issuer's mint, not the gateway, which has no
        payment to refund; giving coins back is not built yet.
        """

        def refundable_by_coins(conn: sqlite3.Connection) -> bool:
            record = orders.load_order(conn, order_id)
            return (
                record is not None
                and record.order.status in orders.REFUNDABLE
                and paid_by_coins(conn, order_id)
            )

        if await self._book.store.read(refundable_by_coins):
            raise errors.FailedPrecondition(
                "REFUND_NOT_SUPPORTED",
                "refunds of coin payments are not supported yet",
                order_id=order_id,
            )

    def _require_desk(self) -> tuple[CashDesk, KeySets]:
        if self._desk is None or self._key_sets is None:
            raise errors.Unimplemented("CASH_NOT_ACCEPTED", "this merchant does not take coins")
        return self._desk, self._key_sets

    async def _resume(self, desk: CashDesk, payment: CoinPayment) -> order_pb2.Order:
        """The order of a payment recorded before: sent again if undecided, refused again
        if the issuer refused it."""
        if payment.state == DEPOSITING:
            return await self._deposit(desk, payment)
        if payment.state == REJECTED:
            raise _refusal(payment)
        book = self._book
        current = await book.store.read(lambda conn: book.load(conn, payment.order_id))
        return current.order

    async def _deposit(self, desk: CashDesk, payment: CoinPayment) -> order_pb2.Order:
        """Send the recorded deposit to the acquirer and apply its answer."""
        book = self._book
        order_id = payment.order_id
        try:
            reply = await relayed(
                desk.acquirer().DepositCoins(payment.deposit_request, timeout=book.call_timeout_s)
            )
        except errors.PaynetError as exc:
            if outcome_unknown(exc):
                # The acquirer may hold the deposit: the order stays PAYMENT_PENDING with it,
                # and a retry (or the resolver) sends it again with the same request_id.
                _log.warning("coins.outcome_unknown", order_id=order_id, status=exc.code.name)
                raise errors.Unavailable(
                    "PAYMENT_OUTCOME_UNKNOWN",
                    f"the deposit of the coins for order {order_id!r} did not complete; "
                    "submit the same coins again",
                    order_id=order_id,
                ) from None
            # Any other answer is a refusal with nothing recorded at the acquirer (a repeat
            # of this request is answered with the deposit as it is, however late).
            reason = exc.reason
            await book.store.transaction(
                lambda conn: reject_coin_payment(
                    conn, book.trust_domain, payment.deposit_request_id, reason
                )
            )
            _log.info("coins.deposit_refused", order_id=order_id, reason=reason)
            raise

        def answered(
            conn: sqlite3.Connection,
        ) -> tuple[CoinDepositApplied, CoinPayment | None, order_pb2.Order]:
            applied = apply_coin_deposit(conn, book.trust_domain, payment.deposit_request_id, reply)
            current = load_coin_payment(conn, payment.deposit_request_id)
            return applied, current, book.load(conn, order_id).order

        applied, current, order = await book.store.transaction(answered)
        log = _log.warning if applied is CoinDepositApplied.MISMATCH else _log.info
        log(
            "coins.deposited",
            order_id=order_id,
            deposit_id=reply.deposit_id,
            state=_STATE_NAMES.get(reply.state, str(reply.state)),
            reason=reply.reason,
            outcome=applied.value,
        )
        if current is not None and current.state == REJECTED:
            raise _refusal(current)
        return order


def _taken(
    conn: sqlite3.Connection, deposit_rid: str, order_id: str, digest: bytes, request_id: str
) -> CoinPayment | None:
    """The payment this request (or these same coins, for the order) recorded, or None;
    IDEMPOTENCY_KEY_REUSED if the request_id recorded other coins."""
    mine = load_coin_payment(conn, deposit_rid)
    if mine is not None:
        if mine.coins_digest != digest:
            raise errors.AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                f"request_id {request_id!r} paid this order with other coins; choose a new"
                " request_id for new coins",
                request_id=request_id,
            )
        return mine
    live = live_coin_payment(conn, order_id)
    return live if live is not None and live.coins_digest == digest else None


def _issuer(desk: CashDesk, coins: Sequence[cash_pb2.Coin]) -> str:
    """The one bank that issued the coins; FIELD_INVALID (field coins) unless there are 1
    to MAX_COINS of them, all of one bank of the network."""
    if not 1 <= len(coins) <= cash.MAX_COINS:
        raise errors.InvalidArgument(
            "FIELD_INVALID",
            f"a payment takes 1 to {cash.MAX_COINS} coins",
            field="coins",
            limit=str(cash.MAX_COINS),
        )
    banks = {coin.bank_code for coin in coins}
    if len(banks) != 1:
        raise errors.InvalidArgument(
            "FIELD_INVALID", "the coins of one payment come from one bank", field="coins"
        )
    (bank,) = banks
    if desk.issuer(bank) is None:
        raise errors.InvalidArgument(
            "FIELD_INVALID", "the coins' bank is no bank of this network", field="coins"
        )
    return bank


def _check(
    order: order_pb2.Order,
    coins: Sequence[cash_pb2.Coin],
    keys: Mapping[str, DenominationKey],
    moment: int,
) -> None:
    """The offline checks of each coin against the issuer's keys and this order's contract,
    then the total; the first that fails is raised."""
    order_id = order.order_id
    contract = (order_id, order.order_digest, order.merchant_name)
    seen: set[bytes] = set()
    values: list[tuple[int, str]] = []
    for index, coin in enumerate(coins):
        key = keys.get(coin.denomination_key_id)
        if key is None:
            raise _invalid(order_id, index, "names no denomination key of its bank's key set")
        if coin.coin_public_key in seen:
            raise _invalid(order_id, index, "is in the payment twice")
        seen.add(coin.coin_public_key)
        if key.deposit_until <= moment:
            raise errors.FailedPrecondition(
                "DENOMINATION_EXPIRED",
                f"coins[{index}]'s denomination key is past its deposit period",
                order_id=order_id,
                coin_index=index,
            )
        try:
            cash.verify_coin(
                key,
                coin.bank_code,
                coin.coin_public_key,
                coin.message_prefix,
                coin.denomination_signature,
                coin.coin_signature,
                contract,
            )
        except CashError as exc:
            raise _invalid(order_id, index, f"fails: its {exc.field} does not verify") from None
        values.append((key.value_minor, key.currency))
    total = order.total
    if sum(value for value, _ in values) != total.amount_minor or any(
        currency != total.currency_code for _, currency in values
    ):
        raise errors.InvalidArgument(
            "AMOUNT_MISMATCH",
            f"the coins' face values do not add up to the order's total,"
            f" {total.amount_minor} {total.currency_code}",
            order_id=order_id,
        )


def _invalid(order_id: str, index: int, problem: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        "COIN_INVALID", f"coins[{index}] {problem}", order_id=order_id, coin_index=index
    )


def _refusal(payment: CoinPayment) -> errors.PaynetError:
    """The issuer's refusal of a payment, as the customer is told it."""
    order_id, reason = payment.order_id, payment.reason
    again = f"order {order_id!r} is open again: pay it with other coins"
    if reason == "COIN_DOUBLE_SPENT":
        proof = payment.proof
        if proof is None:
            return errors.AlreadyExists(
                reason, f"a coin of the payment was spent before; {again}", order_id=order_id
            )
        first = proof.contract.order_id
        return errors.AlreadyExists(
            reason,
            f"a coin of the payment was spent before, for order {first!r}; {again}",
            coin_public_key=proof.coin_public_key.hex(),
            order_id=order_id,
            spent_order_id=first,
        )
    if reason == "COIN_INVALID":
        return errors.InvalidArgument(
            reason, f"the issuing bank found a coin invalid; {again}", order_id=order_id
        )
    return errors.FailedPrecondition(
        reason, f"the issuing bank refused the coins ({reason}); {again}", order_id=order_id
    )
