"""The authorization matrix, generated from the role -> RPC table: every RPC of
every service each node serves, called over mTLS with a certificate of every
role, is either let through or refused PERMISSION_DENIED / ROLE_NOT_ALLOWED;
a bank serves account data only to the account's holder; its cheque desk
acts only on the caller's own: a customer's cheque account, a merchant's deposits
where it holds its account, a bank's own presentments; and so does its mint: a
customer withdraws from its own account, a merchant deposits its own contracts where
it holds its account, a bank presents its own coin deposits, a customer pays its own
orders with coins."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2  # noqa: F401  (registers the descriptors)
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from interbank.v1 import (  # noqa: F401  (the unused ones register their descriptors)
    account_pb2,
    account_pb2_grpc,
    audit_pb2,
    authorization_pb2,
    cash_pb2,
    cash_pb2_grpc,
    cheque_pb2,
    cheque_pb2_grpc,
    common_pb2,
    notification_pb2,
    order_pb2,
    order_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

from customer.client import Customer
from payment.authz import RPC_ROLES, allowed_roles
from payment.config import Role
from payment.errors import error_info
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.e2e.conftest import RunningNetwork, start_network, stop
from tests.support.cash import denominations, prepare_withdrawal, spend, withdraw
from tests.support.cheques import endorse, issue_book, write

# One certificate per role: who calls.
CALLERS = {
    Role.SETTLEMENT: "settlement",
    Role.BANK: "alfa",
    Role.GATEWAY: "gateway",
    Role.MERCHANT: "shop",
    Role.CUSTOMER: "alice",
}
# Codes that mean the call got past authorization (it may still be a bad request).
BROKEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("authz"), window_seconds=0)
    # Each bank makes its denomination keys when first asked (seconds): before the
    # matrix, whose calls have short deadlines.
    for bank in ("alfa", "beta"):
        asyncio.run(denominations(running.network, bank, bank))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


async def _served(net: RunningNetwork, node: str) -> list[str]:
    """Every method path the node serves, from its reflection service."""
    tls = TlsIdentity.load(Pki(net.network.pki_dir), node)
    async with secure_channel(net.network.node(node).address, tls) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            names = [s.name for s in reply.list_services_response.service]
            break
    pool = descriptor_pool.Default()
    methods = []
    for name in names:
        service = pool.FindServiceByName(name)
        methods += [f"/{service.full_name}/{m.name}" for m in service.methods]
    return sorted(methods)


async def _call(channel: grpc.aio.Channel, method: str) -> tuple[grpc.StatusCode, str | None]:
    """Call method with an empty request; the status it ends with and its ErrorInfo reason."""
    service_name, method_name = method.strip("/").rsplit("/", 1)
    described = descriptor_pool.Default().FindServiceByName(service_name)
    rpc = described.FindMethodByName(method_name)
    request_type = message_factory.GetMessageClass(rpc.input_type)
    response_type = message_factory.GetMessageClass(rpc.output_type)
    options = {
        "request_serializer": request_type.SerializeToString,
        "response_deserializer": response_type.FromString,
    }
    try:
        if not rpc.client_streaming and not rpc.server_streaming:
            await channel.unary_unary(method, **options)(request_type(), timeout=5)
        else:
            if rpc.client_streaming:
                call = channel.stream_stream(method, **options)(iter([request_type()]), timeout=2)
            else:
                call = channel.unary_stream(method, **options)(request_type(), timeout=2)
            async for _ in call:
                break
            call.cancel()
    except grpc.aio.AioRpcError as exc:
        info = error_info(exc)
        # A stream that was let through and had nothing to send ends by its deadline.
        return exc.code(), info.reason if info is not None else None
    return grpc.StatusCode.OK, None


async def _matrix(
    net: RunningNetwork,
) -> dict[tuple[str, str, Role], tuple[grpc.StatusCode, str | None]]:
    pki = Pki(net.network.pki_dir)
    outcomes = {}
    for node in net.network.nodes:
        methods = await _served(net, node.name)
        for role, participant in CALLERS.items():
            tls = TlsIdentity.load(pki, participant)
            async with secure_channel(node.address, tls) as channel:
                for method in methods:
                    outcomes[node.name, method, role] = await _call(channel, method)
    return outcomes


def test_every_rpc_answers_every_role_as_the_table_says(
    net: RunningNetwork, report: Callable[[str], None]
) -> None:
    outcomes = asyncio.run(_matrix(net))
    called = {method for _node, method, _role in outcomes}
    assert called >= {m for m in RPC_ROLES if m.startswith("/interbank.")}, "an RPC is not served"
    cheque_rpcs = {m for m in called if "Cheque" in m}
    assert len(cheque_rpcs) == 7, sorted(cheque_rpcs)
    cash_rpcs = {m for m in called if "Coin" in m or "CashService" in m}
    assert len(cash_rpcs) == 6, sorted(cash_rpcs)
    wrong = []
    for (node, method, role), (code, reason) in sorted(outcomes.items()):
        if role in allowed_roles(method):
            # Let through; the servicer may still refuse a field that is not the caller's
            # (for example DEBTOR_AGENT_NOT_CALLER), never the role.
            right = code not in BROKEN and code != grpc.StatusCode.UNAUTHENTICATED
            right = right and reason != "ROLE_NOT_ALLOWED"
        else:
            right = code == grpc.StatusCode.PERMISSION_DENIED and reason == "ROLE_NOT_ALLOWED"
        if not right:
            wrong.append(f"{node} {method} as {role}: {code.name} {reason}")
    assert not wrong, "\n".join(wrong)
    denied = sum(1 for _code, reason in outcomes.values() if reason == "ROLE_NOT_ALLOWED")
    report(
        f"authorization matrix: {len(outcomes)} calls ({len(called)} RPCs on "
        f"{len(net.network.nodes)} nodes x {len(CALLERS)} roles), {denied} PERMISSION_DENIED, "
        f"{len(outcomes) - denied} let through, all as RPC_ROLES says"
    )


HOLDERS = {
    "alice": ("alfa", "alice-current"),
    "bob": ("beta", "bob-current"),
    "shop": ("beta", "shop-sales"),
}


async def _account_reads(net: RunningNetwork) -> dict[tuple[str, str, str], str]:
    """Every holder asks every bank for every account: OK or the refusal's reason."""
    pki = Pki(net.network.pki_dir)
    seen = {}
    for holder in HOLDERS:
        tls = TlsIdentity.load(pki, holder)
        for bank in ("alfa", "beta"):
            async with secure_channel(net.network.node(bank).address, tls) as channel:
                stub = account_pb2_grpc.AccountServiceStub(channel)
                for _owner, (_at, account_id) in HOLDERS.items():
                    for name, rpc, request in (
                        ("GetBalance", stub.GetBalance, account_pb2.GetBalanceRequest),
                        ("ListStatement", stub.ListStatement, account_pb2.ListStatementRequest),
                    ):
                        try:
                            await rpc(request(account_id=account_id), timeout=5)
                            seen[holder, f"{bank}/{account_id}", name] = "OK"
                        except grpc.aio.AioRpcError as exc:
                            info = error_info(exc)
                            seen[holder, f"{bank}/{account_id}", name] = (
                                f"{exc.code().name}/{info.reason if info else None}"
                            )
    return seen


