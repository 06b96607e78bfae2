"""A customer's client profile: what a client in any language needs to buy.

``paynet client-profile --network FILE --customer NAME`` prints it as JSON, so
a client written in TypeScript, Go or Java never parses the network file:

- ``ca_cert``, ``cert``, ``key``: the network CA and the customer's TLS
  certificate and key (PEM files) for mutual TLS;
- ``signing_key``: the customer's Ed25519 dual-signature key (PKCS#8 PEM file);
- ``bank`` and ``merchant``: name and ``host:port`` of the customer's bank
  (device inbox, challenge answers, balances) and of the merchant (orders);
- ``account_id`` and the two ``instruments`` (card and bank account) with the
  bank code they route on.

The instrument numbers are secrets of the dev network: the profile is for the
customer's own client and is written with mode 0600 when saved to a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from payment.config import NetworkConfig
from payment.pki import Pki

__all__ = ["client_profile", "write_client_profile"]


def client_profile(
    network: NetworkConfig, customer: str, merchant: str | None = None
) -> dict[str, Any]:
    """The profile of customer, buying from merchant (default: the network's first).

    KeyError, with a message naming what is missing, if the network file has
    no such customer or merchant.
    """
    try:
        config = network.customer(customer)
    except KeyError:
        raise KeyError(f"the network file has no customer {customer!r}") from None
    try:
        shop = network.node(
            network.merchant(merchant).name if merchant else network.merchants[0].name
        )
    except (KeyError, IndexError):
        raise KeyError(f"the network file has no merchant {merchant or ''!r}") from None
    bank = network.node(config.bank)
    pki = Pki(network.pki_dir)
    return {
        "customer": config.name,
        "ca_cert": str(pki.ca_cert),
        "cert": str(pki.cert(config.name)),
        "key": str(pki.key(config.name)),
        "signing_key": str(pki.signing_key(config.name)),
        "bank": {"name": bank.name, "address": bank.address, "bank_code": bank.bank_code},
        "merchant": {"name": shop.name, "address": shop.address},
        "account_id": config.account_id,
        "currency": network.currency,
        "instruments": {
            "card": {
                "kind": "INSTRUMENT_KIND_CARD",
                "bank_code": bank.bank_code,
                "number": config.card_number,
            },
            "account": {
                "kind": "INSTRUMENT_KIND_BANK_ACCOUNT",
                "bank_code": bank.bank_code,
                "number": config.account_number,
            },
        },
    }


def write_client_profile(
    network: NetworkConfig, customer: str, path: Path, merchant: str | None = None
) -> Path:
    """Save the profile as JSON, readable only by its owner (it holds instrument numbers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(client_profile(network, customer, merchant), handle, indent=2)
        handle.write("\n")
    return path
