"""The role -> RPC table covers every RPC of the contracts, and denies by default."""

from __future__ import annotations

from interbank.v1 import (
    account_pb2,
    authorization_pb2,
    notification_pb2,
    order_pb2,
    settlement_pb2,
)

from payment.authz import RPC_ROLES, allowed_roles
from payment.config import Role


def contract_methods() -> set[str]:
    methods = set()
    for module in (account_pb2, authorization_pb2, notification_pb2, order_pb2, settlement_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            methods |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    return methods


def test_every_rpc_of_the_contracts_has_an_entry_in_the_table() -> None:
    missing = contract_methods() - set(RPC_ROLES)
    assert missing == set()


def test_unknown_methods_are_allowed_to_nobody() -> None:
    assert allowed_roles("/interbank.v1.Nope/Nothing") == frozenset()


def test_issuer_rpcs_are_for_the_gateway_only_and_challenges_for_customers_only() -> None:
    issuer = [m for m in RPC_ROLES if m.startswith("/interbank.v1.IssuerService/")]
    assert issuer and all(RPC_ROLES[m] == {Role.GATEWAY} for m in issuer)
    assert RPC_ROLES["/interbank.v1.ChallengeService/AnswerChallenge"] == {Role.CUSTOMER}
