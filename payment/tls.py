"""Mutual TLS for servers and channels, from a participant's PKI material.

Every server requires and verifies a client certificate from the network CA;
every channel presents the caller's certificate and verifies the server's
against the same CA. TLS is passed around as credential objects, never as
loose path strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from payment.pki import Pki

__all__ = ["CHANNEL_OPTIONS", "TlsIdentity", "secure_channel"]

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
    def load(cls, pki: Pki, name: str) -> TlsIdentity:
        """Read participant name's material from a PKI directory."""
        return cls(
            pki.ca_cert.read_bytes(), pki.cert(name).read_bytes(), pki.key(name).read_bytes()
        )

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
