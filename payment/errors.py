"""Errors are data: a domain exception carries its gRPC code, an UPPER_SNAKE
reason and metadata, and becomes a ``google.rpc.Status`` with one ``ErrorInfo``
in exactly one place (:func:`to_rpc_status`, used by the error interceptor).

Hierarchy::

    PaynetError                 code            typical reasons
     +-- InvalidArgument        INVALID_ARGUMENT  AMOUNT_MISMATCH, FIELD_INVALID
     +-- NotFound               NOT_FOUND         ORDER_NOT_FOUND, HOLD_NOT_FOUND
     +-- AlreadyExists          ALREADY_EXISTS    IDEMPOTENCY_KEY_REUSED
     +-- FailedPrecondition     FAILED_PRECONDITION INSUFFICIENT_FUNDS, ORDER_ALREADY_PAID
     +-- OutOfRange             OUT_OF_RANGE      CURSOR_BEYOND_END
     +-- PermissionDenied       PERMISSION_DENIED ROLE_NOT_ALLOWED, ACCOUNT_NOT_HELD_BY_CALLER
     +-- Unauthenticated        UNAUTHENTICATED   CERTIFICATE_REVOKED, FOREIGN_TRUST_DOMAIN
     +-- Unavailable            UNAVAILABLE       PEER_UNAVAILABLE
     +-- DeadlineExceeded       DEADLINE_EXCEEDED PEER_TIMEOUT

Messages are written for the caller: they say what is wrong and what to do,
and never contain a secret (instrument number, key, one-time code). A message
or metadata value that quotes the request is cut to a bounded size: the status
travels in trailing metadata, which peers refuse beyond a few KiB, and a
refusal must reach the caller whatever the request held.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "DOMAIN",
    "OUTCOME_UNKNOWN_CODES",
    "AlreadyExists",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PaynetError",
    "PermissionDenied",
    "RemoteError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "bounded",
    "error_info",
    "from_rpc_error",
    "outcome_unknown",
    "peer_error",
    "relayed",
    "to_rpc_status",
]

DOMAIN = "paynet.dev"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
MAX_MESSAGE_BYTES = 512
"""Longest status message sent, in UTF-8 bytes; longer ones are cut."""
MAX_METADATA_VALUE_BYTES = 128
"""Longest ErrorInfo metadata value sent, in UTF-8 bytes; longer ones are cut."""
_CUT = "\u2026"


def bounded(text: str, limit: int) -> str:
    """text, or its first limit UTF-8 bytes (whole code points) followed by an ellipsis."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[: limit - len(_CUT.encode())].decode("utf-8", "ignore") + _CUT


class PaynetError(Exception):
    """A failure the caller can act on, with a reason it can branch on."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, reason: str, message: str, **metadata: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = bounded(message, MAX_MESSAGE_BYTES)
        self.metadata = {k: bounded(str(v), MAX_METADATA_VALUE_BYTES) for k, v in metadata.items()}


class InvalidArgument(PaynetError):
    """The request itself is wrong; retrying it unchanged will fail again."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(PaynetError):
    """The named thing does not exist (for this caller)."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PaynetError):
    """The thing exists already, or an idempotency key was reused for other content."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(PaynetError):
    """The request is valid but the state does not allow it (funds, order status)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class OutOfRange(PaynetError):
    """The request reaches past the end of what exists, such as a stream cursor beyond the
    stream's last event; the caller resynchronises instead of retrying it unchanged."""

    code = grpc.StatusCode.OUT_OF_RANGE


class PermissionDenied(PaynetError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(PaynetError):
    """The caller's identity is missing, foreign or revoked."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(PaynetError):
    """The caller did something too often; retry_after_seconds in the metadata says when
    it may try again."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(PaynetError):
    """A peer node could not be reached; the call may be retried with the same request_id."""

    code = grpc.StatusCode.UNAVAILABLE


class Unimplemented(PaynetError):
    """The node does not implement this RPC (yet)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(PaynetError):
    """The server failed unexpectedly; nothing about the cause is told to the caller."""

    code = grpc.StatusCode.INTERNAL


class DeadlineExceeded(PaynetError):
    """A peer did not answer in time; the outcome is unknown until asked."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


OUTCOME_UNKNOWN_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
    }
)
"""Codes of a failed outbound call whose outcome is unknown: the peer may have done it.

The call is sent again with the same request_id (the peer replays what it did), or the
peer is asked what became of it; it is never taken as a refusal. Any other code is the
peer's answer: nothing was done."""


def outcome_unknown(error: PaynetError) -> bool:
    """Whether a peer's failure leaves the call's outcome unknown (its code is one of
    :data:`OUTCOME_UNKNOWN_CODES`): retry or ask, never undo."""
    return error.code in OUTCOME_UNKNOWN_CODES


_BY_CODE: dict[grpc.StatusCode, type[PaynetError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        OutOfRange,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
    )
}


class RemoteError(PaynetError):
    """An error a peer returned, kept with its code and reason so it can be relayed."""

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(reason, message, **dict(metadata or {}))
        self.code = code


def to_rpc_status(error: PaynetError) -> status_pb2.Status:
    """The google.rpc.Status for a domain error: its code, message and one ErrorInfo."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=error.code.value[0], message=error.message, details=[detail])


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo carried by a failed call, or None if it has none."""
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == STATUS_DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info
    return None


def from_rpc_error(error: grpc.RpcError) -> PaynetError:
    """A peer's failure as a domain error, reason preserved, ready to relay or handle."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    info = error_info(error)
    if info is None:
        reason = {
            grpc.StatusCode.UNAVAILABLE: "PEER_UNAVAILABLE",
            grpc.StatusCode.DEADLINE_EXCEEDED: "PEER_TIMEOUT",
        }.get(code, "PEER_ERROR")
        return RemoteError(code, reason, details or code.name)
    return peer_error(code, info.reason, details or info.reason, info.metadata)


def peer_error(
    code: grpc.StatusCode, reason: str, message: str, metadata: Mapping[str, str]
) -> PaynetError:
    """A peer's refusal as the domain error of its code (FailedPrecondition for
    FAILED_PRECONDITION...), or a RemoteError for a code with no class of its own."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(reason, message, **dict(metadata))
    return RemoteError(code, reason, message, dict(metadata))


T = TypeVar("T")


async def relayed(call: Awaitable[T]) -> T:
    """The result of a call to a peer node, or its failure as a domain error.

    The peer's status code and ErrorInfo reason are kept, so a node relays
    another node's refusal to its own caller unchanged.
    """
    try:
        return await call
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
