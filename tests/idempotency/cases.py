"""The table: one case per mutating RPC (every RPC whose request, or each entry of it, has
a request_id).

A case names who calls (a certificate whose role payment.authz allows) and which
node serves the RPC, and prepares, in the running network, a valid request
together with what to observe and what its one effect must be:

========================================  ==========  ==========  ===============================
RPC                                       caller      node        effect observed (rules)
========================================  ==========  ==========  ===============================
OrderService.CreateOrder                  alice       shop        one CREATED order update (1-4)
OrderService.SubmitPayment                alice       shop        alice debited, shop credited,
                                                                  order delivered (1-4)
OrderService.CompletePayment              alice       shop        challenged order captured (1-4)
OrderService.CancelOrder                  alice       shop        hold released, CANCELED (1-4)
BackOfficeService.RefundOrder             shop        shop        money back, refunded_total (1-4)
GatewayService.AuthorizePayment           shop        gateway     one hold on alice (1-4)
GatewayService.CapturePayment             shop        gateway     hold posted, money moved (1-4)
GatewayService.VoidPayment                shop        gateway     hold VOIDED, released (1-4)
GatewayService.RefundPayment              shop        gateway     money back, refunded (1-4)
IssuerService.AuthorizeHold               gateway     alfa        one hold on alice (1-4)
IssuerService.CaptureHold                 gateway     alfa        hold posted, money moved (1-4)
IssuerService.VoidHold                    gateway     alfa        hold VOIDED, released (1-4)
IssuerService.RefundCapture               gateway     alfa        deprecated: every call (first,
                                                                  replay, variant, concurrent,
                                                                  id-less) is FAILED_PRECONDITION
                                                                  REFUND_VIA_ACQUIRER, no write
AcquirerService.ReturnPayment             gateway     beta        money back, hold refunded (1-4)
ChallengeService.AnswerChallenge          alice       alfa        hold AUTHORIZED (1-4)
SettlementService.SubmitCreditTransfer    alfa        settlement  shop credited, window +1 (1-4)
SettlementService.SubmitPaymentReturn     beta        settlement  alice credited, window +1 (1-4)
SettlementService.CloseSettlementWindow   settlement  settlement  one window settled, reserves
                                                                  moved (1, 3, 4; 2 is moot:
                                                                  no field but request_id)
ClearingService.ReceiveCreditTransfer     settlement  beta        shop credited once (1-4)
ClearingService.ReceivePaymentReturn      settlement  alfa        alice credited once (1-4)
IssuerService.AuthorizeHolds              gateway     alfa        an entry: as AuthorizeHold
SettlementService.SubmitCreditTransfers   alfa        settlement  an entry: as SubmitCredit-
                                                                  Transfer
ClearingService.ReceiveCreditTransfers    settlement  beta        an entry: as ReceiveCredit-
                                                                  Transfer
(the electronic cheque's RPCs)                                    see :mod:`.cheque_cases`
(electronic cash's RPCs)                                          see :mod:`.cash_cases`
========================================  ==========  ==========  ===============================

A batch RPC (its request a list of entries, each with its own request_id) is a
mutating RPC too: each case sends one entry alone, and the entry's result is judged as
a single RPC's answer (an entry and the single RPC with the same request_id are one
request).

Rule 1 replays after the first call; where another request can change the state
the answer reports (a second refund, a window closing) it replays after that
request too (``intervene``). Rule 2 sends ``variants``, each a valid request
with the same request_id and other content that would have an effect of its
own. Rule 3 sends 8 identical calls at once on 8 connections. Rule 4 sends the
request with no request_id.

The interbank cases send messages no bank booked (a transfer alfa never debited
alice for, a return beta never debited the shop for): each node's own view stays
consistent, but a network audit after this module would rightly fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import grpc
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import order_pb2
from interbank.v1 import settlement_pb2 as pb

from .case import Case, Prepared, Snapshot, delta
from .cash_cases import CASH_CASES
from .cheque_cases import CHEQUE_CASES
from .harness import (
    ALFA,
    ALICE,
    BETA,
    GATEWAY,
    SETTLEMENT,
    SHOP,
    Net,
    Refusal,
    money,
    new_request_id,
)

# -- storefront (customer -> merchant) ----------------------------------------------------------


async def create_order(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """CreateOrder of one book; the variant orders a lamp instead."""
    request = order_pb2.CreateOrderRequest(
        request_id=request_id, lines=[order_pb2.CreateOrderLine(sku="book-001", quantity=1)]
    )
    variant = order_pb2.CreateOrderRequest(
        request_id=request_id, lines=[order_pb2.CreateOrderLine(sku="lamp-002", quantity=1)]
    )

    async def observe() -> Snapshot:
        return {"created": await net.orders_created()}

    async def effect(
        before: Snapshot, after: Snapshot, reply: order_pb2.CreateOrderResponse
    ) -> None:
        assert after["created"] - before["created"] == {reply.order.order_id}
        assert reply.order.status == order_pb2.ORDER_STATUS_CREATED
        assert reply.order.total.amount_minor == 4500

    return Prepared(request, observe, effect, [variant] if with_variants else [])


async def submit_payment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """SubmitPayment of a frictionless 45.00 EUR order; the variant pays another order."""
    placed = await net.place_order([("book-001", 1)])
    request = order_pb2.SubmitPaymentRequest(
        request_id=request_id, order_id=placed.order.order_id, payment=net.seal(placed)
    )
    order_ids = [placed.order.order_id]
    variants = []
    if with_variants:
        other = await net.place_order([("lamp-002", 1)])
        order_ids.append(other.order.order_id)
        variants.append(
            order_pb2.SubmitPaymentRequest(
                request_id=request_id, order_id=other.order.order_id, payment=net.seal(other)
            )
        )

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "shop": await net.balance(SHOP),
            "orders": [await net.order(o) for o in order_ids],
            "lines": await net.statement(ALICE, order_ids),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: order_pb2.SubmitPaymentResponse
    ) -> None:
        assert reply.order.order_id == order_ids[0]
        assert delta(before, after, "alice") == (-4500, -4500, 0)
        assert delta(before, after, "shop") == (4500, 4500, 0)
        assert after["orders"][0] == ("ORDER_STATUS_DELIVERY_CONFIRMED", 0)
        assert len(after["lines"]) == len(before["lines"]) + 1

    return Prepared(request, observe, effect, variants)


async def complete_payment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """CompletePayment of a challenged 720.00 EUR order whose challenge alice answered."""
    order = await net.answered_order()
    request = order_pb2.CompletePaymentRequest(request_id=request_id, order_id=order.order_id)
    order_ids = [order.order_id]
    variants = []
    if with_variants:
        other = await net.answered_order()
        order_ids.append(other.order_id)
        variants.append(
            order_pb2.CompletePaymentRequest(request_id=request_id, order_id=other.order_id)
        )

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "shop": await net.balance(SHOP),
            "orders": [await net.order(o) for o in order_ids],
            "lines": await net.statement(ALICE, order_ids),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: order_pb2.CompletePaymentResponse
    ) -> None:
        assert reply.order.order_id == order_ids[0]
        assert delta(before, after, "alice") == (-72000, 0, -72000)
        assert delta(before, after, "shop") == (72000, 72000, 0)
        assert after["orders"][0] == ("ORDER_STATUS_DELIVERY_CONFIRMED", 0)
        assert len(after["lines"]) == len(before["lines"]) + 1

    return Prepared(request, observe, effect, variants)


async def cancel_order(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """CancelOrder of a challenged order (its hold is voided); the variant cancels another."""
    order = await net.challenged_order()
    request = order_pb2.CancelOrderRequest(request_id=request_id, order_id=order.order_id)
    order_ids = [order.order_id]
    variants = []
    if with_variants:
        other = await net.place_order([("lamp-002", 1)])
        order_ids.append(other.order.order_id)
        variants.append(
            order_pb2.CancelOrderRequest(request_id=request_id, order_id=other.order.order_id)
        )

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "orders": [await net.order(o) for o in order_ids],
            "lines": await net.statement(ALICE, order_ids),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: order_pb2.CancelOrderResponse
    ) -> None:
        assert reply.order.status == order_pb2.ORDER_STATUS_CANCELED
        assert delta(before, after, "alice") == (0, 72000, -72000)
        assert after["orders"][0] == ("ORDER_STATUS_CANCELED", 0)
        assert after["lines"] == before["lines"] == []

    return Prepared(request, observe, effect, variants)


async def refund_order(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """RefundOrder of 10.00 EUR of a delivered 90.00 EUR order; the variant asks 20.00 EUR."""
    order = await net.delivered_order([("book-001", 2)])

    def refund(rid: str, amount_minor: int) -> order_pb2.RefundOrderRequest:
        return order_pb2.RefundOrderRequest(
            request_id=rid, order_id=order.order_id, amount=money(amount_minor)
        )

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "shop": await net.balance(SHOP),
            "order": await net.order(order.order_id),
            "lines": await net.statement(ALICE, [order.order_id]),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: order_pb2.RefundOrderResponse
    ) -> None:
        assert delta(before, after, "alice") == (1000, 1000, 0)
        assert delta(before, after, "shop") == (-1000, -1000, 0)
        assert after["order"] == ("ORDER_STATUS_PARTIALLY_REFUNDED", 1000)
        assert reply.order.refunded_total.amount_minor == 1000
        assert len(after["lines"]) == len(before["lines"]) + 1

    async def intervene() -> None:
        await net.ok(
            SHOP, SHOP, "/interbank.v1.BackOfficeService/RefundOrder", refund(new_request_id(), 500)
        )

    variants = [refund(request_id, 2000)] if with_variants else []
    return Prepared(refund(request_id, 1000), observe, effect, variants, intervene)


# -- gateway (merchant -> gateway) ----------------------------------------------------------------


async def authorize_payment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """AuthorizePayment of a new 45.00 EUR order; the variant authorizes another order."""
    request = await net.gateway_authorize_request([("book-001", 1)], request_id)
    variants = []
    if with_variants:
        variants.append(await net.gateway_authorize_request([("lamp-002", 1)], request_id))

    async def observe() -> Snapshot:
        return {"alice": await net.balance(ALICE)}

    async def effect(
        before: Snapshot, after: Snapshot, reply: authz.AuthorizePaymentResponse
    ) -> None:
        assert reply.decision == authz.AUTHORIZATION_DECISION_APPROVED
        assert delta(before, after, "alice") == (0, -4500, 4500)
        hold = await net.hold(transaction_id=reply.transaction_id)
        assert hold is not None and hold[0] == "HOLD_STATUS_AUTHORIZED"
        assert (await net.gateway_record(reply.transaction_id))[0] == "HOLD_STATUS_AUTHORIZED"

    return Prepared(request, observe, effect, variants)


def _gateway_observer(
    net: Net, transaction_ids: Sequence[str]
) -> Callable[[], Awaitable[Snapshot]]:
    """Balances of alice and the shop, and the transactions' holds and gateway records."""

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "shop": await net.balance(SHOP),
            "holds": [await net.hold(transaction_id=t) for t in transaction_ids],
            "records": [await net.gateway_record(t) for t in transaction_ids],
        }

    return observe


