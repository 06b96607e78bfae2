"""Hypothesis strategies for hostile requests, built from the message descriptors.

:func:`messages` walks a message descriptor and draws every field from a
hostile strategy for its type: empty and huge strings, odd but valid unicode,
int64/int32 boundaries, unknown enum numbers, missing sub-messages. Callers
override fields by dotted path (``"transfer.amount"``) to mix in real ids, so
the input reaches validation past the lookups. :func:`malformed_bytes` draws
byte strings that do not parse as a given message at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st
from interbank.v1 import common_pb2

__all__ = [
    "HUGE",
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "ODD_TEXT",
    "amounts",
    "currencies",
    "hostile_bytes",
    "hostile_text",
    "int64s",
    "malformed_bytes",
    "messages",
    "money",
    "one_of_or",
    "unknown_fields",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
HUGE = 100_000
"""About the largest string or bytes field drawn, in bytes (~100 KB)."""

ODD_TEXT: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202eEUR",  # right-to-left override
    "e\u0301\u0301\u0301",  # stacked combining accents
    "\U0001f4b8\U0001f3e6",  # emoji
    "\u200d\u200b",  # zero-width joiner and space
    "\ufeffEUR",  # byte-order mark
    "\u2028\u2029",  # line and paragraph separators
    "\U0010ffff",  # the last code point
    "\ufffe\uffff",  # noncharacters
    "\uff25\uff35\uff32",  # full-width EUR
    "\u0130\u0131",  # dotted and dotless i
    "\t\r\n",
    "eur",
    "' OR 1=1 --",
    "%s%n%x",
    "../../etc/passwd",
    "spiffe://paynet.test/customer/alice",
)
"""Strings that are valid UTF-8 (protobuf strings must be) but odd."""

_HUGE_TEXT = st.sampled_from(
    (
        "x" * HUGE,
        "\U0001f4b8" * (HUGE // 4),
        "\x00" * HUGE,
        "e\u0301" * (HUGE // 3),
    )
)
_INT64_EDGES = (
    0,
    1,
    -1,
    2,
    INT64_MAX,
    INT64_MIN,
    INT64_MAX - 1,
    INT64_MIN + 1,
    2**53 + 1,
    -(2**31),
)
_INT32_EDGES = (0, 1, -1, INT32_MAX, INT32_MIN, 1000, 1001, 999)
_UNKNOWN_ENUMS = (999, -1, INT32_MAX, INT32_MIN)


def hostile_text(max_size: int = 48) -> st.SearchStrategy[str]:
    """Odd, empty, generated (any non-surrogate code point) and huge strings."""
    return st.one_of(
        st.sampled_from(ODD_TEXT),
        st.text(st.characters(codec="utf-8"), max_size=max_size),
        _HUGE_TEXT,
    )


def hostile_bytes(max_size: int = 128) -> st.SearchStrategy[bytes]:
    """Empty, short, generated and huge byte strings."""
    return st.one_of(
        st.sampled_from((b"", b"\x00", b"\x00" * 32, b"\xff" * 64)),
        st.binary(max_size=max_size),
        st.sampled_from((b"\x00" * HUGE, b"\xff" * HUGE)),
    )


def int64s() -> st.SearchStrategy[int]:
    """int64 boundaries and anything in range."""
    return st.one_of(st.sampled_from(_INT64_EDGES), st.integers(INT64_MIN, INT64_MAX))


def _int32s() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(_INT32_EDGES), st.integers(INT32_MIN, INT32_MAX))


def _uint64s() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from((0, 1, 2**64 - 1)), st.integers(0, 2**64 - 1))


def _uint32s() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from((0, 1, 2**32 - 1)), st.integers(0, 2**32 - 1))


def _enums(field: FieldDescriptor) -> st.SearchStrategy[int]:
    assert field.enum_type is not None
    known = tuple(v.number for v in field.enum_type.values)
    return st.one_of(st.sampled_from(known), st.sampled_from(_UNKNOWN_ENUMS), _int32s())


def one_of_or(real: tuple[Any, ...], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A real value (so the input gets past the lookup) or a hostile one."""
    return st.one_of(st.sampled_from(real), hostile) if real else hostile


def currencies(network_currency: str) -> st.SearchStrategy[str]:
    """The network's currency, other real codes, and hostile text."""
    return one_of_or((network_currency, "USD", "EUR", "eur", "EU", "EURO", ""), hostile_text(8))


def amounts(*, above: int | None = None) -> st.SearchStrategy[int]:
    """Hostile amounts: zero, negative, int64 edges; with above, positives only beyond it.

    ``above`` keeps positive amounts out of (0, above], the range a real
    operation on an existing payment would accept.
    """
    negative = st.one_of(
        st.sampled_from((0, -1, INT64_MIN, INT64_MIN + 1)), st.integers(INT64_MIN, 0)
    )
    if above is None:
        return st.one_of(negative, int64s())
    beyond = st.one_of(st.sampled_from((above + 1, INT64_MAX)), st.integers(above + 1, INT64_MAX))
    return st.one_of(negative, beyond)


