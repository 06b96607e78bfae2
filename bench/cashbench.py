"""``python -m bench.cashbench``: electronic cash beside the account payment, in one run.

On one network (the benchmark's, every node its own process over mTLS), at one
concurrency, it measures in turn:

- account payments/s: frictionless purchases, as ``bench.bench`` makes them;
- withdrawals/s: ``CashService.Withdraw`` of one coin each by many customers,
  the wallet's blinding and unblinding included (the bank's blind signature,
  RFC 9474 on Python integers, is the costly step);
- coin deposits/s: ``CashService.DepositCoins`` of one coin each by the
  merchant at its bank, half of them coins of its own bank (taken at deposit),
  half of another bank's (taken through the settlement bank).

Figures are ratios in one run, so the machine's speed cancels out. The last
line is one JSON object: ``{"cash": {...}}``. Exit 1 if any call failed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import grpc
from interbank.v1 import cash_pb2, cash_pb2_grpc, common_pb2, order_pb2

from bench.bench import PaymentLoad, _bounded, write_bench_network
from customer.coins import KeySet, blind_withdrawal, check_key_set, finish_withdrawal, sign_coins
from ops.launcher import LocalNetwork
from payment.cheque_trust import ChequeKeys
from payment.config import NetworkConfig, load_network
from payment.logs import configure_logging
from payment.pki import Pki, init_pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["main", "run"]

COIN_MINOR = 100
"""The value of every benchmark coin."""


class CashLoad:
    """Withdrawals by the buyers and deposits by the merchant, over shared channels."""

    def __init__(self, network: NetworkConfig, buyers: Sequence[str]) -> None:
        self._network = network
        pki = Pki(network.pki_dir)
        self._buyers = list(buyers)
        self._channels = {
            name: secure_channel(
                network.node(network.customer(name).bank).address, TlsIdentity.load(pki, name)
            )
            for name in buyers
        }
        merchant = network.merchants[0]
        self._merchant = merchant.name
        self._shop = secure_channel(
            network.node(merchant.bank).address, TlsIdentity.load(pki, merchant.name)
        )
        self._key_sets: dict[str, KeySet] = {}
        self.coins: list[tuple[str, cash_pb2.Coin]] = []
        """Each withdrawn coin with the order it signed."""
        self.failed = 0

    async def close(self) -> None:
        """Close every channel."""
        for channel in [*self._channels.values(), self._shop]:
            await channel.close()

    async def _key_set(self, buyer: str) -> KeySet:
        bank = self._network.customer(buyer).bank
        if bank not in self._key_sets:
            reply = await cash_pb2_grpc.CashServiceStub(self._channels[buyer]).GetDenominations(
                cash_pb2.GetDenominationsRequest()
            )
            code = self._network.node(bank).bank_code or ""
            self._key_sets[bank] = check_key_set(reply, code, ChequeKeys(self._network))
        return self._key_sets[bank]

    async def withdraw(self, n: int, concurrency: int) -> float:
        """n one-coin withdrawals, the wallet's steps included (customer.coins); their rate
        per second. The coins are kept, each signed over an order of its own."""
        for buyer in self._buyers:
            await self._key_set(buyer)  # keys made before the clock starts

        async def one(i: int, worker: int) -> None:
            buyer = self._buyers[worker]
            config = self._network.customer(buyer)
            key_set = await self._key_set(buyer)
            coin = next(k for k in key_set.keys if k.value_minor == COIN_MINOR)
            pending = blind_withdrawal([coin], key_set.bank_code, config.account_id)
            try:
                reply = await cash_pb2_grpc.CashServiceStub(self._channels[buyer]).Withdraw(
                    pending.request()
                )
            except grpc.aio.AioRpcError:  # counted, the run goes on
                self.failed += 1
                return
            order_id = f"cash-bench-{i}"
            order = order_pb2.Order(
                order_id=order_id,
                merchant_name=self._merchant,
                order_digest=hashlib.sha256(order_id.encode()).digest(),
            )
            self.coins.append(
                (order_id, sign_coins(finish_withdrawal(pending, reply, key_set), order)[0])
            )

        started = time.perf_counter()
        await _bounded(n, concurrency, one)
        return n / (time.perf_counter() - started)

    async def deposit(self, concurrency: int) -> float:
        """Deposit every withdrawn coin, one per order; the rate per second."""
        coins = list(self.coins)
        stub = cash_pb2_grpc.CashServiceStub(self._shop)

        async def one(i: int, _worker: int) -> None:
            order_id, coin = coins[i]
            contract = cash_pb2.CoinContract(
                order_id=order_id,
                order_digest=hashlib.sha256(order_id.encode()).digest(),
                merchant_name=self._merchant,
            )
            try:
                answer = await stub.DepositCoins(
                    cash_pb2.DepositCoinsRequest(
                        request_id=str(uuid.uuid4()),
                        contract=contract,
                        coins=[coin],
                        amount=common_pb2.Money(
                            amount_minor=COIN_MINOR, currency_code=self._network.currency
                        ),
                    )
                )
            except Exception:
                self.failed += 1
                return
            if answer.state != cash_pb2.COIN_DEPOSIT_STATE_ACCEPTED:
                self.failed += 1

        started = time.perf_counter()
        await _bounded(len(coins), concurrency, one)
        return len(coins) / (time.perf_counter() - started)


async def run(*, count: int, concurrency: int) -> dict[str, float | int]:
    """The three rates on one network; the summary."""
    buyers = [f"bench{i:03d}" for i in range(concurrency)]
    with tempfile.TemporaryDirectory(prefix="paynet-cashbench-") as tmp:
        workdir = Path(tmp)
        path = write_bench_network(workdir, buyers)
        network = load_network(path)
        init_pki(network, network.pki_dir)
        net = LocalNetwork(network, path, log_dir=workdir / "logs")
        await net.start()
        payments = PaymentLoad(network, buyers)
        coins = CashLoad(network, buyers)
        try:
            await payments.run(len(buyers), len(buyers))  # every channel open before timing
            started = time.perf_counter()
            _, acknowledged, failed = await payments.run(count, concurrency)
            payments_per_s = len(acknowledged) / (time.perf_counter() - started)
            withdrawals_per_s = await coins.withdraw(count, concurrency)
            deposits_per_s = await coins.deposit(concurrency)
        finally:
            await payments.close()
            await coins.close()
            await net.stop()
    return {
        "concurrency": concurrency,
        "count": count,
        "payments_per_s": round(payments_per_s, 1),
        "withdrawals_per_s": round(withdrawals_per_s, 1),
        "coin_deposits_per_s": round(deposits_per_s, 1),
        "withdrawals_per_payment": round(withdrawals_per_s / payments_per_s, 3),
        "coin_deposits_per_payment": round(deposits_per_s / payments_per_s, 3),
        "failed": failed + coins.failed,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.cashbench``: exit 1 if any call failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="payments, withdrawals, deposits")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    args = parser.parse_args(argv)
    configure_logging(level=logging.WARNING)
    summary = asyncio.run(run(count=args.count, concurrency=args.concurrency))
    print(
        f"cash at concurrency {summary['concurrency']}: {summary['payments_per_s']} account"
        f" payments/s, {summary['withdrawals_per_s']} one-coin withdrawals/s,"
        f" {summary['coin_deposits_per_s']} one-coin deposits/s"
    )
    print(json.dumps({"cash": summary}))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