def test_a_bank_serves_account_data_only_to_its_holder(net: RunningNetwork) -> None:
    seen = asyncio.run(_account_reads(net))
    for (holder, where, rpc), outcome in seen.items():
        own_bank, own_account = HOLDERS[holder]
        if where == f"{own_bank}/{own_account}":
            assert outcome == "OK", (holder, where, rpc, outcome)
        else:
            # Nobody reads an account by naming it: not another holder's, not one at another bank.
            assert outcome == "PERMISSION_DENIED/ACCOUNT_NOT_HELD_BY_CALLER", (holder, where, rpc)
    assert len(seen) == 3 * 2 * 3 * 2


async def _cheque_desk_calls(net: RunningNetwork) -> dict[str, str]:
    """Cheque RPCs naming what is not the caller's: OK or the refusal (code/reason)."""
    network = net.network
    pki = Pki(network.pki_dir)
    book = await issue_book(network, "alice", 2)
    cheque = write(network, book, book.first_serial, payee="shop", amount_minor=100, order_id="o")
    seen: dict[str, str] = {}

    async def call(name: str, caller: str, node: str, method: str, request: object) -> None:
        tls = TlsIdentity.load(pki, caller)
        async with secure_channel(network.node(node).address, tls) as channel:
            rpc = getattr(
                cheque_pb2_grpc.ChequeServiceStub(channel)
                if method != "SubmitChequePresentments"
                else settlement_pb2_grpc.SettlementServiceStub(channel),
                method,
            )
            try:
                reply = await rpc(request, timeout=5)
            except grpc.aio.AioRpcError as exc:
                info = error_info(exc)
                seen[name] = f"{exc.code().name}/{info.reason if info else None}"
                return
            if method == "SubmitChequePresentments":
                (result,) = reply.results
                error = result.error
                seen[name] = f"{grpc.StatusCode.PERMISSION_DENIED.name}/{error.reason}"
                assert result.WhichOneof("outcome") == "error", result
                assert error.code == grpc.StatusCode.PERMISSION_DENIED.value[0], error
            else:
                seen[name] = "OK"

    def rid() -> str:
        return str(uuid.uuid4())

    alice_reference = book.account_reference
    await call(
        "bob issues a book on alice's account",
        "bob",
        "alfa",
        "IssueChequeBook",
        cheque_pb2.IssueChequeBookRequest(
            request_id=rid(), account_id=network.customer("alice").account_id, book_size=1
        ),
    )
    await call(
        "alice issues a book at a bank not hers",
        "alice",
        "beta",
        "IssueChequeBook",
        cheque_pb2.IssueChequeBookRequest(
            request_id=rid(), account_id=network.customer("alice").account_id, book_size=1
        ),
    )
    await call(
        "bob stops alice's cheque",
        "bob",
        "alfa",
        "StopCheque",
        cheque_pb2.StopChequeRequest(
            request_id=rid(), account_reference=alice_reference, serial=book.first_serial
        ),
    )
    await call(
        "bob closes alice's cheque account",
        "bob",
        "alfa",
        "CloseChequeAccount",
        cheque_pb2.CloseChequeAccountRequest(request_id=rid(), account_reference=alice_reference),
    )
    await call(
        "the shop deposits at a bank where it holds no account",
        "shop",
        "alfa",
        "DepositCheque",
        cheque_pb2.DepositChequeRequest(
            request_id=rid(),
            signed_cheque=cheque,
            signed_certificate=book.signed_certificate,
            signed_endorsement=endorse(network, cheque, "shop", "ALFAXX01"),
        ),
    )
    await call(
        "beta presents as alfa",
        "beta",
        "settlement",
        "SubmitChequePresentments",
        settlement_pb2.SubmitChequePresentmentsRequest(
            entries=[
                settlement_pb2.SubmitChequePresentmentRequest(
                    request_id=rid(),
                    presentment=cheque_pb2.ChequePresentment(
                        presentment_id=rid(),
                        presenting_agent="ALFAXX01",
                        drawee_agent="BETAXX02",
                        amount=common_pb2.Money(amount_minor=100, currency_code=network.currency),
                        end_to_end_id="o",
                        signed_cheque=cheque,
                        signed_certificate=book.signed_certificate,
                        signed_endorsement=endorse(network, cheque, "shop", "ALFAXX01"),
                    ),
                )
            ]
        ),
    )
    # alice's own desk still serves her: nothing above stopped or closed anything of hers.
    await call(
        "alice stops her cheque",
        "alice",
        "alfa",
        "StopCheque",
        cheque_pb2.StopChequeRequest(
            request_id=rid(), account_reference=alice_reference, serial=book.first_serial
        ),
    )
    return seen