async def capture_payment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """CapturePayment of an authorized 45.00 EUR transaction; the variant captures another."""
    transaction_ids = [await net.gateway_authorized([("book-001", 1)])]
    if with_variants:
        transaction_ids.append(await net.gateway_authorized([("lamp-002", 1)]))
    request, *variants = (
        authz.CapturePaymentRequest(request_id=request_id, transaction_id=t)
        for t in transaction_ids
    )

    async def effect(
        before: Snapshot, after: Snapshot, reply: authz.CapturePaymentResponse
    ) -> None:
        assert reply.hold_status == authz.HOLD_STATUS_CAPTURED
        assert delta(before, after, "alice") == (-4500, 0, -4500)
        assert delta(before, after, "shop") == (4500, 4500, 0)
        assert after["holds"][0] == ("HOLD_STATUS_CAPTURED", "SETTLEMENT_STATE_SETTLED", 0)
        assert after["records"][0] == ("HOLD_STATUS_CAPTURED", 0, reply.instruction_id)

    return Prepared(request, _gateway_observer(net, transaction_ids), effect, variants)


async def void_payment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """VoidPayment of an authorized 45.00 EUR transaction; the variant voids another."""
    transaction_ids = [await net.gateway_authorized([("book-001", 1)])]
    if with_variants:
        transaction_ids.append(await net.gateway_authorized([("lamp-002", 1)]))
    request, *variants = (
        authz.VoidPaymentRequest(request_id=request_id, transaction_id=t) for t in transaction_ids
    )

    async def effect(before: Snapshot, after: Snapshot, reply: authz.VoidPaymentResponse) -> None:
        assert reply.hold_status == authz.HOLD_STATUS_VOIDED
        assert delta(before, after, "alice") == (0, 4500, -4500)
        assert after["holds"][0] == ("HOLD_STATUS_VOIDED", "SETTLEMENT_STATE_UNSPECIFIED", 0)
        assert after["records"][0][0] == "HOLD_STATUS_VOIDED"

    return Prepared(request, _gateway_observer(net, transaction_ids), effect, variants)


