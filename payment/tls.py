"""Mutual TLS for servers and channels, from a participant's PKI material.

Every server requires and verifies a client certificate from the network CA;
every channel presents the caller's certificate and verifies the server's
against the same CA. TLS is passed around as credential objects, never as
loose path strings.

A running node holds a :class:`NodeIdentity`, which re-reads its certificate
and key when their files change (``paynet pki rotate``): the server presents
the new certificate from the next handshake on (dynamic server credentials),
and :class:`Channels` opens new outbound channels with it, leaving calls and
streams in flight on the old ones to finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from payment.identity import serial_text
from payment.pki import Pki

__all__ = [
    "CHANNEL_OPTIONS",
    "SERVER_OPTIONS",
    "Channels",
    "NodeIdentity",
    "TlsIdentity",
    "secure_channel",
]

_log = structlog.get_logger("paynet.tls")

RELOAD_CHECK_S = 1.0
"""How often, at most, a node looks at its certificate files for a rotation."""

ROTATION_SETTLE_S = 2.0
"""How long a reader waits for a rotation caught between its key and its certificate."""

CHANNEL_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    # A restarted peer is reached again within about a second, not after minutes of backoff.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
"""Options of every channel between nodes: keepalive, message size, quick reconnects."""

SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    # The other half of CHANNEL_OPTIONS' keepalive: servers accept its pings.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
    # A connection's stream limit (grpc.max_concurrent_streams) counts the streams open
    # on the wire, as HTTP/2 says, so a client over it waits for a free stream. gRPC's
    # default ("overload protection") also counts streams closed on the wire that the
    # server has yet to free, and resets the client's next streams with REFUSED_STREAM,
    # which its callers see as UNAVAILABLE without a reason. Each caller's calls in
    # progress are bounded by payment.admission.CallLimit instead.
    ("grpc.http.overload_protection", 0),
)
"""Options of every server: CHANNEL_OPTIONS' pings are welcome; one server per port; a
client over a connection's stream limit waits for a stream instead of having it reset."""


@dataclass(frozen=True, repr=False)
class TlsIdentity:
    """A participant's certificate and key, and the CA that anchors the network."""

    ca_pem: bytes
    """The network CA certificate."""
    cert_pem: bytes
    """The participant's certificate chain."""
    key_pem: bytes
    """The participant's private key. Never logged: repr hides it."""

    @classmethod
    def load(cls, pki: Pki, name: str, settle_s: float = ROTATION_SETTLE_S) -> TlsIdentity:
        """Read participant name's material from a PKI directory: a key and certificate
        that belong together.

        ``paynet pki rotate`` replaces the key file, then the certificate file, each in
        one step; a reader between the two sees a new key with the old certificate. Such
        a pair is read again until it matches, for up to settle_s seconds; after that
        (or at once with settle_s=0) it raises ValueError.
        """
        deadline = time.monotonic() + settle_s
        while True:
            identity = cls(
                pki.ca_cert.read_bytes(), pki.cert(name).read_bytes(), pki.key(name).read_bytes()
            )
            if _pair_matches(identity):
                return identity
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"the private key of {name!r} does not belong to its certificate: "
                    f"re-issue both with `paynet pki rotate {name}`"
                )
            time.sleep(0.01)

    def __repr__(self) -> str:
        return "TlsIdentity(<redacted>)"

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server side: present our certificate, require and verify the client's."""
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.ca_pem,
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client side: present our certificate, verify the server's against the CA."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )


def secure_channel(target: str, identity: TlsIdentity) -> grpc.aio.Channel:
    """A long-lived mTLS channel to target (host:port); share it, do not reopen per call."""
    return grpc.aio.secure_channel(target, identity.channel_credentials(), options=CHANNEL_OPTIONS)


def _pair_matches(tls: TlsIdentity) -> bool:
    """True if the private key belongs to the certificate (not a half-written rotation)."""
    cert = x509.load_pem_x509_certificate(tls.cert_pem)
    key = serialization.load_pem_private_key(tls.key_pem, password=None)
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw))