def test_a_cheque_desk_acts_only_on_the_callers_own(net: RunningNetwork) -> None:
    seen = asyncio.run(_cheque_desk_calls(net))
    assert seen == {
        "bob issues a book on alice's account": "PERMISSION_DENIED/ACCOUNT_NOT_HELD_BY_CALLER",
        "alice issues a book at a bank not hers": "PERMISSION_DENIED/ACCOUNT_NOT_HELD_BY_CALLER",
        "bob stops alice's cheque": "NOT_FOUND/CHEQUE_NOT_FOUND",
        "bob closes alice's cheque account": "NOT_FOUND/CHEQUE_NOT_FOUND",
        "the shop deposits at a bank where it holds no account": (
            "PERMISSION_DENIED/ACCOUNT_NOT_HELD_BY_CALLER"
        ),
        "beta presents as alfa": "PERMISSION_DENIED/PRESENTING_AGENT_NOT_CALLER",
        "alice stops her cheque": "OK",
    }


async def _mint_calls(net: RunningNetwork) -> dict[str, str]:
    """Cash RPCs naming what is not the caller's: OK or the refusal (code/reason)."""
    network = net.network
    pki = Pki(network.pki_dir)
    alice_account = network.customer("alice").account_id
    seen: dict[str, str] = {}

    async def call(name: str, caller: str, node: str, method: str, request: object) -> None:
        tls = TlsIdentity.load(pki, caller)
        async with secure_channel(network.node(node).address, tls) as channel:
            stubs = {
                "SubmitCoinDeposit": settlement_pb2_grpc.SettlementServiceStub,
                "SubmitCoins": order_pb2_grpc.OrderServiceStub,
            }
            stub = stubs.get(method, cash_pb2_grpc.CashServiceStub)(channel)
            try:
                await getattr(stub, method)(request, timeout=10)
            except grpc.aio.AioRpcError as exc:
                info = error_info(exc)
                seen[name] = f"{exc.code().name}/{info.reason if info else None}"
                return
            seen[name] = "OK"

    alices = await prepare_withdrawal(network, "alice", [5])
    await call("bob withdraws from alice's account", "bob", "alfa", "Withdraw", alices.request)
    betas = await prepare_withdrawal(network, "bob", [5])
    at_beta = cash_pb2.WithdrawRequest()
    at_beta.CopyFrom(betas.request)
    at_beta.account_id = alice_account
    await call("alice withdraws at a bank not hers", "alice", "beta", "Withdraw", at_beta)
    coins, _ = await withdraw(network, "alice", [10])
    contract = cash_pb2.CoinContract(order_id="o", order_digest=bytes(32), merchant_name="shop")
    spent = spend(coins, "o", bytes(32), "shop")
    amount = common_pb2.Money(amount_minor=10, currency_code=network.currency)
    await call(
        "the shop deposits at a bank where it holds no account",
        "shop",
        "alfa",
        "DepositCoins",
        cash_pb2.DepositCoinsRequest(
            request_id=str(uuid.uuid4()), contract=contract, coins=spent, amount=amount
        ),
    )
    other = cash_pb2.CoinContract(order_id="o", order_digest=bytes(32), merchant_name="other")
    await call(
        "the shop deposits another merchant's contract",
        "shop",
        "beta",
        "DepositCoins",
        cash_pb2.DepositCoinsRequest(
            request_id=str(uuid.uuid4()),
            contract=other,
            coins=spend(coins, "o", bytes(32), "other"),
            amount=amount,
        ),
    )
    await call(
        "beta presents coins as alfa",
        "beta",
        "settlement",
        "SubmitCoinDeposit",
        settlement_pb2.SubmitCoinDepositRequest(
            request_id=str(uuid.uuid4()),
            deposit=cash_pb2.CoinDeposit(
                deposit_id=str(uuid.uuid4()),
                presenting_agent="ALFAXX01",
                issuing_agent="BETAXX02",
                amount=amount,
                contract=contract,
                coins=spent,
            ),
        ),
    )
    async with Customer(network, "alice") as alice:
        placed = await alice.create_order("shop", [("book-001", 1)])
    await call(
        "bob pays alice's order with coins",
        "bob",
        "shop",
        "SubmitCoins",
        order_pb2.SubmitCoinsRequest(
            request_id=str(uuid.uuid4()), order_id=placed.order.order_id, coins=spent
        ),
    )
    # alice's own withdrawal goes through: nothing above took anything of hers.
    await call("alice withdraws from her account", "alice", "alfa", "Withdraw", alices.request)
    return seen


def test_a_mint_acts_only_on_the_callers_own(net: RunningNetwork) -> None:
    seen = asyncio.run(_mint_calls(net))
    assert seen == {
        "bob withdraws from alice's account": "PERMISSION_DENIED/ACCOUNT_NOT_HELD_BY_CALLER",
        "alice withdraws at a bank not hers": "PERMISSION_DENIED/ACCOUNT_NOT_HELD_BY_CALLER",
        "the shop deposits at a bank where it holds no account": (
            "PERMISSION_DENIED/ACCOUNT_NOT_HELD_BY_CALLER"
        ),
        "the shop deposits another merchant's contract": "INVALID_ARGUMENT/FIELD_INVALID",
        "beta presents coins as alfa": "PERMISSION_DENIED/PRESENTING_AGENT_NOT_CALLER",
        "bob pays alice's order with coins": "NOT_FOUND/ORDER_NOT_FOUND",
        "alice withdraws from her account": "OK",
    }
