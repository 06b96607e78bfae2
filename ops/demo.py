"""``make run``: a fresh network in a temporary directory, purchases end to end.

Makes a dev PKI, starts every node as its own process, runs a frictionless
purchase and a challenged one (answered from the device inbox), then two
purchases by electronic cheque: one paid across banks, and one whose cheque
the customer stops before handing it over, which the drawee returns
PAYMENT_STOPPED. Then alice pays an order with electronic cash: she withdraws
exactly its total in coins from alfa (blind-signed) and pays with them; the
same coins, re-signed over a second order behind her wallet's back, are
refused COIN_DOUBLE_SPENT. It refunds part of the first purchase, closes the
settlement window (the dev network settles net), audits every bank's books
over mTLS and reconciles every store. It prints each step as it happens,
stops the network cleanly, and prints as its last line one JSON object with
the payments, the cheques, the cash payment, the refund, the window, the
audit, balances before and after, and total money (after: holders plus the
coins still outstanding). Exit 0 only if both account/card orders, the paid
cheque's order and the coin order were delivered, the stopped cheque's order
failed PAYMENT_STOPPED, the spent coins were refused, the refund went
through, the audit and reconciliation pass and money is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from interbank.v1 import order_pb2

from customer.client import Customer
from customer.coins import sign_coins
from customer.shop import (
    ChequePurchaseResult,
    Say,
    all_balances,
    money,
    printer,
    purchase,
    purchase_by_cheque,
    purchase_with_coins,
)
from customer.wallet import default_wallet_path
from ops.audit import audit_network
from ops.devnet import write_dev_network
from ops.launcher import LocalNetwork, NodeDied
from ops.operations import close_window, refund_order, window_json
from ops.reconcile import reconcile
from payment.config import NetworkConfig, SettlementMode, load_network
from payment.errors import PaynetError
from payment.pki import init_pki

__all__ = ["run_demo"]

S = order_pb2.OrderStatus


async def run_demo(*, keep: bool = False) -> int:
    """Run the demo; returns the exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="paynet-run-"))
    # The demo closes the settlement window itself, so its net positions are exactly its own.
    path = write_dev_network(workdir, window_seconds=0)
    network = load_network(path)
    init_pki(network, network.pki_dir)
    say = printer()
    print(f"paynet: dev network in {workdir} (node logs in {workdir / 'logs'})")
    say(
        "0 setup",
        "paynet pki init",
        f"CA, {len(network.nodes)} node and "
        f"{len(network.customers)} customer certificates, CRL, gateway HPKE key",
    )
    net = LocalNetwork(network, path, log_dir=workdir / "logs")
    payments: list[dict[str, Any]] = []
    cheques: list[dict[str, Any]] = []
    coins: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    ok = False
    try:
        await net.start()
        say(
            "0 setup",
            "paynet up",
            ", ".join(f"{n.name}={n.address}" for n in network.nodes) + " all SERVING over mTLS",
        )
        before = await all_balances(network)
        for account, minor in before.items():
            say(
                "9 check balances",
                "holder -> own bank",
                f"before: {account} {money(minor, network.currency)}",
            )
        merchant = network.merchants[0].name
        plan = [
            ("alice", [("book-001", 2), ("lamp-002", 1)], "card"),
            ("bob", [("bike-003", 1)], "account"),
        ]
        for customer_name, lines, instrument in plan:
            print(f"--- {customer_name} buys at {merchant} with {instrument} ---", flush=True)
            async with Customer(network, customer_name) as customer:
                result = await purchase(customer, merchant, lines, instrument=instrument, say=say)
            payments.append(
                {
                    "order_id": result.order.order_id,
                    "status": S.Name(result.order.status).removeprefix("ORDER_STATUS_"),
                    "amount": result.order.total.amount_minor,
                    "currency": result.order.total.currency_code,
                    "challenged": result.challenged,
                }
            )
        cheques = await _cheque_purchases(network, merchant, say)
        coins = await _cash_purchase(network, merchant, say)
        first = payments[0]
        refund = await refund_order(
            network, merchant, first["order_id"], first["amount"] // 2, request_id="demo-refund"
        )
        say(
            "10 refund",
            f"{merchant} -> gateway -> acquirer -> settlement -> issuer",
            f"{money(refund.order.refunded_total.amount_minor, network.currency)} back to "
            f"{refund.order.customer_name}: order {S.Name(refund.order.status)}",
        )
        window: dict[str, Any] = {}
        if network.settlement.mode is SettlementMode.NET:
            window = window_json(await close_window(network))
            say(
                "6 settle net",
                "operator -> settlement bank",
                f"window closed with {window['transfer_count']} transfers; net positions "
                + ", ".join(
                    f"{code} {money(net, network.currency)}"
                    for code, net in window["positions"].items()
                )
                + "; reserves moved by the net amounts only",
            )
        report = await audit_network(network)
        say(
            "11 audit",
            "settlement bank -> every bank",
            ", ".join(f"{c.name} {'ok' if c.ok else 'FAILED'}" for c in report.checks),
        )
        # Reading every store is blocking file I/O: keep it off the event loop.
        reconciled = await asyncio.to_thread(reconcile, network)
        say(
            "12 reconcile",
            "operator -> every store",
            f"{reconciled.transactions} transactions, {len(reconciled.mismatches)} mismatches",
        )
        coins["outstanding"] = report.to_json()["checks"]["cash_outstanding"]["outstanding"]
        after = await all_balances(network)
        for account, minor in after.items():
            say(
                "9 check balances",
                "holder -> own bank",
                f"after: {account} {money(minor, network.currency)}",
            )
        summary = {
            "payments": payments,
            "cheques": cheques,
            "cash": coins,
            "refund": {
                "refund_id": refund.refund_id,
                "order_id": refund.order.order_id,
                "refunded": refund.order.refunded_total.amount_minor,
                "status": S.Name(refund.order.status).removeprefix("ORDER_STATUS_"),
            },
            "settlement_window": window,
            "audit": report.to_json(),
            "reconcile": reconciled.to_json(),
            "balances_before": before,
            "balances_after": after,
            "total_money_before": sum(before.values()),
            "total_money_after": sum(after.values()) + coins["outstanding"],
        }
        ok = (
            len(payments) == 2
            and all(p["status"] == "DELIVERY_CONFIRMED" for p in payments)
            and refund.order.status == S.ORDER_STATUS_PARTIALLY_REFUNDED
            and report.ok
            and reconciled.ok
            and any(p["challenged"] for p in payments)
            and [(c["status"], c["failure_reason"]) for c in cheques]
            == [("DELIVERY_CONFIRMED", ""), ("FAILED", "PAYMENT_STOPPED")]
            and coins["status"] == "DELIVERY_CONFIRMED"
            and coins["double_spend"] == "COIN_DOUBLE_SPENT"
            and summary["total_money_before"] == summary["total_money_after"]
        )
    except (PaynetError, NodeDied, TimeoutError, ValueError) as exc:
        print(f"paynet run: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        summary = summary or {
            "payments": payments,
            "cheques": cheques,
            "cash": coins,
            "error": str(exc),
        }
    finally:
        codes = await net.stop()
        say(
            "0 teardown",
            "paynet",
            "network stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()),
        )
        if not keep and ok:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, sort_keys=False), flush=True)
    return 0 if ok else 1


