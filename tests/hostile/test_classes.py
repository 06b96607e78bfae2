"""Each class of hostile input, generated for every RPC from its contract.

Where the generated cases of ``test_generated`` draw at random, these walk
each request's descriptor and send every member of a class to every RPC:

- **length**: every bounded string, bytes and repeated field, one byte (or
  entry) over its bound, is refused ``FIELD_INVALID`` naming that field and
  its limit; at its bound it gets an answer the RPC documents.
- **overflow**: every integer field at both ends of its range, in requests the
  RPC's strategy draws (so that real ids reach the arithmetic), gets a
  documented answer, never ``INTERNAL``.
- **cursor**: a sequence cursor at the int64 maximum is answered at once.
- **self-transfer**: a request whose debtor and creditor (agents or accounts),
  a cheque's drawee and presenting agents, or a coin deposit's issuing and presenting
  agents, are the same never succeeds.
- **chain**: the caller's certificate, issued through an extra CA, is refused
  ``UNAUTHENTICATED`` / ``ISSUER_NOT_NETWORK_CA``.

Every case goes through :meth:`Harness.check`: nothing written on a refusal,
the node still serving, and the audit run after any case that moved money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payment.bounds import bounds_of, violation
from payment.config import Role
from payment.pki import Pki

from .catalog import RpcSpec, judge, specs
from .chains import chained_identity
from .harness import Allowance, Harness, Outcome
from .strategies import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from .world import World

_SPECS = specs()
_MAX_DEPTH = 4
_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1

_PAIRS = (
    ("debtor_agent", "creditor_agent"),
    ("returning_agent", "receiving_agent"),
    ("original_debtor_agent", "receiving_agent"),
    ("debtor_account", "creditor_account"),
    ("drawee_agent", "presenting_agent"),
    ("issuing_agent", "presenting_agent"),
)
"""Fields naming the two sides of a money movement: the same on both sides is a self-transfer
(a cheque presentment pays the presenting agent from the drawee agent, a coin deposit from
the issuing agent)."""


@dataclass(frozen=True)
class Step:
    """One field on the way from a request to a bounded field."""

    field: FieldDescriptor
    """The field."""
    index: int | None
    """0 for an entry of a repeated message field, else None."""


def _steps_text(steps: tuple[Step, ...]) -> str:
    return ".".join(s.field.name + ("" if s.index is None else f"[{s.index}]") for s in steps)


def _bounded(descriptor: Descriptor, above: tuple[Step, ...] = ()) -> Iterator[tuple[Step, ...]]:
    """Every path to a field with a bound, through the messages a request may hold."""
    if len(above) >= _MAX_DEPTH:
        return
    for bound in bounds_of(descriptor):
        here = (*above, Step(bound.field, None))
        if bound.max_bytes or bound.max_items:
            yield here
        if bound.nested:
            entry = Step(bound.field, 0 if bound.field.is_repeated else None)
            yield from _bounded(bound.field.message_type, (*above, entry))


def _integers(descriptor: Descriptor, above: tuple[Step, ...] = ()) -> Iterator[tuple[Step, ...]]:
    """Every path to a singular integer field, through message fields (the first entry of
    a repeated one: a batch's amounts are reached through its entries)."""
    if len(above) >= _MAX_DEPTH:
        return
    for field in descriptor.fields:
        if field.type == field.TYPE_MESSAGE:
            if field.message_type.full_name.startswith("interbank."):
                step = Step(field, 0 if field.is_repeated else None)
                yield from _integers(field.message_type, (*above, step))
        elif field.is_repeated:
            continue
        elif field.cpp_type in _EDGES:
            yield (*above, Step(field, None))


_EDGES = {
    FieldDescriptor.CPPTYPE_INT64: (INT64_MAX, INT64_MIN),
    FieldDescriptor.CPPTYPE_INT32: (INT32_MAX, INT32_MIN),
    FieldDescriptor.CPPTYPE_UINT64: (_UINT64_MAX,),
    FieldDescriptor.CPPTYPE_UINT32: (_UINT32_MAX,),
}


def _parent(message: Message, steps: tuple[Step, ...]) -> Message:
    """The message holding the last step's field, made on the way if missing."""
    return _at(message, steps[:-1])


def _at(message: Message, steps: tuple[Step, ...]) -> Message:
    """The message at the end of steps, made on the way if missing."""
    for step in steps:
        if step.index is None:
            message = getattr(message, step.field.name)
        else:
            entries = getattr(message, step.field.name)
            message = entries[0] if entries else entries.add()
    return message


def _over(field: FieldDescriptor, limit: int) -> object:
    return b"\x00" * limit if field.type == field.TYPE_BYTES else "x" * limit


def _with_length(
    request_type: type[Message], steps: tuple[Step, ...], size: int, items: bool
) -> Message:
    request = request_type()
    parent = _parent(request, steps)
    field = steps[-1].field
    target = getattr(parent, field.name)
    if items:
        for _ in range(size):
            if field.type == field.TYPE_MESSAGE:
                target.add()
            else:
                target.append(_over(field, 1))
    elif field.is_repeated:
        target.append(_over(field, size))
    else:
        setattr(parent, field.name, _over(field, size))
    return request


def _exact_refusal(path: str, limit: int) -> Callable[[Outcome], Allowance]:
    def check(outcome: Outcome) -> Allowance:
        assert (outcome.code, outcome.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
        ), f"{path} over its bound {limit}: {outcome}"
        assert outcome.metadata == {"field": path, "limit": str(limit)}, outcome.metadata
        return Allowance(frozenset())

    return check


@pytest.mark.parametrize("spec", _SPECS, ids=lambda spec: spec.id)
def test_every_bounded_field_one_over_its_bound_is_refused_naming_it(
    spec: RpcSpec, harness: Harness, world: World
) -> None:
    at_bound = judge(spec, world)
    paths = list(_bounded(spec.request_type.DESCRIPTOR))
    for steps in paths:
        options = bounds_of(_owner(spec, steps))
        bound = next(b for b in options if b.field is steps[-1].field)
        path = _steps_text(steps)
        for limit, items in ((bound.max_items, True), (bound.max_bytes, False)):
            if not limit:
                continue
            where = path if items or not bound.field.is_repeated else f"{path}[0]"
            over = _with_length(spec.request_type, steps, limit + 1, items)
            harness.check(
                spec.target,
                over.SerializeToString(),
                kind="length",
                judge=_exact_refusal(where, limit),
            )
            if not items:
                exact = _with_length(spec.request_type, steps, limit, items)
                harness.check(spec.target, exact.SerializeToString(), kind="length", judge=at_bound)


def _owner(spec: RpcSpec, steps: tuple[Step, ...]) -> Descriptor:
    descriptor = spec.request_type.DESCRIPTOR
    for step in steps[:-1]:
        descriptor = step.field.message_type
    return descriptor


def _within_bounds(spec: RpcSpec, world: World) -> st.SearchStrategy[Message]:
    """The RPC's hostile requests that no bound refuses, so that they reach the servicer."""
    return spec.strategy(world).filter(lambda request: violation(request) is None)


def _integer_specs() -> list[RpcSpec]:
    return [spec for spec in _SPECS if list(_integers(spec.request_type.DESCRIPTOR))]


@pytest.mark.parametrize("spec", _integer_specs(), ids=lambda spec: spec.id)
def test_every_integer_field_at_the_ends_of_its_range_gets_a_documented_answer(
    spec: RpcSpec, harness: Harness, world: World
) -> None:
    check = judge(spec, world)
    paths = list(_integers(spec.request_type.DESCRIPTOR))

    @settings(
        max_examples=3,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=_within_bounds(spec, world))
    def case(request: Message) -> None:
        for steps in paths:
            field = steps[-1].field
            kind = "cursor" if "sequence" in field.name else "overflow"
            for edge in _EDGES[field.cpp_type]:
                edged = type(request)()
                edged.CopyFrom(request)
                setattr(_parent(edged, steps), field.name, edge)
                harness.check(spec.target, edged.SerializeToString(), kind=kind, judge=check)

    case()


def _pairs(descriptor: Descriptor, above: tuple[Step, ...] = ()) -> Iterator[tuple[Step, ...]]:
    """Paths to each message holding both sides of a money movement."""
    if len(above) >= _MAX_DEPTH:
        return
    names = set(descriptor.fields_by_name)
    if any(a in names and b in names for a, b in _PAIRS):
        yield above
    for field in descriptor.fields:
        if field.type == field.TYPE_MESSAGE and field.message_type.full_name.startswith(
            "interbank."
        ):
            step = Step(field, 0 if field.is_repeated else None)
            yield from _pairs(field.message_type, (*above, step))


def _pair_specs() -> list[RpcSpec]:
    return [spec for spec in _SPECS if list(_pairs(spec.request_type.DESCRIPTOR))]


def _response_type(method: str) -> type[Message]:
    service, name = method.lstrip("/").rsplit("/", 1)
    descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    return GetMessageClass(descriptor.output_type)


def _refused(report: Message) -> bool:
    """True if an answer moved nothing: an entry error, or a transfer reported REJECTED."""
    fields = report.DESCRIPTOR.fields_by_name
    if "results" in fields:
        return all(_refused(result) for result in report.results)
    if "outcome" in report.DESCRIPTOR.oneofs_by_name:
        chosen = report.WhichOneof("outcome")
        return chosen == "error" or (chosen is not None and _refused(getattr(report, chosen)))
    status = fields.get("status")
    return (
        status is not None
        and status.enum_type is not None
        and (status.enum_type.values_by_number[report.status].name.endswith("_REJECTED"))
    )


def _never_succeeds(spec: RpcSpec, world: World) -> Callable[[Outcome], Allowance]:
    documented = judge(spec, world)
    answer = _response_type(spec.method)

    def check(outcome: Outcome) -> Allowance:
        if outcome.ok:
            assert outcome.response is not None
            report = answer.FromString(outcome.response)
            assert _refused(report), f"{spec.method}: a transfer to itself went through: {report}"
        return documented(outcome)

    return check


@pytest.mark.parametrize("spec", _pair_specs(), ids=lambda spec: spec.id)
def test_a_movement_whose_two_sides_are_the_same_never_succeeds(
    spec: RpcSpec, harness: Harness, world: World
) -> None:
    check = _never_succeeds(spec, world)
    holders = list(_pairs(spec.request_type.DESCRIPTOR))
    caller = spec.target.caller
    own_code = next(
        (n.bank_code for n in harness.network.nodes if n.name == caller and n.bank_code),
        world.alfa_code,
    )

    @settings(
        max_examples=5,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=_within_bounds(spec, world))
    def case(request: Message) -> None:
        for steps in holders:
            same = type(request)()
            same.CopyFrom(request)
            _first_entries_only(same, steps)
            holder = _at(same, steps)
            names = set(holder.DESCRIPTOR.fields_by_name)
            for debtor, creditor in _PAIRS:
                if debtor not in names or creditor not in names:
                    continue
                if holder.DESCRIPTOR.fields_by_name[debtor].type == FieldDescriptor.TYPE_MESSAGE:
                    getattr(holder, creditor).CopyFrom(getattr(holder, debtor))
                else:
                    setattr(holder, debtor, own_code)
                    setattr(holder, creditor, own_code)
            harness.check(spec.target, same.SerializeToString(), kind="self-transfer", judge=check)

    case()


def _first_entries_only(message: Message, steps: tuple[Step, ...]) -> None:
    """Drop every entry but the first of each repeated field on the way: the answer is then
    about the entry made to pay itself alone (another entry may be a world replay)."""
    for step in steps:
        held = getattr(message, step.field.name)
        if step.index is not None:
            del held[1:]
            held = held[0] if held else held.add()
        message = held


def _chain_refusal(outcome: Outcome) -> Allowance:
    assert (outcome.code, outcome.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "ISSUER_NOT_NETWORK_CA",
    ), outcome
    return Allowance(frozenset())


def test_every_rpc_refuses_its_caller_through_an_extra_ca(harness: Harness) -> None:
    network = harness.network
    roles = {n.name: n.role for n in network.nodes} | {
        c.name: Role.CUSTOMER for c in network.customers
    }
    pki = Pki(network.pki_dir)
    chained = {
        caller: chained_identity(pki, network.trust_domain, roles[caller], caller)
        for caller in {spec.target.caller for spec in _SPECS}
    }
    for spec in _SPECS:
        harness.check(
            spec.target,
            spec.request_type().SerializeToString(),
            kind="chain",
            judge=_chain_refusal,
            identity=chained[spec.target.caller],
        )