async def refund_payment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """RefundPayment of 10.00 EUR of a captured 90.00 EUR transaction; the variant asks 20.00."""
    transaction_id = await net.gateway_captured([("book-001", 2)])

    def refund(rid: str, amount_minor: int) -> authz.RefundPaymentRequest:
        return authz.RefundPaymentRequest(
            request_id=rid, transaction_id=transaction_id, amount=money(amount_minor)
        )

    async def effect(before: Snapshot, after: Snapshot, reply: authz.RefundPaymentResponse) -> None:
        assert delta(before, after, "alice") == (1000, 1000, 0)
        assert delta(before, after, "shop") == (-1000, -1000, 0)
        assert after["holds"][0][2] - before["holds"][0][2] == 1000
        assert after["records"][0][1] - before["records"][0][1] == 1000
        assert reply.refunded_total.amount_minor == after["records"][0][1]

    async def intervene() -> None:
        await net.ok(
            SHOP,
            GATEWAY,
            "/interbank.v1.GatewayService/RefundPayment",
            refund(new_request_id(), 500),
        )

    variants = [refund(request_id, 2000)] if with_variants else []
    observe = _gateway_observer(net, [transaction_id])
    return Prepared(refund(request_id, 1000), observe, effect, variants, intervene)


# -- issuer and acquirer (gateway -> bank) ------------------------------------------------------


