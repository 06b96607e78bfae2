"""The gateway's channels to issuers, and how their answers are relayed.

One long-lived mTLS channel per bank, opened on first use (inside the event
loop) and closed with the app; after a certificate rotation, new calls go on a
new channel with the new certificate. Calls on them carry the deadline of
``[timeouts] node_call_seconds``. A failed call becomes a domain error that keeps
the issuer's status code and reason, so the merchant sees what the issuer said.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from interbank.v1 import authorization_pb2_grpc

from payment.config import NodeConfig
from payment.tls import Channels

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import AcquirerServiceAsyncStub, IssuerServiceAsyncStub

__all__ = ["AcquirerLookup", "IssuerChannels", "IssuerLookup"]


IssuerLookup = Callable[[NodeConfig], "IssuerServiceAsyncStub"]
"""Finds the IssuerService stub of a bank node."""

AcquirerLookup = Callable[[NodeConfig], "AcquirerServiceAsyncStub"]
"""Finds the AcquirerService stub of a bank node."""


class IssuerChannels:
    """Shared mTLS channels to the network's banks, opened on first use with the
    gateway's current certificate (a rotation opens new ones)."""

    def __init__(self, channels: Channels) -> None:
        self._channels = channels

    def issuer(self, bank: NodeConfig) -> IssuerServiceAsyncStub:
        """The IssuerService stub of a bank, over its long-lived channel."""
        return cast(
            "IssuerServiceAsyncStub",
            authorization_pb2_grpc.IssuerServiceStub(self._channels.get(bank.address)),
        )

    def acquirer(self, bank: NodeConfig) -> AcquirerServiceAsyncStub:
        """The AcquirerService stub of a bank, over the same channel."""
        return cast(
            "AcquirerServiceAsyncStub",
            authorization_pb2_grpc.AcquirerServiceStub(self._channels.get(bank.address)),
        )

    async def close(self) -> None:
        """Close every channel opened so far."""
        await self._channels.close()
