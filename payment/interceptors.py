"""The cross-cutting concerns of every server, written once as interceptors.

Order on every call, outermost first:

1. :class:`AccessLog` - one canonical log line per RPC.
2. :class:`PeerAuthorization` - identity from the peer certificate, CRL check,
   role -> RPC table.
3. :class:`payment.admission.CallLimit` - at most ``[limits]
   max_concurrent_calls_per_caller`` calls in progress per caller
   (RESOURCE_EXHAUSTED / TOO_MANY_CONCURRENT_CALLS).
4. :class:`ErrorMapping` - domain errors to status + ErrorInfo; anything
   unexpected to INTERNAL without a stack trace to the caller; a request whose
   bytes do not parse as the method's message to INVALID_ARGUMENT
   (REQUEST_MALFORMED), and one with a field over its contract's bound
   (:mod:`payment.bounds`) to INVALID_ARGUMENT (FIELD_INVALID), after the
   caller was authenticated and authorized.

grpc.aio server interceptors see only the method name, so each one wraps the
handler's behaviour to reach the call's context. A method's wrapped handler
depends on nothing but the method, so each interceptor builds it on the
method's first call and hands the same one to every later call: a call pays
one dict lookup for the whole chain, not a handler built per interceptor.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf.message import Message

from payment import errors
from payment.authz import allowed_roles
from payment.bounds import violation
from payment.config import NetworkConfig, Role
from payment.identity import (
    Identity,
    IdentityError,
    IssuerError,
    RevocationList,
    current_caller,
    parse_certificate,
)
from payment.logs import get_logger
from payment.ratelimit import SlidingWindow

__all__ = [
    "AccessLog",
    "ErrorMapping",
    "MethodWrapper",
    "PeerAuthorization",
    "RefusedRequest",
    "Stream",
    "Unary",
    "abort_with",
    "rewrap",
]

_log = get_logger("paynet.rpc")

Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Stream = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
Deserializer = Callable[[bytes], Any]


@dataclass(frozen=True)
class RefusedRequest:
    """Stands in for a request refused as it was read: not the method's message, or a
    field over the bound its contract gives.

    grpcio would answer bytes that do not parse with UNKNOWN, the parser's
    exception in the message, before any interceptor runs. Reading instead
    yields this placeholder, so the call is authenticated, authorized and
    logged like any other, and :class:`ErrorMapping` refuses it with the
    error (REQUEST_MALFORMED, or FIELD_INVALID naming the field and its
    limit). No servicer, store or log line ever sees the oversized value.
    """

    error: errors.PaynetError
    """Why the request is refused."""


def _tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    """A request parser that returns a RefusedRequest instead of raising, and checks bounds."""
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    type_name = str(getattr(descriptor, "full_name", "the request message"))
    malformed = RefusedRequest(
        errors.InvalidArgument(
            "REQUEST_MALFORMED",
            f"the request is not a valid {type_name} in protobuf binary encoding",
            type=type_name,
        )
    )

    def parse(data: bytes) -> Any:
        try:
            request = deserializer(data)
        except Exception:  # any parse failure: wire format, UTF-8, nesting depth
            return malformed
        if isinstance(request, Message):
            over = violation(request)
            if over is not None:
                return RefusedRequest(over)
        return request

    return parse


async def abort_with(context: grpc.aio.ServicerContext, error: errors.PaynetError) -> None:
    """End the call with the error's status and its ErrorInfo detail."""
    status = errors.to_rpc_status(error)
    await context.abort(
        error.code,
        error.message,
        trailing_metadata=((errors.STATUS_DETAILS_KEY, status.SerializeToString()),),
    )


def rewrap(
    handler: grpc.RpcMethodHandler | None,
    unary: Callable[[Unary], Unary],
    stream: Callable[[Stream], Stream],
    *,
    tolerant: bool = False,
) -> grpc.RpcMethodHandler | None:
    if handler is None:
        return None
    deserializer = handler.request_deserializer
    if tolerant and not handler.request_streaming:
        # Only a single request is parsed before the behaviour runs; a request stream's
        # messages are parsed as the behaviour reads them.
        deserializer = _tolerant(deserializer)
    args = (deserializer, handler.response_serializer)

    def streaming(behavior: Any) -> Any:
        # A streaming behaviour is an async generator, or a coroutine that
        # writes with context.write() (as grpc's own health servicer does).
        return stream(behavior) if inspect.isasyncgenfunction(behavior) else unary(behavior)

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), *args)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), *args)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), *args)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), *args)
    return handler