def _hold_observer(net: Net, hold_ids: Sequence[str]) -> Callable[[], Awaitable[Snapshot]]:
    """Balances of alice and the shop, and the holds at alfa."""

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "shop": await net.balance(SHOP),
            "holds": [await net.hold(hold_id=h) for h in hold_ids],
        }

    return observe


async def authorize_hold(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """AuthorizeHold of 45.00 EUR signed by alice; the variant is another payment (32.50 EUR)."""
    request = net.hold_request(4500, request_id)
    variants = [net.hold_request(3250, request_id)] if with_variants else []
    transaction_ids = [r.transaction_id for r in (request, *variants)]

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "holds": [await net.hold(transaction_id=t) for t in transaction_ids],
        }

    async def effect(before: Snapshot, after: Snapshot, reply: authz.AuthorizeHoldResponse) -> None:
        assert reply.decision == authz.AUTHORIZATION_DECISION_APPROVED
        assert delta(before, after, "alice") == (0, -4500, 4500)
        assert before["holds"][0] is None
        assert after["holds"][0] == ("HOLD_STATUS_AUTHORIZED", "SETTLEMENT_STATE_UNSPECIFIED", 0)
        assert await net.hold(hold_id=reply.hold_id) == after["holds"][0]

    return Prepared(request, observe, effect, variants)


