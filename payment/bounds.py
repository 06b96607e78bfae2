"""The bounds of what a caller may send, read from the contracts.

Every string, bytes and repeated field of a request carries its maximum as a
field option of ``interbank/v1/bounds.proto`` (``max_bytes``, ``max_items``),
and its proto comment says the same in words. :func:`violation` checks a
parsed request against them in one pass over the fields that are set; the
server refuses a request over a bound before any servicer reads it
(:mod:`payment.interceptors`), so no handler, store or log line sees a value
longer than the contract allows.

Each message type's plan (which fields have bounds, which hold messages to
look into) is worked out once, on its first request.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from interbank.v1 import bounds_pb2

from payment import errors

__all__ = ["Bound", "bounds_of", "violation"]

_UTF8_MAX = 4
"""Most UTF-8 bytes one code point takes: a string of n code points is at most 4n bytes."""


@dataclass(frozen=True)
class Bound:
    """The bounds of one field, as its options give them (0: none), worked out once."""

    field: FieldDescriptor
    """The field."""
    name: str
    """The field's name, for getattr."""
    max_bytes: int
    """Longest value (each entry's, for a repeated field), in bytes; 0 if unbounded."""
    max_items: int
    """Most entries of a repeated field; 0 if unbounded."""
    repeated: bool
    """True for a repeated field."""
    nested: bool
    """True if the field holds messages of this package, to be checked in turn."""


def _holds_ours(field: FieldDescriptor) -> bool:
    kind = field.message_type
    return (
        kind is not None
        and kind.full_name.startswith("interbank.")
        and not kind.GetOptions().map_entry
    )


@cache
def bounds_of(descriptor: Descriptor) -> tuple[Bound, ...]:
    """The fields of a message that have a bound or hold messages that may have one."""
    plan = []
    for field in descriptor.fields:
        options = field.GetOptions()
        bound = Bound(
            field,
            field.name,
            options.Extensions[bounds_pb2.max_bytes],
            options.Extensions[bounds_pb2.max_items],
            field.is_repeated,
            _holds_ours(field),
        )
        if bound.max_bytes or bound.max_items or bound.nested:
            plan.append(bound)
    return tuple(plan)


def _too_long(value: str | bytes, limit: int) -> int | None:
    """The value's length in bytes if it is over limit, else None (cheap when far below)."""
    if isinstance(value, str) and len(value) * _UTF8_MAX <= limit:
        return None
    size = len(value) if isinstance(value, bytes) else len(value.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def _refusal(path: str, what: str, limit: int, unit: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        "FIELD_INVALID",
        f"{path} holds {what}; at most {limit} {unit} are allowed (see the field's comment)",
        field=path,
        limit=limit,
    )


def violation(message: Message, prefix: str = "") -> errors.InvalidArgument | None:
    """The refusal for the first field of message over its bound, or None if all are within."""
    for bound in bounds_of(message.DESCRIPTOR):
        value = getattr(message, bound.name)
        if bound.repeated:
            if not value:
                continue
            if bound.max_items and len(value) > bound.max_items:
                path = f"{prefix}{bound.name}"
                return _refusal(path, f"{len(value)} entries", bound.max_items, "entries")
            if bound.max_bytes:
                for index, item in enumerate(value):
                    size = _too_long(item, bound.max_bytes)
                    if size is not None:
                        item_path = f"{prefix}{bound.name}[{index}]"
                        return _refusal(item_path, f"{size} bytes", bound.max_bytes, "bytes")
            if bound.nested:
                for index, item in enumerate(value):
                    found = violation(item, f"{prefix}{bound.name}[{index}].")
                    if found is not None:
                        return found
        elif bound.nested:
            if message.HasField(bound.name):
                found = violation(value, f"{prefix}{bound.name}.")
                if found is not None:
                    return found
        else:
            size = _too_long(value, bound.max_bytes)
            if size is not None:
                return _refusal(f"{prefix}{bound.name}", f"{size} bytes", bound.max_bytes, "bytes")
    return None
