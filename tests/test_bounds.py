"""The bounds of what a caller may send: every string, bytes and repeated field of a
request has one in the contracts, its comment says it, and one check refuses a value
over it precisely."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from interbank.v1 import (
    authorization_pb2,
    bounds_pb2,
    common_pb2,
    order_pb2,
    settlement_pb2,
)

from payment.bounds import bounds_of, violation
from tests.hostile.catalog import PROTO_MODULES

PROTOS = Path(__file__).resolve().parents[1] / "protos"


def _request_messages() -> dict[str, Descriptor]:
    """Every message of this package that a request can hold, by full name."""
    found: dict[str, Descriptor] = {}
    stack = [
        method.input_type
        for module in PROTO_MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]
    while stack:
        message = stack.pop()
        if message.full_name in found or not message.full_name.startswith("interbank."):
            continue
        found[message.full_name] = message
        stack += [f.message_type for f in message.fields if f.message_type is not None]
    return found


def _caller_fields() -> Iterator[FieldDescriptor]:
    for message in _request_messages().values():
        for field in message.fields:
            if field.is_repeated or field.type in (field.TYPE_STRING, field.TYPE_BYTES):
                yield field


def _comments(out: Path) -> dict[str, str]:
    """Each field's leading comment, by full field name, read from the .proto sources."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(PROTOS),
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *sorted(str(p.relative_to(PROTOS)) for p in PROTOS.glob("interbank/v1/*.proto")),
        ],
        check=True,
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    comments = {}
    for file in files.file:
        for location in file.source_code_info.location:
            path = list(location.path)
            if len(path) == 4 and path[0] == 4 and path[2] == 2:  # message_type[i].field[j]
                message = file.message_type[path[1]]
                field = message.field[path[3]]
                comments[f"{file.package}.{message.name}.{field.name}"] = location.leading_comments
    return comments


def test_every_string_bytes_and_repeated_field_a_caller_sends_has_a_bound() -> None:
    fields = list(_caller_fields())
    assert len(fields) > 70
    missing = []
    for field in fields:
        options = field.GetOptions()
        if field.is_repeated and not options.Extensions[bounds_pb2.max_items]:
            missing.append(f"{field.full_name} (max_items)")
        if field.type in (field.TYPE_STRING, field.TYPE_BYTES):
            if not options.Extensions[bounds_pb2.max_bytes]:
                missing.append(f"{field.full_name} (max_bytes)")
    assert not missing, f"fields without a bound: {missing}"


def test_every_bound_is_written_in_its_fields_comment(tmp_path: Path) -> None:
    comments = _comments(tmp_path / "descriptors.pb")
    wrong = []
    for field in _caller_fields():
        options = field.GetOptions()
        comment = " ".join(comments[field.full_name].split())
        if options.Extensions[bounds_pb2.max_items]:
            if f"At most {options.Extensions[bounds_pb2.max_items]} entries." not in comment:
                wrong.append(field.full_name)
        size = options.Extensions[bounds_pb2.max_bytes]
        if size and f"{size} bytes." not in comment:
            wrong.append(field.full_name)
    assert not wrong, f"comments that do not state the field's bound: {wrong}"


def test_a_request_id_over_its_bound_is_refused_with_the_field_and_its_limit() -> None:
    request = order_pb2.CreateOrderRequest(request_id="r" * 70_000)
    refusal = violation(request)
    assert refusal is not None
    assert (refusal.code.name, refusal.reason) == ("INVALID_ARGUMENT", "FIELD_INVALID")
    assert refusal.metadata == {"field": "request_id", "limit": "128"}
    assert "70000 bytes" in refusal.message
    assert "r" * 200 not in refusal.message  # the value itself is never echoed


def test_a_value_at_its_bound_passes_and_one_byte_more_is_refused() -> None:
    assert violation(order_pb2.GetOrderRequest(order_id="o" * 128)) is None
    assert violation(order_pb2.GetOrderRequest(order_id="o" * 129)) is not None


def test_strings_are_measured_in_utf8_bytes_not_characters() -> None:
    # 32 four-byte code points are 128 bytes: at the bound; 33 are 132: over it.
    assert violation(order_pb2.GetOrderRequest(order_id="\U0001f4b8" * 32)) is None
    refusal = violation(order_pb2.GetOrderRequest(order_id="\U0001f4b8" * 33))
    assert refusal is not None and "132 bytes" in refusal.message


def test_a_nested_field_is_named_by_its_path_with_the_entry_index() -> None:
    transfer = settlement_pb2.CreditTransfer(instruction_id="i", debtor_name="d" * 141)
    request = settlement_pb2.SubmitCreditTransfersRequest(
        entries=[
            settlement_pb2.SubmitCreditTransferRequest(request_id="a"),
            settlement_pb2.SubmitCreditTransferRequest(request_id="b", transfer=transfer),
        ]
    )
    refusal = violation(request)
    assert refusal is not None
    assert refusal.metadata == {"field": "entries[1].transfer.debtor_name", "limit": "140"}


def test_too_many_entries_are_refused_before_any_is_read() -> None:
    line = order_pb2.CreateOrderLine(sku="book-001", quantity=1)
    assert violation(order_pb2.CreateOrderRequest(request_id="r", lines=[line] * 100)) is None
    refusal = violation(order_pb2.CreateOrderRequest(request_id="r", lines=[line] * 101))
    assert refusal is not None
    assert refusal.metadata == {"field": "lines", "limit": "100"}


def test_bytes_fields_are_bounded_in_bytes() -> None:
    payment = common_pb2.SealedPayment(sealed_instruction=b"\x00" * 4097)
    request = order_pb2.SubmitPaymentRequest(request_id="r", order_id="o", payment=payment)
    refusal = violation(request)
    assert refusal is not None
    assert refusal.metadata == {"field": "payment.sealed_instruction", "limit": "4096"}


@pytest.mark.parametrize(
    "message",
    [
        authorization_pb2.AuthorizeHoldsRequest.DESCRIPTOR,
        settlement_pb2.ReceiveCreditTransfersRequest.DESCRIPTOR,
    ],
)
def test_a_batch_is_bounded_at_its_documented_size(message: Descriptor) -> None:
    (entries,) = [b for b in bounds_of(message) if b.field.name == "entries"]
    assert entries.max_items == 256


def test_a_derived_request_id_stays_within_the_bound_and_one_per_input() -> None:
    from payment.ids import MAX_REQUEST_ID_BYTES, derived_request_id

    short = derived_request_id("refund", "order-1", "r1")
    assert short == "refund:order-1:r1"
    longest = "r" * MAX_REQUEST_ID_BYTES
    derived = derived_request_id("refund", "o" * 36, longest)
    assert len(derived.encode()) <= MAX_REQUEST_ID_BYTES
    assert derived == derived_request_id("refund", "o" * 36, longest)
    assert derived != derived_request_id("refund", "o" * 36, longest[:-1] + "s")
    assert violation(order_pb2.RefundOrderRequest(request_id=derived)) is None