async def _cheque_purchases(
    network: NetworkConfig, merchant: str, say: Say
) -> list[dict[str, Any]]:
    """alice pays a lamp by cheque (drawn on alfa, deposited at the shop's bank beta),
    then writes a cheque for a book and stops it before handing it over."""
    print(f"--- alice buys at {merchant} with a cheque ---", flush=True)
    async with Customer(network, "alice") as alice:
        paid = await purchase_by_cheque(
            alice, merchant, [("lamp-002", 1)], memo="desk lamp", say=say
        )
        print(f"--- alice stops a cheque to {merchant} before it is paid ---", flush=True)
        stopped = await purchase_by_cheque(
            alice, merchant, [("book-001", 1)], book=paid.book, stop_payment=True, say=say
        )
    return [_cheque_json(paid), _cheque_json(stopped)]


async def _cash_purchase(network: NetworkConfig, merchant: str, say: Say) -> dict[str, Any]:
    """alice pays a book with coins withdrawn for it from alfa (deposited by the shop at
    beta, taken by alfa through the settlement bank); then the same coins, re-signed
    over a second order as a cheating wallet would, are refused COIN_DOUBLE_SPENT."""
    print(f"--- alice buys at {merchant} with electronic cash ---", flush=True)
    async with Customer(network, "alice", wallet=default_wallet_path(network, "alice")) as alice:
        paid = await purchase_with_coins(alice, merchant, [("book-001", 1)], say=say)
        print(
            f"--- alice shows the same coins to {merchant} again, for another order ---", flush=True
        )
        second = (await alice.create_order(merchant, [("book-001", 1)])).order
        # Past the wallet's spent flag: copies of the spent coins signing the new contract.
        copies = sign_coins(paid.coins, second)
        double_spend = "ACCEPTED"
        try:
            await alice.submit_coins(merchant, second.order_id, copies)
        except PaynetError as exc:
            double_spend = exc.reason
            say(
                "x double spend",
                f"{merchant} -> acquirer -> issuer",
                f"order {second.order_id[:8]}: refused {exc.code.name} {exc.reason}; the "
                "issuer answered with the coin's first spending as proof; nothing moved",
            )
        unspent = sum(c.value_minor for c in alice.wallet.unspent())
    return {
        "withdrawn": paid.withdrawn_minor,
        "coins": len(paid.coins),
        "order_id": paid.order.order_id,
        "status": S.Name(paid.order.status).removeprefix("ORDER_STATUS_"),
        "amount": paid.order.total.amount_minor,
        "double_spend": double_spend,
        "double_spend_order_id": second.order_id,
        "outstanding": None,
        "wallet_unspent": unspent,
    }


def _cheque_json(result: ChequePurchaseResult) -> dict[str, Any]:
    order = result.order
    return {
        "order_id": order.order_id,
        "status": S.Name(order.status).removeprefix("ORDER_STATUS_"),
        "amount": order.total.amount_minor,
        "currency": order.total.currency_code,
        "drawee": result.book.bank_code,
        "serial": result.serial,
        "stopped": result.stopped,
        "failure_reason": order.failure_reason,
    }
