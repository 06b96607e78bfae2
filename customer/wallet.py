"""The customer's e-cash wallet (docs/cash.md): its coins and its withdrawals
waiting for an answer, in memory and, given a path, in a JSON file.

The file is written whole through a temporary file, fsync and rename, mode
0600, before anything is sent: a withdrawal is written before Withdraw, so one
whose answer was lost is sent again with the same request_id and the same
blinded messages (the bank answers the same blind signatures and debits once);
a coin is marked spent, with its order and merchant, before it is shown, so it
is never shown to another merchant. Coin private keys live only in that file:
they are never logged and never put in a message, and :func:`render_wallet`
shows values and counts only.

Coins are spent whole: :meth:`CoinWallet.select` finds unspent coins that add
up to an amount exactly, or says there are none, and the caller then withdraws
exactly that amount (:func:`customer.shop.purchase_with_coins`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from customer.coins import CoinSpending, PendingCoin, PendingWithdrawal, WalletCoin
from payment import cash
from payment.config import NetworkConfig
from payment.pki import Pki

__all__ = ["WALLET_VERSION", "CoinWallet", "default_wallet_path", "render_wallet"]

WALLET_VERSION = 1
"""The wallet file's format version."""


def default_wallet_path(network: NetworkConfig, customer: str) -> Path:
    """Where a customer's wallet lives by default: beside its keys, in its folder of
    the PKI directory (``<customer>/wallet.json``)."""
    return Pki(network.pki_dir).root / customer / "wallet.json"


# -- the wallet ----------------------------------------------------------------------------