class NodeIdentity:
    """A node's TLS identity, re-read when its files change, with a generation number.

    The files are looked at no more than once per :data:`RELOAD_CHECK_S`. A
    certificate and key that do not belong together (a rotation caught half
    written) or cannot be read are not taken: the node keeps its identity and
    looks again later. Thread-safe: gRPC asks for server credentials from its
    own threads.
    """

    def __init__(
        self,
        load: Callable[[], TlsIdentity],
        watched: Sequence[Path] = (),
        first: TlsIdentity | None = None,
    ) -> None:
        self._load = load
        self._watched = tuple(watched)
        self._lock = threading.Lock()
        self._identity = first if first is not None else load()
        self._generation = 0
        self._stamp = self._stamp_now()
        self._checked_at = time.monotonic()

    @classmethod
    def load(cls, pki: Pki, name: str) -> NodeIdentity:
        """Participant name's identity from a PKI directory, following its rotations."""
        # At start a half-written rotation is waited out; later it is not waited for
        # under the lock (settle_s=0) but deferred to the next look.
        return cls(
            lambda: TlsIdentity.load(pki, name, settle_s=0),
            (pki.cert(name), pki.key(name), pki.ca_cert),
            first=TlsIdentity.load(pki, name),
        )

    @classmethod
    def fixed(cls, identity: TlsIdentity) -> NodeIdentity:
        """An identity that never changes (tests, benchmarks)."""
        return cls(lambda: identity)

    def __repr__(self) -> str:
        return f"NodeIdentity(generation={self._generation})"

    def _stamp_now(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self._watched:
            try:
                stat = path.stat()
            except OSError:
                stamps.append((-1, -1))
            else:
                stamps.append((stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def current(self) -> tuple[TlsIdentity, int]:
        """The identity to use now, and its generation (1 more after each rotation)."""
        with self._lock:
            moment = time.monotonic()
            if self._watched and moment - self._checked_at >= RELOAD_CHECK_S:
                self._checked_at = moment
                stamp = self._stamp_now()
                if stamp != self._stamp:
                    self._reload(stamp)
            return self._identity, self._generation

    def _reload(self, stamp: tuple[tuple[int, int], ...]) -> None:
        try:
            identity = self._load()
        except (OSError, ValueError):
            _log.warning("tls.reload_deferred", why="certificate and key unreadable or unmatched")
            return
        self._identity = identity
        self._generation += 1
        self._stamp = stamp
        serial = x509.load_pem_x509_certificate(identity.cert_pem).serial_number
        _log.info("tls.rotated", generation=self._generation, serial=serial_text(serial))

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server side, following rotations: each new handshake gets the current certificate."""
        identity, generation = self.current()
        served = [generation]

        def configuration(tls: TlsIdentity) -> grpc.ServerCertificateConfiguration:
            return grpc.ssl_server_certificate_configuration(
                [(tls.key_pem, tls.cert_pem)], root_certificates=tls.ca_pem
            )

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            tls, now_generation = self.current()
            if now_generation == served[0]:
                return None
            served[0] = now_generation
            return configuration(tls)

        return grpc.dynamic_ssl_server_credentials(
            configuration(identity), fetch, require_client_authentication=True
        )


class Channels:
    """Long-lived mTLS channels, one per target, opened with the node's current identity.

    After a rotation the next :meth:`get` opens a new channel with the new
    certificate. The old channel stays open until :meth:`close`, so calls and
    streams already on it finish with the certificate they started with.
    """

    def __init__(self, identity: NodeIdentity) -> None:
        self._identity = identity
        self._open: dict[str, tuple[int, grpc.aio.Channel]] = {}
        self._retired: list[grpc.aio.Channel] = []

    def get(self, target: str) -> grpc.aio.Channel:
        """The channel to target (host:port), opened with the current certificate."""
        tls, generation = self._identity.current()
        opened = self._open.get(target)
        if opened is not None and opened[0] == generation:
            return opened[1]
        if opened is not None:
            self._retired.append(opened[1])
        channel = secure_channel(target, tls)
        self._open[target] = (generation, channel)
        return channel

    async def close(self) -> None:
        """Close every channel, current and retired."""
        channels = [channel for _gen, channel in self._open.values()] + self._retired
        self._open.clear()
        self._retired.clear()
        for channel in channels:
            await channel.close()
