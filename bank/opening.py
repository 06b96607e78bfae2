"""Opening a bank's and the settlement bank's books from the network file.

Runs on every start and is idempotent: an account is created, and its opening
balance posted, only the first time. The money of every holder at a bank is
mirrored by the bank's reserve at the settlement bank, so total money across
the network starts equal to :meth:`NetworkConfig.total_opening_money`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3

from interbank.v1 import common_pb2

from bank import ledger
from payment.config import NetworkConfig, NodeConfig, Role
from payment.identity import spiffe_id
from payment.pki import Pki

__all__ = [
    "CENTRAL",
    "CLEARING",
    "OUTSTANDING",
    "RESERVE",
    "SUSPENSE",
    "instrument_hash",
    "open_bank_books",
    "open_settlement_books",
    "settlement_reserve",
]

RESERVE = "@reserve"
"""The bank's mirror of its reserve at the settlement bank (debit-normal).

Ids starting with "@" cannot clash with a holder's account id from the network file.
"""
SUSPENSE = "@suspense"
"""Money debited from a customer and not yet settled to the acquirer."""
OUTSTANDING = "@cash-outstanding"
"""The bank's e-cash outstanding liability: the face value of its coins withdrawn and
not yet deposited (credit-normal)."""
CENTRAL = "@central"
"""The settlement bank's issuance account: the source of every reserve."""


CLEARING = "@clearing"
"""The settlement bank's net settlement account: net debtors pay in, net creditors are
paid out, all in one transaction, so it is back to 0 after every window."""


def settlement_reserve(bank_code: str) -> str:
    """The settlement bank's account id of a member bank's reserve."""
    return f"@reserve:{bank_code}"


def instrument_hash(kind: common_pb2.InstrumentKind.ValueType, number: str) -> bytes:
    """What the issuer stores instead of an instrument number: SHA-256 of kind and number."""
    name = common_pb2.InstrumentKind.Name(kind)
    return hashlib.sha256(f"{name}\x00{number}".encode()).digest()


def open_bank_books(
    conn: sqlite3.Connection, network: NetworkConfig, node: NodeConfig, *, now: dt.datetime
) -> int:
    """Open this bank's accounts, instruments and customer keys; returns accounts opened."""
    currency = network.currency
    ledger.create_account(conn, RESERVE, "reserve", currency, now=now)
    ledger.create_account(conn, SUSPENSE, "suspense", currency, now=now)
    ledger.create_account(conn, OUTSTANDING, "outstanding", currency, now=now)
    opened = 0
    pki = Pki(network.pki_dir)
    for customer in network.customers:
        if customer.bank != node.name:
            continue
        uri = spiffe_id(network.trust_domain, Role.CUSTOMER, customer.name)
        opened += _open_holder(
            conn, customer.account_id, uri, customer.opening_balance_minor, currency, now
        )
        for kind, number in (
            (common_pb2.INSTRUMENT_KIND_BANK_ACCOUNT, customer.account_number),
            (common_pb2.INSTRUMENT_KIND_CARD, customer.card_number),
        ):
            conn.execute(
                "INSERT OR IGNORE INTO instruments (instrument_hash, account_id, customer_name)"
                " VALUES (?, ?, ?)",
                (instrument_hash(kind, number), customer.account_id, customer.name),
            )
        public_hex = pki.signing_public_key(customer.name).read_text(encoding="ascii").strip()
        conn.execute(
            "INSERT OR IGNORE INTO customer_keys (customer_name, public_key_hex) VALUES (?, ?)",
            (customer.name, public_hex),
        )
    for merchant in network.merchants:
        if merchant.bank != node.name:
            continue
        uri = spiffe_id(network.trust_domain, Role.MERCHANT, merchant.name)
        opened += _open_holder(
            conn, merchant.account_id, uri, merchant.opening_balance_minor, currency, now
        )
    return opened


def _open_holder(
    conn: sqlite3.Connection,
    account_id: str,
    holder_uri: str,
    opening_minor: int,
    currency: str,
    now: dt.datetime,
) -> int:
    created = ledger.create_account(
        conn, account_id, "holder", currency, now=now, holder_uri=holder_uri, no_overdraft=True
    )
    if not created:
        return 0
    if opening_minor > 0:
        ledger.transfer(
            conn,
            RESERVE,
            account_id,
            opening_minor,
            currency,
            now=now,
            description="opening balance",
        )
    return 1


def open_settlement_books(
    conn: sqlite3.Connection, network: NetworkConfig, *, now: dt.datetime
) -> int:
    """Open every member bank's reserve, funded with its holders' opening balances."""
    currency = network.currency
    ledger.create_account(conn, CENTRAL, "central", currency, now=now)
    ledger.create_account(conn, CLEARING, "clearing", currency, now=now)
    opened = 0
    for bank in network.nodes_with_role(Role.BANK):
        assert bank.bank_code is not None  # config guarantees a code for every bank
        reserve = settlement_reserve(bank.bank_code)
        if not ledger.create_account(
            conn,
            reserve,
            "reserve",
            currency,
            now=now,
            holder_uri=spiffe_id(network.trust_domain, Role.BANK, bank.name),
            no_overdraft=True,
        ):
            continue
        opened += 1
        funding = sum(c.opening_balance_minor for c in network.customers if c.bank == bank.name)
        funding += sum(m.opening_balance_minor for m in network.merchants if m.bank == bank.name)
        if funding > 0:
            ledger.transfer(
                conn, CENTRAL, reserve, funding, currency, now=now, description="opening reserve"
            )
    return opened
