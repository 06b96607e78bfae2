"""Each language's buyer completes a frictionless and a challenged purchase
against a fresh ``paynet up`` over mTLS (the Go buyer also one paid by
electronic cheque); Python then checks what it claims."""

from __future__ import annotations

import asyncio
import json
import os
import re

import grpc
from interbank.v1 import account_pb2, notification_pb2, notification_pb2_grpc, order_pb2

from customer.client import Customer
from ops.clientnet import BUYERS, OPENING_BALANCE_MINOR, ClientNetwork
from tests.clients.conftest import Language, run

S = order_pb2.OrderStatus
SUMMARY = re.compile(
    r"paynet (?P<language>\w+) buyer: frictionless (?P<frictionless>[0-9a-f-]{36}) "
    r"DELIVERY_CONFIRMED 4500; challenged (?P<challenged>[0-9a-f-]{36}) "
    r"DELIVERY_CONFIRMED 72000; "
    r"(?:cheque (?P<cheque>[0-9a-f-]{36}) DELIVERY_CONFIRMED (?P<cheque_amount>\d+); )?"
    r"booked (?P<before>\d+) -> (?P<after>\d+)"
)
CHEQUE_BUYERS = {"go"}
"""The languages whose buyer also pays one order (a lamp, 32.50 EUR) by cheque."""
LAMP = 3250


def test_the_buyer_completes_both_purchases_and_the_network_agrees(
    client: Language, client_network: ClientNetwork, report
) -> None:
    profile = client_network.profiles[client.name]
    output = run(
        client.test,
        client.directory,
        timeout=900,
        env=dict(os.environ, PAYNET_PROFILE=str(profile)),
    )
    summary = SUMMARY.search(output)
    assert summary is not None, f"no buyer summary line in the output:\n{output[-4000:]}"
    assert summary["language"] == client.name
    report(summary.group(0))

    secrets = json.loads(profile.read_text())["instruments"]
    for instrument in secrets.values():
        assert instrument["number"] not in output, "an instrument number reached the output"

    customer = BUYERS[client.name]
    expected = {summary["frictionless"]: 4500, summary["challenged"]: 72000}
    if client.name in CHEQUE_BUYERS:
        assert summary["cheque"] is not None, f"no cheque purchase in {summary.group(0)!r}"
        assert int(summary["cheque_amount"]) == LAMP
        expected[summary["cheque"]] = LAMP
    else:
        assert summary["cheque"] is None
    orders, balance, statement, codes = asyncio.run(
        _as_customer(client_network, customer, *expected)
    )
    for order, total in zip(orders, expected.values(), strict=True):
        assert order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
        assert order.customer_name == customer
        assert order.total.amount_minor == total
    # The device inbox got exactly one one-time code: for the bike, not for the book
    # (nor for the cheque, which the issuer never authorizes).
    assert [(c.merchant_name, c.amount.amount_minor) for c in codes] == [("shop", 72000)]

    assert int(summary["before"]) == OPENING_BALANCE_MINOR
    spent = sum(expected.values())
    assert int(summary["after"]) == balance.booked.amount_minor == OPENING_BALANCE_MINOR - spent
    assert balance.held.amount_minor == 0
    debits = {
        entry.order_id: entry.amount.amount_minor
        for entry in statement.entries
        if entry.direction == notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT
    }
    assert debits == expected


async def _as_customer(
    running: ClientNetwork, customer: str, *order_ids: str
) -> tuple[
    list[order_pb2.Order],
    account_pb2.GetBalanceResponse,
    account_pb2.ListStatementResponse,
    list[notification_pb2.OneTimeCode],
]:
    async with Customer(running.network, customer) as client:
        merchant = running.network.merchants[0].name
        orders = [await client.get_order(merchant, order_id) for order_id in order_ids]
        inbox = notification_pb2_grpc.NotificationServiceStub(client.channel(client.config.bank))
        stream = inbox.Subscribe(notification_pb2.SubscribeRequest(after_sequence=0))
        codes = []
        try:
            while True:  # every event so far; the stream then waits for new ones
                event = await asyncio.wait_for(stream.read(), 2.0)
                if event is grpc.aio.EOF:
                    break
                if event.WhichOneof("event") == "one_time_code":
                    codes.append(event.one_time_code)
        except TimeoutError:
            pass
        finally:
            stream.cancel()
        return orders, await client.balance(), await client.statement(), codes