class CoinWallet:
    """The customer's coins and its withdrawals waiting for an answer."""

    def __init__(self, path: Path | None = None) -> None:
        """An empty wallet, or the one saved at path (created on the first save)."""
        self.path = path
        """The wallet file, or None for a wallet kept in memory only."""
        self._coins: list[WalletCoin] = []
        self._pending: dict[str, PendingWithdrawal] = {}
        if path is not None and path.exists():
            self._load(path)

    @property
    def coins(self) -> list[WalletCoin]:
        """Every coin, spent or not, oldest first."""
        return list(self._coins)

    def unspent(self, moment: dt.datetime | None = None) -> list[WalletCoin]:
        """The coins never shown to a merchant (and, given moment, still depositable)."""
        stamp = None if moment is None else int(moment.timestamp())
        return [
            c for c in self._coins if c.spent is None and (stamp is None or c.deposit_until > stamp)
        ]

    def pending(self) -> list[PendingWithdrawal]:
        """The withdrawals written but not yet answered, oldest first."""
        return list(self._pending.values())

    def withdrawn(self, request_id: str) -> list[WalletCoin]:
        """The coins an answered withdrawal made (empty if none)."""
        return [c for c in self._coins if c.withdrawal == request_id]

    def spent_for(self, order_id: str) -> list[WalletCoin]:
        """The coins shown for an order (empty if none)."""
        return [c for c in self._coins if c.spent is not None and c.spent.order_id == order_id]

    # -- changes, each saved before it is acted on -----------------------------------------

    def begin_withdrawal(self, pending: PendingWithdrawal) -> None:
        """Keep a withdrawal before it is sent; the same one again changes nothing."""
        if pending.request_id in self._pending:
            return
        if self.withdrawn(pending.request_id):
            raise ValueError(f"withdrawal {pending.request_id!r} is already answered")
        self._pending[pending.request_id] = pending
        self._save()

    def drop_withdrawal(self, request_id: str) -> None:
        """Forget a withdrawal the bank refused (nothing was debited for it)."""
        if self._pending.pop(request_id, None) is not None:
            self._save()

    def complete_withdrawal(self, request_id: str, coins: Sequence[WalletCoin]) -> None:
        """Keep an answered withdrawal's coins in place of the pending withdrawal."""
        self._pending.pop(request_id, None)
        known = {c.public_key for c in self._coins}
        self._coins += [c for c in coins if c.public_key not in known]
        self._save()

    def mark_spent(
        self, coins: Sequence[WalletCoin], order_id: str, merchant: str, request_id: str
    ) -> list[WalletCoin]:
        """Record coins as shown for order_id to merchant, before they are sent; the
        coins as recorded. ValueError if one is not in the wallet or was already shown
        for another order (or to another merchant)."""
        spending = CoinSpending(order_id, merchant, request_id)
        wanted = {c.public_key for c in coins}
        marked = []
        for index, coin in enumerate(self._coins):
            if coin.public_key not in wanted:
                continue
            if coin.spent is not None and (coin.spent.order_id, coin.spent.merchant) != (
                order_id,
                merchant,
            ):
                raise ValueError(
                    f"coin {coin.public_key.hex()[:8]}... was already shown for another order"
                )
            if coin.spent is None:
                coin = replace(coin, spent=spending)
                self._coins[index] = coin
            marked.append(coin)
        if len(marked) != len(wanted):
            raise ValueError("a coin to spend is not in the wallet")
        self._save()
        return marked

    # -- choosing coins ----------------------------------------------------------------------

    def select(
        self,
        amount_minor: int,
        currency: str,
        moment: dt.datetime | None = None,
        *,
        max_coins: int = cash.MAX_COINS,
    ) -> list[WalletCoin] | None:
        """Unspent coins of one issuing bank whose face values add up to amount_minor
        exactly, as few as possible (at most max_coins); None if there is no such set.

        Coins are spent whole (docs/cash.md section 4): with no exact set, the
        caller withdraws the amount exactly instead (:func:`customer.shop.purchase_with_coins`).
        """
        if amount_minor <= 0:
            return None
        by_bank: dict[str, list[WalletCoin]] = {}
        for coin in self.unspent(moment):
            if coin.currency == currency:
                by_bank.setdefault(coin.bank_code, []).append(coin)
        best: list[WalletCoin] | None = None
        for coins in by_bank.values():
            found = _exact_subset(coins, amount_minor, max_coins)
            if found is not None and (best is None or len(found) < len(best)):
                best = found
        return best

    # -- the file ----------------------------------------------------------------------------

    def _save(self) -> None:
        if self.path is None:
            return
        document = {
            "version": WALLET_VERSION,
            "coins": [_coin_json(c) for c in self._coins],
            "pending_withdrawals": [_pending_json(p) for p in self._pending.values()],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.path.with_name(f".{self.path.name}.new")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(fresh, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _load(self, path: Path) -> None:
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            version = saved.get("version")
        except (ValueError, AttributeError) as exc:
            problem = exc.msg if isinstance(exc, json.JSONDecodeError) else "not a JSON object"
            raise ValueError(f"{path} is not a readable coin wallet ({problem})") from None
        if version != WALLET_VERSION:
            shown = version if isinstance(version, int) else "unknown"
            raise ValueError(f"{path} is a wallet of format {shown}, not {WALLET_VERSION}")
        try:
            self._coins = [_coin_from_json(entry) for entry in saved["coins"]]
            for entry in saved["pending_withdrawals"]:
                pending = _pending_from_json(entry)
                self._pending[pending.request_id] = pending
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Never the file's text in the message: it holds coin private keys.
            problem = type(exc).__name__
            raise ValueError(f"{path} is not a readable coin wallet ({problem})") from None


def _exact_subset(coins: list[WalletCoin], amount: int, max_coins: int) -> list[WalletCoin] | None:
    """The fewest coins adding up to amount exactly, or None (a bounded knapsack over
    face values: each value's coins in bundles of 1, 2, 4, ... so that the work grows
    with the number of distinct values, not of coins)."""
    by_value: dict[int, list[WalletCoin]] = {}
    for coin in sorted(coins, key=lambda c: c.deposit_until):  # the soonest to expire first
        by_value.setdefault(coin.value_minor, []).append(coin)
    if sum(c.value_minor for c in coins) < amount:
        return None
    bundles: list[tuple[int, int]] = []  # (value, how many coins of it)
    for value, same in sorted(by_value.items(), reverse=True):
        left, size = len(same), 1
        while left:
            take = min(size, left)
            bundles.append((value, take))
            left -= take
            size *= 2
    # best[sum] = fewest coins reaching it; layers[i][sum] = the sum before bundle i was
    # added, for the sums bundle i improved (each bundle is used at most once).
    best: dict[int, int] = {0: 0}
    layers: list[dict[int, int]] = []
    for value, count in bundles:
        step = value * count
        improved: dict[int, int] = {}
        for total, used in list(best.items()):
            target = total + step
            if target > amount or used + count > max_coins:
                continue
            if best.get(target, max_coins + 1) > used + count:
                best[target] = used + count
                improved[target] = total
        layers.append(improved)
    if amount not in best:
        return None
    taken: dict[int, int] = {}
    total, layer = amount, len(layers) - 1
    while total:
        while total not in layers[layer]:
            layer -= 1
        value, count = bundles[layer]
        taken[value] = taken.get(value, 0) + count
        total, layer = layers[layer][total], layer - 1
    return [coin for value, count in taken.items() for coin in by_value[value][:count]]


def _coin_json(coin: WalletCoin) -> dict[str, Any]:
    return {
        "bank_code": coin.bank_code,
        "denomination_key_id": coin.denomination_key_id,
        "value_minor": coin.value_minor,
        "currency": coin.currency,
        "coin_private_key": coin.private_key.hex(),
        "coin_public_key": coin.public_key.hex(),
        "message_prefix": coin.message_prefix.hex(),
        "denomination_signature": coin.denomination_signature.hex(),
        "deposit_until": coin.deposit_until,
        "withdrawal": coin.withdrawal,
        "spent": None
        if coin.spent is None
        else {
            "order_id": coin.spent.order_id,
            "merchant": coin.spent.merchant,
            "request_id": coin.spent.request_id,
        },
    }


def _coin_from_json(entry: dict[str, Any]) -> WalletCoin:
    spent = entry["spent"]
    return WalletCoin(
        bank_code=str(entry["bank_code"]),
        denomination_key_id=str(entry["denomination_key_id"]),
        value_minor=int(entry["value_minor"]),
        currency=str(entry["currency"]),
        private_key=bytes.fromhex(entry["coin_private_key"]),
        public_key=bytes.fromhex(entry["coin_public_key"]),
        message_prefix=bytes.fromhex(entry["message_prefix"]),
        denomination_signature=bytes.fromhex(entry["denomination_signature"]),
        deposit_until=int(entry["deposit_until"]),
        withdrawal=str(entry["withdrawal"]),
        spent=None
        if spent is None
        else CoinSpending(str(spent["order_id"]), str(spent["merchant"]), str(spent["request_id"])),
    )


def _pending_json(pending: PendingWithdrawal) -> dict[str, Any]:
    return {
        "request_id": pending.request_id,
        "account_id": pending.account_id,
        "bank_code": pending.bank_code,
        "coins": [
            {
                "denomination_key_id": c.denomination_key_id,
                "value_minor": c.value_minor,
                "currency": c.currency,
                "deposit_until": c.deposit_until,
                "coin_private_key": c.private_key.hex(),
                "message_prefix": c.message_prefix.hex(),
                "blinded_message": c.blinded_message.hex(),
                "inv": format(c.inv, "x"),
            }
            for c in pending.coins
        ],
    }


def _pending_from_json(entry: dict[str, Any]) -> PendingWithdrawal:
    return PendingWithdrawal(
        request_id=str(entry["request_id"]),
        account_id=str(entry["account_id"]),
        bank_code=str(entry["bank_code"]),
        coins=tuple(
            PendingCoin(
                denomination_key_id=str(c["denomination_key_id"]),
                value_minor=int(c["value_minor"]),
                currency=str(c["currency"]),
                deposit_until=int(c["deposit_until"]),
                private_key=bytes.fromhex(c["coin_private_key"]),
                message_prefix=bytes.fromhex(c["message_prefix"]),
                blinded_message=bytes.fromhex(c["blinded_message"]),
                inv=int(c["inv"], 16),
            )
            for c in entry["coins"]
        ),
    )


# -- showing it ----------------------------------------------------------------------------


def render_wallet(wallet: CoinWallet, moment: dt.datetime | None = None) -> str:
    """The wallet for a person: coins by bank and denomination (unspent, spent), the
    unspent total, the spent count, withdrawals waiting for an answer. Never a key."""
    rows: dict[tuple[str, str, int], list[int]] = {}
    for coin in wallet.coins:
        counts = rows.setdefault((coin.bank_code, coin.currency, coin.value_minor), [0, 0])
        counts[0 if coin.spent is None else 1] += 1
    header = ("BANK", "DENOMINATION", "UNSPENT", "SPENT")
    table = [header] + [
        (bank, _money(value, currency), str(counts[0]), str(counts[1]))
        for (bank, currency, value), counts in sorted(
            rows.items(), key=lambda r: (r[0][0], -r[0][2])
        )
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    totals: dict[str, int] = {}
    for coin in wallet.unspent():
        totals[coin.currency] = totals.get(coin.currency, 0) + coin.value_minor
    unspent = ", ".join(_money(v, c) for c, v in sorted(totals.items())) or "0"
    spent = sum(1 for c in wallet.coins if c.spent is not None)
    expired = len(wallet.unspent()) - len(wallet.unspent(moment)) if moment else 0
    lines.append(
        f"unspent: {len(wallet.unspent())} coins, {unspent}"
        + (f" ({expired} past their deposit period)" if expired else "")
        + f"; spent: {spent} coins; withdrawals waiting for an answer: {len(wallet.pending())}"
    )
    return "\n".join(lines)


def _money(minor: int, currency: str) -> str:
    return f"{minor // 100}.{minor % 100:02d} {currency}"