async def capture_hold(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """CaptureHold of an authorized 45.00 EUR hold; the variant captures another hold."""
    holds = [await net.placed_hold(4500)]
    if with_variants:
        holds.append(await net.placed_hold(3250))
    request, *variants = (
        authz.CaptureHoldRequest(request_id=request_id, hold_id=h.hold_id) for h in holds
    )

    async def effect(before: Snapshot, after: Snapshot, reply: authz.CaptureHoldResponse) -> None:
        assert reply.hold_status == authz.HOLD_STATUS_CAPTURED
        assert reply.settlement_state == authz.SETTLEMENT_STATE_SETTLED
        assert delta(before, after, "alice") == (-4500, 0, -4500)
        assert delta(before, after, "shop") == (4500, 4500, 0)
        assert after["holds"][0] == ("HOLD_STATUS_CAPTURED", "SETTLEMENT_STATE_SETTLED", 0)

    observe = _hold_observer(net, [h.hold_id for h in holds])
    return Prepared(request, observe, effect, variants)


async def void_hold(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """VoidHold of an authorized 45.00 EUR hold; the variant voids another hold."""
    holds = [await net.placed_hold(4500)]
    if with_variants:
        holds.append(await net.placed_hold(3250))
    request, *variants = (
        authz.VoidHoldRequest(request_id=request_id, hold_id=h.hold_id) for h in holds
    )

    async def effect(before: Snapshot, after: Snapshot, reply: authz.VoidHoldResponse) -> None:
        assert reply.hold_status == authz.HOLD_STATUS_VOIDED
        assert delta(before, after, "alice") == (0, 4500, -4500)
        assert after["holds"][0] == ("HOLD_STATUS_VOIDED", "SETTLEMENT_STATE_UNSPECIFIED", 0)

    observe = _hold_observer(net, [h.hold_id for h in holds])
    return Prepared(request, observe, effect, variants)


async def refund_capture(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """Deprecated RefundCapture of a captured hold: only its refusal and the absence of writes."""
    capture = await net.captured_hold(4500)

    def refund(amount_minor: int) -> authz.RefundCaptureRequest:
        return authz.RefundCaptureRequest(
            request_id=request_id, hold_id=capture.hold.hold_id, amount=money(amount_minor)
        )

    async def effect(before: Snapshot, after: Snapshot, reply: object) -> None:
        raise AssertionError(f"a deprecated RPC answered {reply!r}")

    variants = [refund(2000)] if with_variants else []
    observe = _hold_observer(net, [capture.hold.hold_id])
    return Prepared(refund(1000), observe, effect, variants)


async def return_payment(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """ReturnPayment of 10.00 EUR of a settled 90.00 EUR transfer; the variant asks 20.00 EUR."""
    capture = await net.captured_hold(9000)

    def give_back(rid: str, amount_minor: int) -> authz.ReturnPaymentRequest:
        return authz.ReturnPaymentRequest(
            request_id=rid,
            original_instruction_id=capture.instruction_id,
            original_debtor_agent=net.code(ALFA),
            amount=money(amount_minor),
            merchant_name=SHOP,
        )

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "shop": await net.balance(SHOP),
            "hold": await net.hold(hold_id=capture.hold.hold_id),
            "lines": await net.statement(ALICE, [capture.hold.order_id]),
        }

    async def effect(before: Snapshot, after: Snapshot, reply: authz.ReturnPaymentResponse) -> None:
        assert delta(before, after, "alice") == (1000, 1000, 0)
        assert delta(before, after, "shop") == (-1000, -1000, 0)
        assert after["hold"][2] - before["hold"][2] == 1000
        assert reply.returned_total.amount_minor == after["hold"][2]
        assert len(after["lines"]) == len(before["lines"]) + 1

    async def intervene() -> None:
        await net.ok(
            GATEWAY,
            BETA,
            "/interbank.v1.AcquirerService/ReturnPayment",
            give_back(new_request_id(), 500),
        )

    variants = [give_back(request_id, 2000)] if with_variants else []
    return Prepared(give_back(request_id, 1000), observe, effect, variants, intervene)


async def answer_challenge(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """AnswerChallenge of a 600.00 EUR hold with the inbox code; the variant answers another."""
    holds = [await net.placed_hold(60000)]
    if with_variants:
        holds.append(await net.placed_hold(60000))
    requests = [
        authz.AnswerChallengeRequest(
            request_id=request_id,
            challenge_id=h.challenge_id,
            code=await net.one_time_code(h.challenge_id),
        )
        for h in holds
    ]

    async def effect(
        before: Snapshot, after: Snapshot, reply: authz.AnswerChallengeResponse
    ) -> None:
        assert reply.hold_status == authz.HOLD_STATUS_AUTHORIZED
        assert before["holds"][0][0] == "HOLD_STATUS_CHALLENGE_PENDING"
        assert after["holds"][0][0] == "HOLD_STATUS_AUTHORIZED"
        assert after["alice"] == before["alice"]

    observe = _hold_observer(net, [h.hold_id for h in holds])
    return Prepared(requests[0], observe, effect, requests[1:])


# -- settlement bank (member bank -> settlement) ------------------------------------------------


async def submit_credit_transfer(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """SubmitCreditTransfer alfa -> beta of 7.00 EUR to the shop.

    Variants: the same transfer for 8.00 EUR, and another transfer.
    """
    transfer = net.credit_transfer(700)
    variants = []
    if with_variants:
        dearer = pb.CreditTransfer()
        dearer.CopyFrom(transfer)
        dearer.amount.amount_minor = 800
        variants = [
            pb.SubmitCreditTransferRequest(request_id=request_id, transfer=t)
            for t in (dearer, net.credit_transfer(700))
        ]
    ids = [transfer.instruction_id, *(v.transfer.instruction_id for v in variants[1:])]

    async def observe() -> Snapshot:
        window = await net.window()
        return {
            "shop": await net.balance(SHOP),
            "statuses": [await net.transfer_status(ALFA, i) for i in ids],
            "window": (window.window_id, window.transfer_count),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.SubmitCreditTransferResponse
    ) -> None:
        assert reply.status == pb.TRANSFER_STATUS_ACCEPTED
        assert delta(before, after, "shop") == (700, 700, 0)
        assert after["statuses"][0] == "TRANSFER_STATUS_ACCEPTED"
        assert after["window"] == (before["window"][0], before["window"][1] + 1)
        assert reply.window_id == after["window"][0]

    request = pb.SubmitCreditTransferRequest(request_id=request_id, transfer=transfer)
    return Prepared(request, observe, effect, variants, partial(_close_window, net))


async def submit_payment_return(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """SubmitPaymentReturn beta -> alfa of 3.00 EUR of a settled transfer.

    Variants: the same return for 4.00 EUR, and another return.
    """
    capture = await net.captured_hold(4500)
    payment_return = net.payment_return(capture, 300)
    variants = []
    if with_variants:
        dearer = pb.PaymentReturn()
        dearer.CopyFrom(payment_return)
        dearer.amount.amount_minor = 400
        variants = [
            pb.SubmitPaymentReturnRequest(request_id=request_id, payment_return=r)
            for r in (dearer, net.payment_return(capture, 300))
        ]
    ids = [payment_return.return_id, *(v.payment_return.return_id for v in variants[1:])]

    async def observe() -> Snapshot:
        window = await net.window()
        return {
            "alice": await net.balance(ALICE),
            "statuses": [await net.transfer_status(BETA, i) for i in ids],
            "window": (window.window_id, window.transfer_count),
            "lines": await net.statement(ALICE, [capture.hold.order_id]),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.SubmitPaymentReturnResponse
    ) -> None:
        assert reply.status == pb.TRANSFER_STATUS_ACCEPTED
        assert delta(before, after, "alice") == (300, 300, 0)
        assert after["statuses"][0] == "TRANSFER_STATUS_ACCEPTED"
        assert after["window"] == (before["window"][0], before["window"][1] + 1)
        assert len(after["lines"]) == len(before["lines"]) + 1

    request = pb.SubmitPaymentReturnRequest(request_id=request_id, payment_return=payment_return)
    return Prepared(request, observe, effect, variants, partial(_close_window, net))


async def _close_window(net: Net) -> None:
    """Close the open settlement window (a replay must then not join the next one)."""
    await net.ok(
        SETTLEMENT,
        SETTLEMENT,
        "/interbank.v1.SettlementService/CloseSettlementWindow",
        pb.CloseSettlementWindowRequest(request_id=new_request_id()),
    )


async def _transfer_into_open_window(net: Net) -> None:
    """A new 1.00 EUR transfer alfa -> beta, which joins the open settlement window."""
    await net.ok(
        ALFA,
        SETTLEMENT,
        "/interbank.v1.SettlementService/SubmitCreditTransfer",
        pb.SubmitCreditTransferRequest(
            request_id=new_request_id(), transfer=net.credit_transfer(100)
        ),
    )


async def close_settlement_window(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """CloseSettlementWindow of an open window holding a transfer.

    Before a replay, another transfer opens the next window: the replay must not close it.
    """
    await _transfer_into_open_window(net)
    first = (await net.window()).window_id

    async def observe() -> Snapshot:
        current = await net.window()
        return {
            "first": pb.SettlementWindowStatus.Name((await net.window(first)).status),
            "open": (current.window_id, current.status, current.transfer_count),
            "reserves": await net.reserves(),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.CloseSettlementWindowResponse
    ) -> None:
        assert reply.window.window_id == first
        assert reply.window.status == pb.SETTLEMENT_WINDOW_STATUS_SETTLED
        assert before["first"] == "SETTLEMENT_WINDOW_STATUS_OPEN"
        assert after["first"] == "SETTLEMENT_WINDOW_STATUS_SETTLED"
        assert after["open"][0] != first
        assert after["open"][1:] == (pb.SETTLEMENT_WINDOW_STATUS_OPEN, 0)
        moved = {
            code: after["reserves"][code] - before["reserves"][code] for code in before["reserves"]
        }
        positions = {p.bank_code: p.net_minor for p in reply.window.positions}
        assert moved == {code: positions.get(code, 0) for code in moved}

    async def intervene() -> None:
        await _transfer_into_open_window(net)

    request = pb.CloseSettlementWindowRequest(request_id=request_id)
    return Prepared(request, observe, effect, [], intervene)


# -- clearing (settlement -> member bank) -------------------------------------------------------


async def receive_credit_transfer(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """ReceiveCreditTransfer at beta of 4.00 EUR for the shop.

    Variants: the same transfer for 5.00 EUR, and another transfer.
    """
    transfer = net.credit_transfer(400)
    variants = []
    if with_variants:
        dearer = pb.CreditTransfer()
        dearer.CopyFrom(transfer)
        dearer.amount.amount_minor = 500
        variants = [
            pb.ReceiveCreditTransferRequest(request_id=request_id, transfer=t)
            for t in (dearer, net.credit_transfer(400))
        ]
    order_ids = [transfer.end_to_end_id, *(v.transfer.end_to_end_id for v in variants[1:])]

    async def observe() -> Snapshot:
        return {"shop": await net.balance(SHOP), "lines": await net.statement(SHOP, order_ids)}

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.ReceiveCreditTransferResponse
    ) -> None:
        assert reply.status == pb.TRANSFER_STATUS_ACCEPTED
        assert delta(before, after, "shop") == (400, 400, 0)
        assert len(after["lines"]) == len(before["lines"]) + 1

    request = pb.ReceiveCreditTransferRequest(request_id=request_id, transfer=transfer)
    return Prepared(request, observe, effect, variants)


async def receive_payment_return(net: Net, request_id: str, with_variants: bool) -> Prepared:
    """ReceivePaymentReturn at alfa of 2.00 EUR of a transfer it sent.

    Variants: the same return for 2.50 EUR, and another return.
    """
    capture = await net.captured_hold(4500)
    payment_return = net.payment_return(capture, 200)
    variants = []
    if with_variants:
        dearer = pb.PaymentReturn()
        dearer.CopyFrom(payment_return)
        dearer.amount.amount_minor = 250
        variants = [
            pb.ReceivePaymentReturnRequest(request_id=request_id, payment_return=r)
            for r in (dearer, net.payment_return(capture, 200))
        ]

    async def observe() -> Snapshot:
        return {
            "alice": await net.balance(ALICE),
            "hold": await net.hold(hold_id=capture.hold.hold_id),
            "lines": await net.statement(ALICE, [capture.hold.order_id]),
        }

    async def effect(
        before: Snapshot, after: Snapshot, reply: pb.ReceivePaymentReturnResponse
    ) -> None:
        assert reply.status == pb.TRANSFER_STATUS_ACCEPTED
        assert delta(before, after, "alice") == (200, 200, 0)
        assert after["hold"][2] - before["hold"][2] == 200
        assert len(after["lines"]) == len(before["lines"]) + 1

    request = pb.ReceivePaymentReturnRequest(request_id=request_id, payment_return=payment_return)
    return Prepared(request, observe, effect, variants)


CASES: dict[str, Case] = {
    "/interbank.v1.OrderService/CreateOrder": Case(ALICE, SHOP, create_order),
    "/interbank.v1.OrderService/SubmitPayment": Case(ALICE, SHOP, submit_payment),
    "/interbank.v1.OrderService/CompletePayment": Case(ALICE, SHOP, complete_payment),
    "/interbank.v1.OrderService/CancelOrder": Case(ALICE, SHOP, cancel_order),
    "/interbank.v1.BackOfficeService/RefundOrder": Case(SHOP, SHOP, refund_order),
    "/interbank.v1.GatewayService/AuthorizePayment": Case(SHOP, GATEWAY, authorize_payment),
    "/interbank.v1.GatewayService/CapturePayment": Case(SHOP, GATEWAY, capture_payment),
    "/interbank.v1.GatewayService/VoidPayment": Case(SHOP, GATEWAY, void_payment),
    "/interbank.v1.GatewayService/RefundPayment": Case(SHOP, GATEWAY, refund_payment),
    "/interbank.v1.IssuerService/AuthorizeHold": Case(GATEWAY, ALFA, authorize_hold),
    "/interbank.v1.IssuerService/CaptureHold": Case(GATEWAY, ALFA, capture_hold),
    "/interbank.v1.IssuerService/VoidHold": Case(GATEWAY, ALFA, void_hold),
    "/interbank.v1.IssuerService/RefundCapture": Case(
        GATEWAY,
        ALFA,
        refund_capture,
        refusal=Refusal(grpc.StatusCode.FAILED_PRECONDITION, "REFUND_VIA_ACQUIRER"),
    ),
    "/interbank.v1.AcquirerService/ReturnPayment": Case(GATEWAY, BETA, return_payment),
    "/interbank.v1.ChallengeService/AnswerChallenge": Case(ALICE, ALFA, answer_challenge),
    "/interbank.v1.SettlementService/SubmitCreditTransfer": Case(
        ALFA, SETTLEMENT, submit_credit_transfer
    ),
    "/interbank.v1.SettlementService/SubmitPaymentReturn": Case(
        BETA, SETTLEMENT, submit_payment_return
    ),
    "/interbank.v1.SettlementService/CloseSettlementWindow": Case(
        SETTLEMENT,
        SETTLEMENT,
        close_settlement_window,
        no_variant="CloseSettlementWindowRequest has no field but request_id",
    ),
    "/interbank.v1.ClearingService/ReceiveCreditTransfer": Case(
        SETTLEMENT, BETA, receive_credit_transfer
    ),
    "/interbank.v1.ClearingService/ReceivePaymentReturn": Case(
        SETTLEMENT, ALFA, receive_payment_return
    ),
    # Batch RPCs, one entry at a time: an entry is its single RPC's request.
    "/interbank.v1.IssuerService/AuthorizeHolds": Case(GATEWAY, ALFA, authorize_hold),
    "/interbank.v1.SettlementService/SubmitCreditTransfers": Case(
        ALFA, SETTLEMENT, submit_credit_transfer
    ),
    "/interbank.v1.ClearingService/ReceiveCreditTransfers": Case(
        SETTLEMENT, BETA, receive_credit_transfer
    ),
    **CHEQUE_CASES,
    **CASH_CASES,
}
"""Every mutating RPC of the contracts, by full method name."""
