"""The case table covers every mutating RPC of the generated contracts, and only those.

A mutating RPC is one whose request message has a ``request_id`` field, or is a
batch whose every entry has one. The RPCs are enumerated from the generated
descriptors (every ``interbank.v1.*_pb2`` module's ``DESCRIPTOR.services_by_name``),
so a new mutating RPC without a case fails here. No network is started.
"""

from __future__ import annotations

from pathlib import Path

from payment.authz import RPC_ROLES
from payment.config import NetworkConfig, Role, load_network

from .cases import CASES
from .conftest import CHEQUE_CLOSERS, write_tuned_network
from .harness import ALFA, contract_methods, entry_type, request_type


def mutating_methods() -> set[str]:
    """Full names of the RPCs whose request, or each entry of it, has a request_id."""
    return {
        name for name in contract_methods() if "request_id" in request_type(name).fields_by_name
    }


def role_of(network: NetworkConfig, name: str) -> Role:
    """The role of a participant of the network (the <role> of its certificate)."""
    roles = {node.name: node.role for node in network.nodes}
    roles.update({customer.name: Role.CUSTOMER for customer in network.customers})
    roles.update({merchant.name: Role.MERCHANT for merchant in network.merchants})
    return roles[name]


def test_the_descriptors_are_found() -> None:
    methods = contract_methods()
    assert "/interbank.v1.OrderService/CreateOrder" in methods
    assert "/interbank.v1.AccountService/GetBalance" in methods


def test_batch_rpcs_are_mutating_through_their_entries() -> None:
    assert entry_type("/interbank.v1.ClearingService/ReceiveChequePresentments") is not None
    assert entry_type("/interbank.v1.SettlementService/SubmitCreditTransfer") is None
    assert {
        "/interbank.v1.SettlementService/SubmitChequePresentments",
        "/interbank.v1.ClearingService/ReceiveChequePresentments",
        "/interbank.v1.IssuerService/AuthorizeHolds",
    } <= mutating_methods()


def test_every_mutating_rpc_has_a_case() -> None:
    missing = sorted(mutating_methods() - set(CASES))
    assert missing == [], f"mutating RPCs without an idempotency case: {missing}"


def test_every_case_is_a_mutating_rpc() -> None:
    assert sorted(set(CASES) - mutating_methods()) == []


def test_every_case_calls_with_a_role_allowed_to_call_and_a_node_serving_the_rpc(
    tmp_path: Path,
) -> None:
    network = load_network(write_tuned_network(tmp_path))
    closers = {role_of(network, name) for name in CHEQUE_CLOSERS}
    assert closers == {Role.CUSTOMER}
    assert {network.customer(name).bank for name in CHEQUE_CLOSERS} == {ALFA}
    serving = {
        "settlement": {"SettlementService"},
        "bank": {
            "IssuerService",
            "AcquirerService",
            "ChallengeService",
            "ClearingService",
            "ChequeService",
            "CashService",
        },
        "gateway": {"GatewayService"},
        "merchant": {"OrderService", "BackOfficeService"},
    }
    for method, case in CASES.items():
        assert role_of(network, case.caller) in RPC_ROLES[method], method
        service = method.split("/")[1].rsplit(".", 1)[-1]
        assert service in serving[str(network.node(case.node).role)], method


def test_deprecated_rpcs_and_only_those_expect_a_refusal() -> None:
    methods = contract_methods()
    for method, case in CASES.items():
        deprecated = methods[method].GetOptions().deprecated
        assert deprecated == (case.refusal is not None), method


def test_only_a_request_with_no_other_field_skips_the_other_content_rule() -> None:
    for method, case in CASES.items():
        fields = [f.name for f in request_type(method).fields]
        assert (fields == ["request_id"]) == bool(case.no_variant), method
