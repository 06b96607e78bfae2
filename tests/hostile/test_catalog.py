"""The hostile suite covers every RPC of the contracts, each called by a role that may call it.

RPCs are enumerated from the generated descriptors, so a new RPC without a
spec (caller, strategy, answers) fails here rather than going untested.
"""

from __future__ import annotations

import grpc
from grpc_reflection.v1alpha import reflection_pb2

from payment.authz import allowed_roles
from payment.config import NetworkConfig, Role

from .catalog import PROTO_MODULES, specs
from .harness import Harness, Target


def _contract_rpcs() -> dict[str, tuple[str, str, bool]]:
    """Full method name -> (input type, output type, server streaming), from the descriptors."""
    rpcs = {}
    for module in PROTO_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                rpcs[f"/{service.full_name}/{method.name}"] = (
                    method.input_type.full_name,
                    method.output_type.full_name,
                    method.server_streaming,
                )
    return rpcs


def _role(network: NetworkConfig, name: str) -> Role:
    if any(customer.name == name for customer in network.customers):
        return Role.CUSTOMER
    return network.node(name).role


def test_every_rpc_of_the_contracts_has_a_spec() -> None:
    rpcs = _contract_rpcs()
    assert len(rpcs) >= 30
    covered = {spec.method for spec in specs()}
    assert sorted(set(rpcs) - covered) == [], "RPCs without a hostile-input spec"
    assert sorted(covered - set(rpcs)) == [], "specs of RPCs the contracts do not have"


def test_every_spec_sends_the_rpcs_request_type() -> None:
    rpcs = _contract_rpcs()
    for spec in specs():
        input_type, _output, streaming = rpcs[spec.method]
        assert spec.request_type.DESCRIPTOR.full_name == input_type, spec.method
        assert spec.target.streaming == streaming, spec.method


def test_every_caller_is_of_a_role_the_rpc_admits(harness: Harness) -> None:
    for spec in specs():
        role = _role(harness.network, spec.target.caller)
        assert role in allowed_roles(spec.method), (spec.method, spec.target.caller, role)


def test_every_spec_calls_a_node_that_serves_the_rpc(harness: Harness) -> None:
    served: dict[str, set[str]] = {}
    for node in {spec.target.node for spec in specs()}:
        reflect = harness.channel(node, node).stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        replies = reflect(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        reply = next(replies)
        replies.cancel()
        served[node] = {service.name for service in reply.list_services_response.service}
    for spec in specs():
        service = spec.method.split("/")[1]
        assert service in served[spec.target.node], (spec.method, spec.target.node)


def test_a_wrong_role_is_refused_before_validation(harness: Harness) -> None:
    """The callers above matter: the same hostile request from a wrong role never gets in."""
    open_to_all = sorted({s.method for s in specs() if allowed_roles(s.method) == set(Role)})
    # A bank's key set is public to the network: no role is wrong for it.
    assert open_to_all == ["/interbank.v1.CashService/GetDenominations"], open_to_all
    for spec in specs():
        if spec.method in open_to_all:
            continue
        role = _role(harness.network, spec.target.caller)
        intruder = "bob" if role is not Role.CUSTOMER else "gateway"
        if _role(harness.network, intruder) in allowed_roles(spec.method):
            intruder = "beta"
        outcome = harness.invoke(
            Target(spec.method, spec.target.node, intruder, spec.target.streaming), b"\xff"
        )
        assert (outcome.code, outcome.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_NOT_ALLOWED",
        ), (spec.method, intruder, outcome)
