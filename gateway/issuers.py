"""The gateway's channels to issuers, and how their answers are relayed.

One long-lived mTLS channel per bank, opened on first use (inside the event
loop) and closed with the app. A failed call becomes a domain error that keeps
the issuer's status code and reason, so the merchant sees what the issuer said.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import grpc
from interbank.v1 import authorization_pb2_grpc

from payment.config import NodeConfig
from payment.tls import TlsIdentity, secure_channel

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import AcquirerServiceAsyncStub, IssuerServiceAsyncStub

__all__ = ["CALL_TIMEOUT_S", "AcquirerLookup", "IssuerChannels", "IssuerLookup"]

CALL_TIMEOUT_S = 5.0
"""Deadline of every outbound call, in seconds."""


IssuerLookup = Callable[[NodeConfig], "IssuerServiceAsyncStub"]
"""Finds the IssuerService stub of a bank node."""

AcquirerLookup = Callable[[NodeConfig], "AcquirerServiceAsyncStub"]
"""Finds the AcquirerService stub of a bank node."""


class IssuerChannels:
    """Lazily opened, shared mTLS channels to the network's banks."""

    def __init__(self, tls: TlsIdentity) -> None:
        self._tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, IssuerServiceAsyncStub] = {}

    def issuer(self, bank: NodeConfig) -> IssuerServiceAsyncStub:
        """The IssuerService stub of a bank, over its long-lived channel."""
        stub = self._stubs.get(bank.name)
        if stub is None:
            stub = cast(
                "IssuerServiceAsyncStub", authorization_pb2_grpc.IssuerServiceStub(self._to(bank))
            )
            self._stubs[bank.name] = stub
        return stub

    def acquirer(self, bank: NodeConfig) -> AcquirerServiceAsyncStub:
        """The AcquirerService stub of a bank, over the same channel."""
        return cast(
            "AcquirerServiceAsyncStub", authorization_pb2_grpc.AcquirerServiceStub(self._to(bank))
        )

    def _to(self, bank: NodeConfig) -> grpc.aio.Channel:
        channel = self._channels.get(bank.name)
        if channel is None:
            channel = secure_channel(bank.address, self._tls)
            self._channels[bank.name] = channel
        return channel

    async def close(self) -> None:
        """Close every channel opened so far."""
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        for channel in channels:
            await channel.close()
