"""A whole purchase as a customer, printed step by step as DESIGN section 1 numbers it.

Used by ``paynet shop`` and ``make run``. Steps the customer cannot see
directly (the merchant forwarding, the issuer authorizing, settlement) are
printed as the merchant's order-update stream reports them. :func:`purchase`
pays by card or bank account; :func:`purchase_by_cheque` pays with an
electronic cheque written offline (docs/cheque.md), which the merchant
endorses and deposits and the banks clear; :func:`purchase_with_coins` pays
with electronic cash (docs/cash.md), withdrawn first when the wallet has no
coins that add up to the total.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from interbank.v1 import account_pb2, account_pb2_grpc, notification_pb2_grpc, order_pb2

from customer.cheques import ChequeBook
from customer.client import Customer, PlacedOrder
from customer.coins import WalletCoin
from customer.wallet import default_wallet_path
from payment.clock import now
from payment.config import NetworkConfig, Role
from payment.errors import PaynetError
from payment.notifications import follow
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = [
    "ChequePurchaseResult",
    "CoinPurchaseResult",
    "PurchaseResult",
    "all_balances",
    "purchase",
    "purchase_by_cheque",
    "purchase_with_coins",
    "shop",
]

Say = Callable[[str, str, str], None]
S = order_pb2.OrderStatus

_STATUS_STEPS: dict[int, tuple[str, str, str]] = {
    S.ORDER_STATUS_PAYMENT_PENDING: (
        "3 check order, forward sealed",
        "merchant -> gateway",
        "order checked (exists, unpaid, amount); sealed instruction forwarded unopened",
    ),
    S.ORDER_STATUS_CHALLENGE_REQUIRED: (
        "5 step-up",
        "issuer -> customer",
        "issuer answered CHALLENGE_REQUIRED; one-time code sent out of band",
    ),
    S.ORDER_STATUS_AUTHORIZED: (
        "4 authorize",
        "gateway -> issuer",
        "instruction opened and matched; dual signature verified; hold placed",
    ),
    S.ORDER_STATUS_CAPTURED: (
        "6 funds move, settle",
        "issuer -> settlement -> acquirer",
        "hold posted, customer debited, credit transfer sent",
    ),
    S.ORDER_STATUS_SETTLED: (
        "7 notify",
        "acquirer -> merchant",
        "credit notice received; order settled",
    ),
    S.ORDER_STATUS_FAILED: ("x failed", "merchant -> customer", "payment failed"),
}

# A cheque's path: no authorization or capture, the merchant checks it offline and
# deposits it; its bank presents it to the drawee, whose answer settles or fails it.
_CHEQUE_STEPS: dict[int, tuple[str, str, str]] = {
    S.ORDER_STATUS_PAYMENT_PENDING: (
        "3 check, endorse, deposit",
        "merchant -> acquirer",
        "cheque checked offline (bank key, signatures, payee, amount, order, date), "
        "endorsed and deposited; provisional credit",
    ),
    S.ORDER_STATUS_SETTLED: (
        "6 clear, pay",
        "acquirer -> settlement -> drawee",
        "cheque presented and paid by the drawee bank; credit available, order settled",
    ),
    S.ORDER_STATUS_FAILED: ("x returned", "drawee -> acquirer -> merchant", "cheque returned"),
}
_CHEQUE_PATH = (S.ORDER_STATUS_PAYMENT_PENDING, S.ORDER_STATUS_SETTLED)

# Coins: the merchant checks them offline and deposits them at its bank; the issuing
# bank takes them (each at most once) and the merchant is credited at once.
_COIN_STEPS: dict[int, tuple[str, str, str]] = {
    S.ORDER_STATUS_PAYMENT_PENDING: (
        "3 check coins, deposit",
        "merchant -> acquirer",
        "coins checked offline (issuer's key set, bank and coin signatures, total); "
        "deposited at the merchant's bank",
    ),
    S.ORDER_STATUS_SETTLED: (
        "6 issuer takes the coins",
        "acquirer -> settlement -> issuer",
        "each coin checked and recorded spent once by the issuing bank; merchant "
        "credited, order settled",
    ),
    S.ORDER_STATUS_FAILED: ("x refused", "issuer -> acquirer -> merchant", "coins refused"),
}
_COIN_PATH = (S.ORDER_STATUS_PAYMENT_PENDING, S.ORDER_STATUS_SETTLED)


def money(minor: int, currency: str) -> str:
    """Minor units as a decimal amount with currency."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d} {currency}"


