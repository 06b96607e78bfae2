"""Calling any RPC with raw bytes over mTLS, and judging what came back.

:class:`Harness` keeps one channel per (caller, node), sends serialized
requests through generic (identity-serializer) method handles, and turns the
answer into an :class:`Outcome`: the status code, the ErrorInfo of a refusal,
the response bytes of a success. :meth:`Harness.check` runs one case and
asserts everything the hostile-input tests promise: a precise status with an
ErrorInfo reason, nothing written on a refusal, the node still serving, no
unexpected error in its log, and, after any case that changed a bank's
ledger, the network audit passing (so a case that creates or destroys money
fails the suite where it happens).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from ops.audit import audit_network
from payment import errors
from payment.config import NetworkConfig, Role
from payment.notifications import SUBSCRIBED_HEADER
from payment.pki import Pki
from payment.tls import TlsIdentity

from .network import RunningNetwork, Snapshot, Stores, changed_tables

__all__ = [
    "AUDITS",
    "CASES",
    "DEFECTS",
    "PRECISE_CODES",
    "Allowance",
    "Harness",
    "Outcome",
    "Tables",
    "Target",
]

Tables = frozenset[tuple[str, str]]
"""A set of (node, table)."""

CASES: Counter[tuple[str, str]] = Counter()
"""Cases sent per (RPC, kind of case); printed in the terminal summary."""

AUDITS: Counter[str] = Counter()
"""Audits run after money-moving cases, per RPC; printed in the terminal summary."""

MONEY_TABLES = frozenset({"accounts", "transfers"})
"""The tables of a bank's ledger: a case that changes one of them moved money."""

DEFECTS: Counter[tuple[str, str, str]] = Counter()
"""Writes of known defects seen, per (RPC, reason, node.table); printed in the summary."""


@dataclass(frozen=True)
class Allowance:
    """What one outcome may write."""

    tables: Tables | None
    """The (node, table)s it may change; None for any."""
    defects: Tables = frozenset()
    """Tables it changes only because of a known defect (reported, tracked by an xfail)."""


PRECISE_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
"""Codes a refusal of a hostile request may carry: never UNKNOWN or INTERNAL."""

_REASON = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


def _is_problem(line: str) -> bool:
    """An unexpected error, an error-level line or a traceback, judged by the line's fields
    (a request may carry any text, markers included, into an access-log line)."""
    try:
        record = json.loads(line)
    except ValueError:
        return "Traceback" in line  # a raw traceback is not JSON
    if not isinstance(record, dict):
        return False
    return (
        record.get("event") == "rpc.unexpected_error"
        or record.get("level") in ("error", "critical")
        or "exception" in record
    )


@dataclass(frozen=True)
class Outcome:
    """How one call ended."""

    code: grpc.StatusCode
    """The status code."""
    reason: str | None = None
    """The ErrorInfo reason of a refusal (None if it carried none)."""
    domain: str | None = None
    """The ErrorInfo domain."""
    metadata: dict[str, str] = field(default_factory=dict)
    """The ErrorInfo metadata."""
    details: str = ""
    """The status message."""
    response: bytes | None = None
    """The serialized response of a unary success, or the first streamed one."""

    @property
    def ok(self) -> bool:
        """True for a success."""
        return self.code is grpc.StatusCode.OK

    def __str__(self) -> str:
        if self.ok:
            return "OK"
        return f"{self.code.name} {self.reason} ({self.details[:200]!r})"


def _outcome_of(exc: grpc.RpcError) -> Outcome:
    info = errors.error_info(exc)
    return Outcome(
        code=exc.code(),
        reason=info.reason if info else None,
        domain=info.domain if info else None,
        metadata=dict(info.metadata) if info else {},
        details=exc.details() or "",
    )


@dataclass(frozen=True)
class Target:
    """One RPC on one node, called with one participant's certificate."""

    method: str
    """Full method name, /package.Service/Method."""
    node: str
    """The node serving it."""
    caller: str
    """The participant whose certificate calls it (a role the RPC admits)."""
    streaming: bool = False
    """True for a server-streaming RPC."""


