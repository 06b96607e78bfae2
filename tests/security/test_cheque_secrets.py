"""No secret where it should not be after cheques, and no cheque document in a log line.

Cheques are paid, returned and refused over the dev network, as customers pay the
shop: alice with a cheque on alfa (cleared through the settlement bank), bob with one
on the shop's own bank; alice stops a cheque she then pays with (it comes back
PAYMENT_STOPPED, the order fails), and a cheque altered after signing is refused by
the shop. Then every log and store of every
node is scanned for private keys (among them the banks' cheque-signing keys and the
drawers' and the shop's Ed25519 keys) and instrument numbers; and every log line, and
every refusal's message, for the documents themselves (signed cheques, account
certificates, endorsements) and the cheque accounts' opaque references, in raw, hex or
base64 form. Stores may hold documents (a payee keeps the cheques it was given); logs
and error messages may not.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from interbank.v1 import order_pb2

from customer.client import Customer
from payment import cheque
from payment.errors import PaynetError
from tests.e2e.conftest import RunningNetwork, start_network, stop
from tests.security.secrets_scan import scan

S = order_pb2.OrderStatus


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("cheque-secrets"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


async def _cheques(net: RunningNetwork) -> tuple[list[bytes], list[str]]:
    """The cheque flows of the module docstring: every document and account reference
    they used, and every refusal's message."""
    documents: list[bytes] = []
    refusals: list[str] = []
    async with Customer(net.network, "alice") as alice, Customer(net.network, "bob") as bob:
        for customer in (alice, bob):
            book = await customer.issue_cheque_book(5)
            placed = await customer.create_order("shop", [("book-001", 1)])
            signed = customer.write_cheque(placed.order, book)
            documents += [signed, book.signed_certificate, book.account_reference]
            await customer.pay_by_cheque("shop", placed.order, signed, book.signed_certificate)
            await customer.wait_for_order(
                "shop", placed.order.order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED
            )
        book = await alice.issue_cheque_book(5)
        documents += [book.signed_certificate, book.account_reference]
        # Stopped after it was written: the drawee returns it, the order fails.
        placed = await alice.create_order("shop", [("lamp-002", 1)])
        signed = alice.write_cheque(placed.order, book)
        documents.append(signed)
        await alice.stop_cheque(book, cheque.read_cheque(signed).document.serial)
        await alice.pay_by_cheque("shop", placed.order, signed, book.signed_certificate)
        failed = await alice.wait_for_order("shop", placed.order.order_id, S.ORDER_STATUS_FAILED)
        assert failed.failure_reason == "PAYMENT_STOPPED", failed.failure_reason
        # Altered after signing: the shop refuses it.
        placed = await alice.create_order("shop", [("lamp-002", 1)])
        written = cheque.read_cheque(alice.write_cheque(placed.order, book))
        altered = (
            cheque.encode(replace(written.document, amount_minor=written.document.amount_minor - 1))
            + written.signature
        )
        documents.append(altered)
        try:
            await alice.pay_by_cheque("shop", placed.order, altered, book.signed_certificate)
        except PaynetError as exc:
            refusals.append(str(exc))
        else:
            raise AssertionError("a cheque altered after signing was accepted")
    return documents, refusals


def _forms(data: bytes) -> list[bytes]:
    """How bytes would appear if logged: raw, hex (either case), base64."""
    return [data, data.hex().encode(), data.hex().upper().encode(), base64.b64encode(data)]


def test_no_key_number_or_cheque_document_where_it_does_not_belong(
    net: RunningNetwork, report: Callable[[str], None]
) -> None:
    documents, refusals = asyncio.run(_cheques(net))
    found = scan(net.network, net.workdir / "logs", [])
    assert found.leaks == (), found.leaks
    assert any("cheque-keys" in name for name in _key_names(net)), "no cheque key scanned"
    logs = {p.name: p.read_bytes() for p in sorted((net.workdir / "logs").glob("*.log"))}
    leaked = [
        f"document {n} in {name}"
        for n, document in enumerate(documents)
        for name, data in logs.items()
        if any(form in data for form in _forms(document))
    ]
    leaked += [
        f"document {n} in a refusal"
        for n, document in enumerate(documents)
        for message in refusals
        if any(form.decode("ascii") in message for form in _forms(document)[1:])
    ]
    assert leaked == [], leaked
    assert len(refusals) == 1
    # The search finds a document where it belongs: the shop keeps the cheques it took.
    shop_store = b"".join(
        path.read_bytes() for path in net.network.node("shop").data_dir.rglob("*") if path.is_file()
    )
    assert documents[0] in shop_store
    report(
        f"cheque secrets scan: {found.summary()}; {len(documents)} cheque documents and"
        f" references looked for in {len(logs)} logs and {len(refusals)} refusal: none found"
    )


def _key_names(net: RunningNetwork) -> list[str]:
    return [str(p.relative_to(net.network.pki_dir)) for p in net.network.pki_dir.rglob("*.key")]
