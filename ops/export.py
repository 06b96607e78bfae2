"""``paynet export``: take records out in the format banks exchange, one file per document.

- ``statement``: an account's statement for a period as ISO 20022 camt.053, asked
  from the bank over mTLS as the account's holder (``ListStatement``), exactly
  what online banking shows.
- ``window``: a settled (or closed) settlement window's credit transfers as one
  ISO 20022 pacs.008 batch, read from the settlement bank's store through its
  own functions (an operator export, run where the settlement bank keeps its
  data). Returns settle in the window too but are pacs.004 messages, so they
  are not in the batch.

Our ids are UUIDs; ISO 20022 identifiers hold at most 35 characters, so they
are written in the UUID's 32-digit form without hyphens.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from interbank.v1 import account_pb2, account_pb2_grpc, notification_pb2, settlement_pb2

from bank import books, windows
from ops import iso20022
from payment.clock import now
from payment.config import NetworkConfig, Role
from payment.pki import Pki
from payment.storage import read_snapshot
from payment.tls import TlsIdentity, secure_channel

__all__ = ["ExportError", "export_statement", "export_window"]


class ExportError(Exception):
    """The export cannot be made; the message says why and what to do."""


async def export_statement(
    network: NetworkConfig,
    holder: str,
    account_id: str,
    out_dir: Path,
    *,
    from_time: dt.datetime | None = None,
    to_time: dt.datetime | None = None,
) -> Path:
    """Write holder's account statement for [from_time, to_time) as camt.053; returns the file."""
    bank_name, owner = _holder_bank(network, holder, account_id)
    bank = network.node(bank_name)
    assert bank.bank_code is not None  # every bank node has a code
    request = account_pb2.ListStatementRequest(account_id=account_id)
    if from_time is not None:
        request.from_time.FromDatetime(from_time)
    end = to_time or now()
    request.to_time.FromDatetime(end)
    identity = TlsIdentity.load(Pki(network.pki_dir), holder)
    async with secure_channel(bank.address, identity) as channel:
        statement: account_pb2.ListStatementResponse = await account_pb2_grpc.AccountServiceStub(
            channel
        ).ListStatement(request, timeout=network.timeouts.client_call_seconds)
    created = now()
    document = iso20022.camt053(
        iso20022.AccountStatement(
            message_id=f"STMT-{uuid.uuid4().hex[:24]}",
            created_at=created,
            statement_id=f"{account_id}-{end:%Y%m%d%H%M%S}"[:35],
            account_id=account_id,
            currency=statement.opening_balance.currency_code or network.currency,
            owner_name=owner,
            servicer_bic=bank.bank_code,
            from_time=from_time,
            to_time=end,
            opening_minor=statement.opening_balance.amount_minor,
            closing_minor=statement.closing_balance.amount_minor,
            entries=tuple(
                iso20022.StatementEntry(
                    entry_id=_iso_id(entry.entry_id),
                    booked_at=entry.booked_at.ToDatetime(dt.UTC),
                    credit=entry.direction == notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT,
                    amount_minor=entry.amount.amount_minor,
                    end_to_end_id=_iso_id(entry.order_id),
                    description=entry.description,
                )
                for entry in statement.entries
            ),
        )
    )
    return _write(out_dir, f"camt053-{account_id}-{end:%Y%m%dT%H%M%S}.xml", document)


def export_window(network: NetworkConfig, window_id: str, out_dir: Path) -> Path:
    """Write a closed settlement window's accepted credit transfers as pacs.008."""
    settlement = network.the(Role.SETTLEMENT)
    path = settlement.store_path
    if not path.exists():
        raise ExportError(f"no settlement store at {path}: run this where the settlement bank runs")
    with read_snapshot(path) as conn:
        window = windows.window(conn, window_id)
        if window is None:
            raise ExportError(
                f"no settlement window {window_id!r} (see 'paynet settlement window')"
            )
        if window.status == windows.OPEN:
            raise ExportError(
                f"window {window_id} is still open: close it first ('paynet settlement close')"
            )
        accepted = books.accepted_credit_transfers(conn, window_id)
    assert window.closed_at is not None  # a window that is not open has closed
    closed_at = dt.datetime.fromisoformat(window.closed_at)
    assert settlement.bank_code is not None  # the settlement node has a code
    transfers = tuple(_transfer(message) for message in accepted)
    document = iso20022.pacs008(
        iso20022.SettlementBatch(
            message_id=window_id.replace("-", "")[:35],
            created_at=now(),
            settlement_date=closed_at.date(),
            currency=network.currency,
            settlement_agent=settlement.bank_code,
            transfers=transfers,
        )
    )
    return _write(out_dir, f"pacs008-{window_id}.xml", document)


def _transfer(message: settlement_pb2.CreditTransfer) -> iso20022.CreditTransfer:
    return iso20022.CreditTransfer(
        instruction_id=_iso_id(message.instruction_id),
        end_to_end_id=_iso_id(message.end_to_end_id),
        amount_minor=message.amount.amount_minor,
        debtor_name=message.debtor_name,
        debtor_account=message.debtor_account.account_id,
        debtor_agent=message.debtor_agent,
        creditor_name=message.creditor_name,
        creditor_account=message.creditor_account.account_id,
        creditor_agent=message.creditor_agent,
        remittance_information=message.remittance_information,
    )


def _iso_id(text: str) -> str:
    """Our ids are UUIDs (36 characters); ISO 20022 ids hold 35: write them without hyphens."""
    if len(text) <= 35:
        return text
    try:
        return uuid.UUID(text).hex
    except ValueError:
        raise ExportError(f"id {text!r} is longer than ISO 20022's 35 characters") from None


def _holder_bank(network: NetworkConfig, holder: str, account_id: str) -> tuple[str, str]:
    for customer in network.customers:
        if customer.name == holder and customer.account_id == account_id:
            return customer.bank, customer.name
    for merchant in network.merchants:
        if merchant.name == holder and merchant.account_id == account_id:
            return merchant.bank, merchant.name
    raise ExportError(
        f"{holder!r} holds no account {account_id!r} in the network file: give a customer or"
        " merchant name and its account_id"
    )


def _write(out_dir: Path, name: str, document: bytes) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_bytes(document)
    return path