class Harness:
    """Channels to every node as any participant, and the stores to watch."""

    def __init__(self, running: RunningNetwork) -> None:
        self.running = running
        self.network: NetworkConfig = running.network
        self._pki = Pki(self.network.pki_dir)
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self._identities: list[TlsIdentity] = []
        self.stores = Stores(self.network)
        self._log_offsets = {name: self._log_path(name).stat().st_size for name in running.procs}
        self._banks = {n.name for n in self.network.nodes if n.role in (Role.BANK, Role.SETTLEMENT)}

    def assert_audit_passes(self, where: str) -> None:
        """Every invariant of ``paynet audit`` holds, total money first among them."""
        AUDITS[where.split(" ", 1)[0].lstrip("/")] += 1
        report = asyncio.run(audit_network(self.network, settle_seconds=10.0))
        failed = {c.name: c.detail for c in report.checks if not c.ok}
        assert report.ok, f"{where}: the audit fails afterwards: {failed}"

    def settle(self, where: str, *, still_s: float = 1.0, timeout_s: float = 30.0) -> None:
        """Wait until no store has changed for still_s (a case's background work, such as a
        cash letter, is done), then assert the audit passes and no node logged a problem."""
        deadline = time.monotonic() + timeout_s
        last, since = self.stores.snapshot(), time.monotonic()
        while time.monotonic() - since < still_s:
            assert time.monotonic() < deadline, f"{where}: the stores kept changing"
            time.sleep(0.1)
            now = self.stores.snapshot()
            if now != last:
                last, since = now, time.monotonic()
        self.assert_audit_passes(where)
        problems = self.log_problems()
        assert not problems, f"{where}: node logged {problems}"

    def close(self) -> None:
        """Close every channel and store connection."""
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self.stores.close()

    def channel(self, caller: str, node: str) -> grpc.Channel:
        """The mTLS channel to node presenting caller's certificate."""
        key = (caller, node)
        if key not in self._channels:
            tls = TlsIdentity.load(self._pki, caller)
            self._channels[key] = grpc.secure_channel(
                self.network.node(node).address, tls.channel_credentials()
            )
        return self._channels[key]

    def _channel_as(self, identity: TlsIdentity, node: str) -> grpc.Channel:
        """A channel to node presenting identity (a certificate not from the PKI's files)."""
        key = (f"identity:{id(identity)}", node)
        if key not in self._channels:
            self._identities.append(identity)  # kept alive, so its id names it alone
            self._channels[key] = grpc.secure_channel(
                self.network.node(node).address, identity.channel_credentials()
            )
        return self._channels[key]

    def invoke(
        self,
        target: Target,
        payload: bytes,
        *,
        timeout: float = 20.0,
        identity: TlsIdentity | None = None,
    ) -> Outcome:
        """Send payload (request bytes, unparsed) and report how the call ended.

        The call presents target.caller's certificate, or identity if given.
        """
        channel = (
            self.channel(target.caller, target.node)
            if identity is None
            else self._channel_as(identity, target.node)
        )
        if target.streaming:
            return self._invoke_stream(channel, target.method, payload, timeout)
        call: Callable[..., bytes] = channel.unary_unary(target.method)
        try:
            response = call(payload, timeout=timeout)
        except grpc.RpcError as exc:
            return _outcome_of(exc)
        return Outcome(grpc.StatusCode.OK, response=response)

    def _invoke_stream(
        self, channel: grpc.Channel, method: str, payload: bytes, timeout: float
    ) -> Outcome:
        """A subscription: accepted once the server sends its headers; then cancelled."""
        stream: Iterator[bytes] = channel.unary_stream(method)(payload, timeout=timeout)
        try:
            headers = dict(stream.initial_metadata() or ())  # type: ignore[attr-defined]
            if SUBSCRIBED_HEADER in headers:
                return Outcome(grpc.StatusCode.OK, response=b"")
            first = next(stream)
        except grpc.RpcError as exc:
            return _outcome_of(exc)
        finally:
            stream.cancel()  # type: ignore[attr-defined]
        return Outcome(grpc.StatusCode.OK, response=first)

    def serving(self, node: str) -> bool:
        """True if node answers a health check, asked with its own certificate."""
        check = self.channel(node, node).unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check(health_pb2.HealthCheckRequest(), timeout=5.0)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def _log_path(self, name: str) -> Path:
        return self.running.workdir / "logs" / f"{name}.log"

    def log_problems(self) -> list[str]:
        """Lines logged since the last call that show an unexpected error or a traceback."""
        problems = []
        for name, offset in self._log_offsets.items():
            with self._log_path(name).open("rb") as log:
                log.seek(offset)
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
            self._log_offsets[name] = offset + len(complete)
            problems += [
                f"{name}: {line[:300]}"
                for line in complete.decode("utf-8", "replace").splitlines()
                if _is_problem(line)
            ]
        return problems

    def check(
        self,
        target: Target,
        payload: bytes,
        *,
        kind: str,
        judge: Callable[[Outcome], Allowance],
        identity: TlsIdentity | None = None,
    ) -> Outcome:
        """Send one hostile case and assert the promises of the hostile-input suite.

        judge inspects the outcome (raising AssertionError if it is not one
        the RPC may give) and says what that outcome may change. A refusal
        must carry a precise code and a paynet.dev ErrorInfo, and may change
        only what judge allows (by default nothing).
        """
        CASES[(target.method.lstrip("/"), kind)] += 1
        before = self.stores.snapshot()
        outcome = self.invoke(target, payload, identity=identity)
        after = self.stores.snapshot()
        where = f"{target.method} on {target.node} as {target.caller} ({kind})"
        if not outcome.ok:
            assert outcome.code in PRECISE_CODES, f"{where}: imprecise status {outcome}"
            if outcome.code is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                assert outcome.domain == errors.DOMAIN, f"{where}: no paynet ErrorInfo: {outcome}"
                assert outcome.reason and _REASON.match(outcome.reason), f"{where}: {outcome}"
        allowance = judge(outcome)
        allowed = allowance.tables
        if allowed is not None:
            allowed = allowed | allowance.defects
        self.assert_writes(where, outcome, before, after, allowed)
        changed = set(changed_tables(before, after))
        for node, table in changed & allowance.defects:
            DEFECTS[(target.method.lstrip("/"), outcome.reason or "OK", f"{node}.{table}")] += 1
        if any(table in MONEY_TABLES and node in self._banks for node, table in changed):
            self.assert_audit_passes(where)
        assert self.serving(target.node), f"{where}: node stopped serving after {outcome}"
        problems = self.log_problems()
        assert not problems, f"{where}: node logged {problems}"
        return outcome

    @staticmethod
    def assert_writes(
        where: str, outcome: Outcome, before: Snapshot, after: Snapshot, allowed: Tables | None
    ) -> None:
        """Every changed (node, table) must be in allowed (None allows any)."""
        if allowed is None:
            return
        changed = changed_tables(before, after)
        unexpected = {key: counts for key, counts in changed.items() if key not in allowed}
        assert not unexpected, (
            f"{where}: {outcome} wrote (node, table): (rows before, after) {unexpected}"
        )