def printer(prefix: str = "") -> Say:
    """A step printer: step, who -> who, what."""

    def say(step: str, route: str, what: str) -> None:
        print(f"{prefix}[{step:<30}] {route:<34} {what}", flush=True)

    return say


@dataclass(frozen=True)
class PurchaseResult:
    """How one purchase ended."""

    order: order_pb2.Order
    """The order's final state."""
    challenged: bool
    """Whether the issuer asked for a one-time code."""


async def purchase(
    customer: Customer,
    merchant: str,
    lines: Sequence[tuple[str, int]],
    *,
    instrument: str = "card",
    say: Say | None = None,
    timeout: float = 30.0,
) -> PurchaseResult:
    """Buy lines at merchant, answering a challenge if asked; waits for delivery."""
    say = say or printer()
    placed = await _browse(customer, merchant, lines, say)
    order = placed.order
    stream = narrate_order_updates(customer, merchant, order.order_id, say)
    watcher = asyncio.create_task(stream)
    try:
        payment = customer.seal_payment(placed, customer.instrument(instrument))
        say(
            "2 choose, seal, send",
            "customer",
            f"{instrument} instruction sealed to the gateway (HPKE) and dual-signed (Ed25519)",
        )
        say("2 choose, seal, send", "customer -> merchant", "SubmitPayment")
        order = await customer.submit_payment(placed, payment)
        challenged = order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED
        if challenged:
            challenge = order.challenge
            code = await customer.read_one_time_code(challenge.challenge_id, timeout)
            say("5 step-up", "issuer -> customer (device)", "one-time code read from the inbox")
            await customer.answer_challenge(challenge.challenge_id, code)
            say("5 step-up", "customer -> issuer", "code answered directly to the issuer")
            order = await customer.complete_payment(merchant, order.order_id)
        order = await customer.wait_for_order(
            merchant, order.order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED, timeout
        )
        await asyncio.sleep(0)  # let the watcher print the last updates first
        say(
            "8 confirm delivery",
            "merchant -> customer",
            f"payment success; delivery confirmed, tracking {order.delivery.tracking_reference}",
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    await _say_balance(customer, say)
    return PurchaseResult(order, challenged)


@dataclass(frozen=True)
class ChequePurchaseResult:
    """How one purchase paid by cheque ended."""

    order: order_pb2.Order
    """The order's final state: DELIVERY_CONFIRMED, or FAILED with the return reason."""
    book: ChequeBook
    """The book the cheque was written from."""
    serial: int
    """The cheque's serial."""
    stopped: bool
    """Whether the customer stopped the cheque before handing it over."""


async def purchase_by_cheque(
    customer: Customer,
    merchant: str,
    lines: Sequence[tuple[str, int]],
    *,
    book: ChequeBook | None = None,
    book_size: int = 10,
    memo: str = "",
    stop_payment: bool = False,
    say: Say | None = None,
    timeout: float = 30.0,
) -> ChequePurchaseResult:
    """Buy lines at merchant with a cheque; waits until delivered or failed.

    The cheque comes from book, else the customer's current book, else a new
    book of book_size serials from its bank. With stop_payment the customer
    stops the cheque at its bank before handing it over (a drawer changing its
    mind): the drawee returns it PAYMENT_STOPPED and the order ends FAILED.
    A refusal of the cheque by the merchant is raised (PaynetError).
    """
    say = say or printer()
    currency = customer.network.currency
    placed = await _browse(customer, merchant, lines, say)
    order = placed.order
    if book is None:
        book = customer.cheques.current()
    if book is None:
        book = await customer.issue_cheque_book(book_size)
        say(
            "2 cheque book",
            "customer -> own bank",
            f"IssueChequeBook: serials {book.first_serial}-{book.last_serial} on "
            f"{book.bank_code}; the bank's account certificate binds the customer's key",
        )
    serial = customer.cheques.take_serial(book)
    signed_cheque = customer.write_cheque(order, book, serial, memo=memo)
    say(
        "2 write, sign",
        "customer",
        f"cheque {serial} to {order.merchant_name} for "
        f"{money(order.total.amount_minor, currency)} signed offline (Ed25519)",
    )
    if stop_payment:
        await customer.stop_cheque(book, serial)
        say("x stop payment", "customer -> own bank", f"StopCheque {serial}: stop-payment order")
    watcher = asyncio.create_task(
        narrate_order_updates(
            customer, merchant, order.order_id, say, steps=_CHEQUE_STEPS, path=_CHEQUE_PATH
        )
    )
    try:
        say("2 choose, seal, send", "customer -> merchant", "SubmitCheque with the certificate")
        await customer.pay_by_cheque(merchant, order, signed_cheque, book.signed_certificate)
        order = await customer.wait_for_order(
            merchant,
            order.order_id,
            S.ORDER_STATUS_DELIVERY_CONFIRMED,
            timeout,
            or_else=(S.ORDER_STATUS_FAILED,),
        )
        await asyncio.sleep(0)  # let the watcher print the last updates first
        if order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED:
            say(
                "8 confirm delivery",
                "merchant -> customer",
                f"payment success; delivery confirmed, "
                f"tracking {order.delivery.tracking_reference}",
            )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    await _say_balance(customer, say)
    return ChequePurchaseResult(order, book, serial, stop_payment)


@dataclass(frozen=True)
class CoinPurchaseResult:
    """How one purchase paid with coins ended."""

    order: order_pb2.Order
    """The order's final state: DELIVERY_CONFIRMED when the issuer took the coins."""
    coins: tuple[WalletCoin, ...]
    """The coins that paid it (secret: they hold the coins' private keys)."""
    withdrawn_minor: int
    """What was withdrawn for it (0 when the wallet already held an exact set)."""


async def purchase_with_coins(
    customer: Customer,
    merchant: str,
    lines: Sequence[tuple[str, int]],
    *,
    say: Say | None = None,
    timeout: float = 30.0,
) -> CoinPurchaseResult:
    """Buy lines at merchant with coins from the customer's wallet; waits until
    delivered (or failed).

    Coins are spent whole: when the wallet has no unspent coins that add up to the
    total exactly, the customer withdraws exactly the total first. A refusal of the
    coins (PaynetError: COIN_DOUBLE_SPENT, COIN_INVALID, ...) is raised.
    """
    say = say or printer()
    currency = customer.network.currency
    placed = await _browse(customer, merchant, lines, say)
    order = placed.order
    total = order.total.amount_minor
    coins = customer.wallet.select(total, order.total.currency_code, now())
    withdrawn = 0
    if coins is None:
        coins = await customer.withdraw_coins(total)
        withdrawn = total
        say(
            "2 withdraw coins",
            "customer -> own bank",
            f"key set checked (bank signature, encoding); {len(coins)} coins "
            f"({', '.join(money(c.value_minor, currency) for c in coins)}) blinded, "
            f"signed by {coins[0].bank_code}, unblinded and verified; "
            f"{money(total, currency)} debited",
        )
    else:
        say(
            "2 wallet",
            "customer",
            f"{len(coins)} unspent coins add up to {money(total, currency)} exactly",
        )
    say(
        "2 sign coins",
        "customer",
        f"each coin signs the contract (order, digest, {order.merchant_name}, its value) "
        "with its own key; marked spent in the wallet before it is shown",
    )
    watcher = asyncio.create_task(
        narrate_order_updates(
            customer, merchant, order.order_id, say, steps=_COIN_STEPS, path=_COIN_PATH
        )
    )
    try:
        say("2 choose, seal, send", "customer -> merchant", f"SubmitCoins: {len(coins)} coins")
        await customer.pay_with_coins(merchant, order, coins=coins)
        order = await customer.wait_for_order(
            merchant,
            order.order_id,
            S.ORDER_STATUS_DELIVERY_CONFIRMED,
            timeout,
            or_else=(S.ORDER_STATUS_FAILED,),
        )
        await asyncio.sleep(0)  # let the watcher print the last updates first
        if order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED:
            say(
                "8 confirm delivery",
                "merchant -> customer",
                f"payment success; delivery confirmed, "
                f"tracking {order.delivery.tracking_reference}",
            )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    await _say_balance(customer, say)
    return CoinPurchaseResult(order, tuple(coins), withdrawn)


async def _browse(
    customer: Customer, merchant: str, lines: Sequence[tuple[str, int]], say: Say
) -> PlacedOrder:
    """Step 1: the catalog, then the order, priced by the merchant."""
    products = await customer.list_products(merchant)
    say("1 browse", "customer -> merchant", f"ListProducts: {len(products)} products")
    placed = await customer.create_order(merchant, lines)
    order = placed.order
    wanted = ", ".join(f"{qty} x {sku}" for sku, qty in lines)
    say(
        "1 browse",
        "customer -> merchant",
        f"CreateOrder {order.order_id[:8]}: {wanted} = "
        f"{money(order.total.amount_minor, customer.network.currency)}; "
        "digest and gateway key received",
    )
    return placed


async def _say_balance(customer: Customer, say: Say) -> None:
    """Step 9: the customer's booked balance, asked of its own bank."""
    balance = await customer.balance()
    booked = money(balance.booked.amount_minor, customer.network.currency)
    say(
        "9 check balances", "customer -> own bank", f"{customer.config.account_id}: booked {booked}"
    )


# The happy path as the merchant's order updates reveal it. A fast payment can skip
# an update on the stream (the credit notice may overtake the capture), so a later
# status also prints the steps it implies; a challenge prints only when it happened.
_HAPPY_PATH = (
    S.ORDER_STATUS_PAYMENT_PENDING,
    S.ORDER_STATUS_AUTHORIZED,
    S.ORDER_STATUS_CHALLENGE_REQUIRED,
    S.ORDER_STATUS_CAPTURED,
    S.ORDER_STATUS_SETTLED,
)


async def narrate_order_updates(
    customer: Customer,
    merchant: str,
    order_id: str,
    say: Say,
    *,
    steps: Mapping[int, tuple[str, str, str]] = _STATUS_STEPS,
    path: Sequence[int] = _HAPPY_PATH,
) -> None:
    """Print the steps the merchant's order updates reveal, once each, in flow order.

    steps and path are the instrument's: what each status means, and its happy
    path in order (the account/card flow's by default).
    """
    stub = notification_pb2_grpc.NotificationServiceStub(customer.channel(merchant))
    printed: set[int] = set()
    async with contextlib.aclosing(follow(stub)) as events:
        async for event in events:
            if event.WhichOneof("event") != "order_update":
                continue
            order = event.order_update.order
            if order.order_id != order_id:
                continue
            if order.status == S.ORDER_STATUS_FAILED:
                step, route, what = steps[S.ORDER_STATUS_FAILED]
                say(step, route, f"{what}: {order.failure_reason}")
                continue
            if order.status not in path:
                continue
            reached = list(path).index(order.status)
            for status in path[: reached + 1]:
                implied_challenge = (
                    status == S.ORDER_STATUS_CHALLENGE_REQUIRED and status != order.status
                )
                if status in printed or implied_challenge:
                    continue
                printed.add(status)
                say(*steps[status])


async def all_balances(network: NetworkConfig) -> dict[str, int]:
    """Every holder's booked balance, each asked by the holder itself of its own bank."""
    pki = Pki(network.pki_dir)
    holders = [(c.name, Role.CUSTOMER, c.bank, c.account_id) for c in network.customers] + [
        (m.name, Role.MERCHANT, m.bank, m.account_id) for m in network.merchants
    ]
    balances: dict[str, int] = {}
    for name, _role, bank, account_id in holders:
        tls = TlsIdentity.load(pki, name)
        async with secure_channel(network.node(bank).address, tls) as channel:
            stub = account_pb2_grpc.AccountServiceStub(channel)
            reply = await stub.GetBalance(
                account_pb2.GetBalanceRequest(account_id=account_id),
                timeout=network.timeouts.client_call_seconds,
            )
        balances[account_id] = reply.booked.amount_minor
    return balances


def parse_lines(buy: Sequence[str]) -> list[tuple[str, int]]:
    """SKU[:QTY] arguments as (sku, quantity) pairs."""
    lines = []
    for item in buy:
        sku, _, qty = item.partition(":")
        lines.append((sku, int(qty) if qty else 1))
    return lines


async def shop(
    network: NetworkConfig,
    customer_name: str,
    merchant: str | None,
    buy: Sequence[str],
    instrument: str,
) -> int:
    """``paynet shop``: one purchase against a running network; the exit code.

    instrument is ``card``, ``account``, ``cheque`` (a cheque from a new book) or
    ``coins`` (from the customer's wallet file, :func:`customer.wallet.default_wallet_path`,
    withdrawn first if it holds no exact set).
    """
    merchant = merchant or network.merchants[0].name
    wallet = default_wallet_path(network, customer_name)
    try:
        async with Customer(network, customer_name, wallet=wallet) as customer:
            if instrument == "cheque":
                order = (await purchase_by_cheque(customer, merchant, parse_lines(buy))).order
            elif instrument == "coins":
                order = (await purchase_with_coins(customer, merchant, parse_lines(buy))).order
            else:
                lines = parse_lines(buy)
                order = (await purchase(customer, merchant, lines, instrument=instrument)).order
    except PaynetError as exc:
        print(f"paynet shop: payment refused: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    returned = f" ({order.failure_reason})" if order.failure_reason else ""
    print(f"order {order.order_id}: {S.Name(order.status)}{returned}")
    return 0 if order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED else 1