class MethodWrapper(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """An interceptor that wraps each method's handler once and reuses it.

    Only found methods are kept, so calls to unknown names cannot grow the table.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        wrapped = self._wrapped.get(details.method)
        if wrapped is None:
            wrapped = self._wrap(details.method, await continuation(details))
            if wrapped is not None:
                self._wrapped[details.method] = wrapped
        return wrapped

    @abc.abstractmethod
    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler | None
    ) -> grpc.RpcMethodHandler | None:
        """The method's handler with this interceptor's behaviour around it."""


class AccessLog(MethodWrapper):
    """Logs one line per RPC: method, peer identity and certificate serial, request id,
    status, duration.

    The status goes in ``status``, not ``code``: ``code`` is redacted as a one-time code.
    """

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler | None
    ) -> grpc.RpcMethodHandler | None:
        def finish(
            request: Any,
            context: grpc.aio.ServicerContext,
            started: float,
            failure: BaseException | None,
        ) -> None:
            code = context.code()
            if code is None:
                cancelled = isinstance(failure, asyncio.CancelledError)
                code = (
                    grpc.StatusCode.CANCELLED
                    if cancelled
                    else grpc.StatusCode.UNKNOWN
                    if failure
                    else grpc.StatusCode.OK
                )
            if isinstance(code, int):
                code = next((c for c in grpc.StatusCode if c.value[0] == code), code)
            identity = current_caller.get(None)
            _log.info(
                "rpc",
                method=method,
                peer=str(identity) if identity else context.peer(),
                peer_serial=identity.serial_text if identity else None,
                request_id=getattr(request, "request_id", None) or None,
                status=getattr(code, "name", str(code)),
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )

        def unary(behavior: Unary) -> Unary:
            async def logged(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                failure: BaseException | None = None
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    finish(request, context, started, failure)

            return logged

        def stream(behavior: Stream) -> Stream:
            async def logged(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                started = time.perf_counter()
                failure: BaseException | None = None
                try:
                    async for item in behavior(request, context):
                        yield item
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    finish(request, context, started, failure)

            return logged

        return rewrap(handler, unary, stream)


class PeerAuthorization(MethodWrapper):
    """Authenticates the caller by its certificate and authorizes the RPC by its role.

    Refuses with UNAUTHENTICATED a call without a certificate identity, from
    another trust domain, from a participant the network does not know, or
    with a revoked certificate; refuses with PERMISSION_DENIED a role the
    table does not allow. The verified identity is available to servicers as
    :func:`payment.identity.caller`.
    """

    def __init__(self, network: NetworkConfig, revocations: RevocationList) -> None:
        super().__init__()
        self._network = network
        self._revocations = revocations
        self._failures = SlidingWindow(network.limits.failed_authentications_per_minute)
        self._known = {(n.role, n.name) for n in network.nodes} | {
            (Role.CUSTOMER, c.name) for c in network.customers
        }

    def authenticate(self, context: grpc.aio.ServicerContext) -> Identity:
        """The verified caller, or a PaynetError saying why there is none.

        A certificate refused more than the limit per minute is refused
        RESOURCE_EXHAUSTED / AUTHENTICATION_RATE_LIMITED until the minute has passed.
        """
        pems = context.auth_context().get("x509_pem_cert")
        if not pems:
            raise errors.Unauthenticated(
                "CLIENT_CERTIFICATE_MISSING", "a client certificate from the network CA is required"
            )
        key = pems[0]  # the certificate itself: no work per call beyond a dict lookup
        wait = self._failures.retry_after(key)
        if wait is not None:
            raise errors.ResourceExhausted(
                "AUTHENTICATION_RATE_LIMITED",
                f"this certificate failed authentication {self._failures.limit} times in a "
                f"minute; fix it and try again in {wait} s",
                retry_after_seconds=wait,
            )
        try:
            return self._identify(pems[0])
        except errors.Unauthenticated:
            self._failures.hit(key)
            raise

    def _identify(self, pem: bytes) -> Identity:
        try:
            identity = parse_certificate(pem, self._revocations.ca)
        except IssuerError as exc:
            raise errors.Unauthenticated("ISSUER_NOT_NETWORK_CA", str(exc)) from None
        except (IdentityError, ValueError) as exc:
            raise errors.Unauthenticated("IDENTITY_INVALID", str(exc)) from None
        if identity.trust_domain != self._network.trust_domain:
            raise errors.Unauthenticated(
                "FOREIGN_TRUST_DOMAIN",
                f"certificate is for trust domain {identity.trust_domain!r}, "
                f"this network is {self._network.trust_domain!r}",
                trust_domain=identity.trust_domain,
            )
        if (identity.role, identity.name) not in self._known:
            raise errors.Unauthenticated(
                "UNKNOWN_PARTICIPANT",
                f"{identity} is not a participant of this network",
                identity=identity.uri,
            )
        if self._revocations.is_revoked(identity.serial):
            raise errors.Unauthenticated(
                "CERTIFICATE_REVOKED",
                f"the certificate of {identity} (serial {identity.serial:x}) is revoked; "
                "ask the network CA for a new one",
                identity=identity.uri,
            )
        return identity

    def authorize(self, method: str, identity: Identity) -> None:
        """Raise PermissionDenied unless the table lets identity's role call method."""
        roles = allowed_roles(method)
        if identity.role not in roles:
            raise errors.PermissionDenied(
                "ROLE_NOT_ALLOWED",
                f"{identity.role} {identity.name!r} may not call {method}",
                method=method,
                role=str(identity.role),
                allowed=",".join(sorted(str(r) for r in roles)) or "none",
            )

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler | None
    ) -> grpc.RpcMethodHandler | None:
        async def admit(context: grpc.aio.ServicerContext) -> None:
            try:
                identity = self.authenticate(context)
                # Known before the role check, so a refusal is logged with who was refused.
                current_caller.set(identity)
                structlog.contextvars.bind_contextvars(peer=identity.uri)
                self.authorize(method, identity)
            except errors.PaynetError as exc:
                await abort_with(context, exc)

        def unary(behavior: Unary) -> Unary:
            async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await admit(context)
                return await behavior(request, context)

            return guarded

        def stream(behavior: Stream) -> Stream:
            async def guarded(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                await admit(context)
                async for item in behavior(request, context):
                    yield item

            return guarded

        return rewrap(handler, unary, stream)


class ErrorMapping(MethodWrapper):
    """Turns domain errors into status + ErrorInfo, and surprises into INTERNAL."""

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
        if isinstance(exc, errors.PaynetError):
            await abort_with(context, exc)
        if isinstance(exc, NotImplementedError):
            # The generated base servicer raises this for an RPC a node does not implement.
            await abort_with(
                context,
                errors.Unimplemented(
                    "RPC_NOT_IMPLEMENTED", f"{method} is not implemented by this node"
                ),
            )
        _log.error("rpc.unexpected_error", method=method, error_type=type(exc).__name__)
        await abort_with(
            context,
            errors.Internal(
                "INTERNAL_ERROR", "the server failed unexpectedly; retry with the same request_id"
            ),
        )

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler | None
    ) -> grpc.RpcMethodHandler | None:
        def unary(behavior: Unary) -> Unary:
            async def mapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, RefusedRequest):
                    await abort_with(context, request.error)
                try:
                    return await behavior(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._fail(context, method, exc)

            return mapped

        def stream(behavior: Stream) -> Stream:
            async def mapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                if isinstance(request, RefusedRequest):
                    await abort_with(context, request.error)
                try:
                    async for item in behavior(request, context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._fail(context, method, exc)

            return mapped

        return rewrap(handler, unary, stream, tolerant=True)