def money(
    network_currency: str, *, above: int | None = None, missing: bool = True
) -> st.SearchStrategy[common_pb2.Money | None]:
    """A Money with a hostile amount and currency (or missing when missing is true)."""
    built = st.builds(
        lambda amount, currency: common_pb2.Money(amount_minor=amount, currency_code=currency),
        amounts(above=above),
        currencies(network_currency),
    )
    return st.one_of(st.none(), built) if missing else built


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kinds: Mapping[int, Callable[[], st.SearchStrategy[Any]]] = {
        FieldDescriptor.TYPE_STRING: hostile_text,
        FieldDescriptor.TYPE_BYTES: hostile_bytes,
        FieldDescriptor.TYPE_INT64: int64s,
        FieldDescriptor.TYPE_SINT64: int64s,
        FieldDescriptor.TYPE_SFIXED64: int64s,
        FieldDescriptor.TYPE_INT32: _int32s,
        FieldDescriptor.TYPE_SINT32: _int32s,
        FieldDescriptor.TYPE_SFIXED32: _int32s,
        FieldDescriptor.TYPE_UINT64: _uint64s,
        FieldDescriptor.TYPE_FIXED64: _uint64s,
        FieldDescriptor.TYPE_UINT32: _uint32s,
        FieldDescriptor.TYPE_FIXED32: _uint32s,
        FieldDescriptor.TYPE_BOOL: st.booleans,
        FieldDescriptor.TYPE_DOUBLE: lambda: st.floats(allow_nan=True),
        FieldDescriptor.TYPE_FLOAT: lambda: st.floats(width=32, allow_nan=True),
    }
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enums(field)
    if field.type not in kinds:
        raise TypeError(f"no hostile strategy for {field.full_name} (type {field.type})")
    return kinds[field.type]()


def messages(
    descriptor: Descriptor,
    overrides: Mapping[str, st.SearchStrategy[Any]] | None = None,
    *,
    max_depth: int = 4,
) -> st.SearchStrategy[Message]:
    """Messages of descriptor's type with every field hostile, unless overridden.

    overrides maps a dotted field path to the strategy for that field's value:
    a scalar, a message, or None for a missing sub-message. A sub-message
    that is not overridden is missing or drawn recursively (up to max_depth).
    """
    return _messages(descriptor, dict(overrides or {}), "", max_depth)


def _messages(
    descriptor: Descriptor,
    overrides: dict[str, st.SearchStrategy[Any]],
    prefix: str,
    depth: int,
) -> st.SearchStrategy[Message]:
    message_class = GetMessageClass(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        if path in overrides:
            fields[field.name] = overrides[path]
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            if depth <= 0:
                fields[field.name] = st.none()
                continue
            nested = _messages(field.message_type, overrides, f"{path}.", depth - 1)
            if field.is_repeated:
                fields[field.name] = st.lists(nested, max_size=3)
            else:
                fields[field.name] = st.one_of(st.none(), nested)
        elif field.is_repeated:
            fields[field.name] = st.lists(_scalar(field), max_size=3)
        else:
            fields[field.name] = _scalar(field)

    def build(values: dict[str, Any]) -> Message:
        return message_class(**{k: v for k, v in values.items() if v is not None})

    return st.fixed_dictionaries(fields).map(build)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _unknown_field(number: int, wire_type: int, payload: bytes) -> bytes:
    key = _varint((number << 3) | wire_type)
    if wire_type == 0:
        return key + _varint(int.from_bytes(payload[:8].ljust(8, b"\0"), "little"))
    if wire_type == 1:
        return key + payload[:8].ljust(8, b"\0")
    if wire_type == 5:
        return key + payload[:4].ljust(4, b"\0")
    return key + _varint(len(payload)) + payload


def unknown_fields() -> st.SearchStrategy[bytes]:
    """Well-formed fields with numbers no message of the contracts uses (parsers keep them)."""
    field = st.builds(
        _unknown_field,
        st.one_of(st.integers(1000, 18999), st.integers(20000, 2**29 - 1)),
        st.sampled_from((0, 1, 2, 5)),
        st.binary(max_size=64),
    )
    return st.lists(field, max_size=3).map(b"".join)


def parses(message_class: type[Message], data: bytes) -> bool:
    """True if data is a valid serialization of message_class."""
    try:
        message_class.FromString(data)
    except DecodeError:
        return False
    return True


def malformed_bytes(
    message_class: type[Message], valid: st.SearchStrategy[Message]
) -> st.SearchStrategy[bytes]:
    """Byte strings that do not parse as message_class.

    Random bytes, truncated valid messages, over-long varints, invalid wire
    types, field number 0, unbalanced groups and invalid UTF-8 in a field
    declared as string.
    """
    string_fields = [
        f.number
        for f in message_class.DESCRIPTOR.fields
        if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated
    ]
    bad_utf8 = st.sampled_from(
        (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80")
    )
    candidates = st.one_of(
        st.binary(min_size=1, max_size=256),
        st.builds(
            lambda message, cut: message.SerializeToString()[: max(0, cut)],
            valid,
            st.integers(0, 4096),
        ),
        st.just(b"\x08" + b"\xff" * 10 + b"\x01"),  # an 11-byte varint
        st.sampled_from((b"\x0e", b"\x0f", b"\x0b", b"\x0c", b"\x00\x00", b"\x07\x01")),
        st.integers(1, 2**29 - 1).map(lambda n: _varint(n << 3)),  # a key with no value
        st.builds(
            lambda n, length: _varint((n << 3) | 2) + _varint(length) + b"x",
            st.integers(1, 2**29 - 1),
            st.integers(2, 2**32),
        ),  # a length past the end
        *(
            [
                st.builds(
                    lambda number, bad: _varint((number << 3) | 2) + _varint(len(bad)) + bad,
                    st.sampled_from(string_fields),
                    bad_utf8,
                )
            ]
            if string_fields
            else []
        ),
    )
    return candidates.filter(lambda data: not parses(message_class, data))
