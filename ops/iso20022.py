"""ISO 20022 XML for the ledger: camt.053 account statements and pacs.008 settlement batches.

Banks, their customers and auditors reconcile against ISO 20022 messages, not against our
gRPC contracts. This module turns a bank's ledger view of an account into a camt.053.001.08
statement and a settlement window's transfers into a pacs.008.001.08 batch, and reads the
totals back out of such documents so that callers (and tests) can check them.

Money stays in integer minor units end to end; the decimal text of an amount is produced and
read with integer arithmetic only, using the currency's ISO 4217 exponent. Amounts in the XML
are never negative: a sign becomes a CdtDbtInd of CRDT or DBIT.

The builders refuse, with a ValueError naming the problem, anything that would make a wrong or
schema-invalid document: balances that do not add up, non-positive amounts, a malformed
currency, identifiers longer than the schema allows, bank codes that are not BICs, naive
timestamps. Free text (names, remittance information, descriptions) is truncated to the
schema's limit instead, because a shortened name is still useful while a shortened identifier
would point at something else.

Only the standard library is used: xml.etree.ElementTree to build and read, pyexpat to refuse
DTDs before parsing.
"""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NoReturn
from xml.parsers import expat

__all__ = [
    "AccountStatement",
    "CreditTransfer",
    "SettlementBatch",
    "StatementEntry",
    "camt053",
    "camt053_totals",
    "pacs008",
    "pacs008_totals",
]

_CAMT053_NS: Final = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
_PACS008_NS: Final = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"

# ISO 4217 currencies whose minor unit is not the usual hundredth. Every other well-formed
# code is taken to have two decimals.
_EXPONENTS: Final[dict[str, int]] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
_CURRENCY: Final = re.compile(r"[A-Z]{3}")
# BICFIDec2014Identifier: the schema accepts nothing else in BICFI, so a bank code must be a BIC.
_BIC: Final = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
# The schema's amounts have at most 18 digits; a larger integer cannot be written faithfully.
_MAX_MINOR: Final = 10**18 - 1
_DECIMAL: Final = re.compile(r"(\d+)(?:\.(\d*))?")
# Characters XML 1.0 cannot carry at all: one of them would make the document unreadable.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Schema lengths: Max35Text identifiers, Max34Text account ids (GenericAccountIdentification1),
# Max140Text names and remittance, Max500Text entry information.
_ID_MAX: Final = 35
_ACCOUNT_MAX: Final = 34
_TEXT_MAX: Final = 140
_INFO_MAX: Final = 500

# ISO 20022's conventional value when the originator gave no end-to-end reference.
_NOT_PROVIDED: Final = "NOTPROVIDED"
# Proprietary bank transaction code for an entry: every ledger entry here is a payment.
_BANK_TRANSACTION_CODE: Final = "PMNT"
_CREDIT: Final = "CRDT"
_DEBIT: Final = "DBIT"


@dataclass(frozen=True)
class StatementEntry:
    """One booked ledger movement on the account: a camt.053 Ntry."""

    entry_id: str
    """Ledger transfer id; written as AcctSvcrRef (at most 35 characters)."""
    booked_at: datetime.datetime
    """When it was booked (timezone-aware); both the booking and the value date-time."""
    credit: bool
    """True for money into the account (CRDT), False for money out (DBIT)."""
    amount_minor: int
    """Amount in minor units of the statement's currency; always > 0, the sign is ``credit``."""
    end_to_end_id: str
    """The order id carried end to end; "" is written as NOTPROVIDED."""
    description: str
    """Free text for the account holder (AddtlNtryInf); truncated to 500, omitted when ""."""


@dataclass(frozen=True)
class AccountStatement:
    """A bank-to-customer statement of one account over one period: a camt.053 message."""

    message_id: str
    """Unique id of the message (GrpHdr/MsgId, at most 35 characters)."""
    created_at: datetime.datetime
    """When the statement was produced (timezone-aware)."""
    statement_id: str
    """Unique id of the statement (Stmt/Id, at most 35 characters)."""
    account_id: str
    """The account's id at its bank (Acct/Id/Othr/Id, at most 34 characters)."""
    currency: str
    """ISO 4217 code of the account; every amount of the statement is in it."""
    owner_name: str
    """The account holder's name (Acct/Ownr/Nm); truncated to 140, omitted when ""."""
    servicer_bic: str
    """The servicing bank's code (Acct/Svcr/FinInstnId/BICFI); must have the form of a BIC."""
    from_time: datetime.datetime | None
    """Start of the period; None means the earliest entry's booking time (or, without
    entries, the creation time, if that is not after ``to_time``)."""
    to_time: datetime.datetime
    """End of the period; every entry is booked within [from_time, to_time]."""
    opening_minor: int
    """Booked balance at the start of the period (OPBD); negative means overdrawn."""
    closing_minor: int
    """Booked balance at the end (CLBD); must equal opening + credits - debits."""
    entries: tuple[StatementEntry, ...]
    """The movements of the period, in the order they are to be listed."""


@dataclass(frozen=True)
class CreditTransfer:
    """One customer credit transfer between two banks: a pacs.008 CdtTrfTxInf."""

    instruction_id: str
    """The instructing bank's id for it (InstrId, at most 35 characters; omitted when "")."""
    end_to_end_id: str
    """The order id carried end to end (at most 35 characters); "" is written NOTPROVIDED."""
    amount_minor: int
    """Interbank settlement amount in minor units of the batch currency; always > 0."""
    debtor_name: str
    """The payer's name; truncated to 140, omitted when ""."""
    debtor_account: str
    """The payer's account id at the debtor bank (at most 34 characters; omitted when "")."""
    debtor_agent: str
    """The payer's bank code (DbtrAgt BICFI); must have the form of a BIC."""
    creditor_name: str
    """The payee's name; truncated to 140, omitted when ""."""
    creditor_account: str
    """The payee's account id at the creditor bank (at most 34 characters; omitted when "")."""
    creditor_agent: str
    """The payee's bank code (CdtrAgt BICFI); must have the form of a BIC."""
    remittance_information: str
    """Unstructured remittance text (RmtInf/Ustrd); truncated to 140, omitted when ""."""


@dataclass(frozen=True)
class SettlementBatch:
    """The transfers settled together by the settlement bank: a pacs.008 message."""

    message_id: str
    """Unique id of the message (GrpHdr/MsgId, at most 35 characters)."""
    created_at: datetime.datetime
    """When the batch was produced (timezone-aware)."""
    settlement_date: datetime.date
    """The interbank settlement date (IntrBkSttlmDt)."""
    currency: str
    """ISO 4217 code; every transfer of the batch is in it."""
    settlement_agent: str
    """The settlement bank's code: the clearing system (SttlmInf/ClrSys/Prtry) of the batch."""
    transfers: tuple[CreditTransfer, ...]
    """The transfers; may be empty (NbOfTxs 0, total 0)."""


# --- amounts -------------------------------------------------------------------------------


def _exponent(currency: str) -> int:
    if not _CURRENCY.fullmatch(currency):
        raise ValueError(f"currency {currency!r} is not 3 upper-case letters")
    return _EXPONENTS.get(currency, 2)


def _format_amount(minor: int, currency: str) -> str:
    """Non-negative minor units as the decimal text of the schema: 4500 EUR -> "45.00"."""
    exponent = _exponent(currency)
    if not 0 <= minor <= _MAX_MINOR:
        raise ValueError(f"amount {minor} is outside 0..{_MAX_MINOR} minor units")
    if exponent == 0:
        return str(minor)
    units, fraction = divmod(minor, 10**exponent)
    return f"{units}.{fraction:0{exponent}d}"


def _parse_amount(text: str | None, currency: str) -> int:
    """The decimal text of an amount back to minor units, refusing sub-minor-unit digits."""
    exponent = _exponent(currency)
    match = _DECIMAL.fullmatch((text or "").strip())
    if match is None:
        raise ValueError(f"{text!r} is not a non-negative decimal amount")
    units, fraction = match.group(1), match.group(2) or ""
    if fraction[exponent:].strip("0"):
        raise ValueError(f"amount {text} has more decimals than {currency} allows")
    scale: int = 10**exponent
    return int(units) * scale + int(fraction[:exponent].ljust(exponent, "0") or "0")


# --- field checks --------------------------------------------------------------------------


def _identifier(value: str, what: str, limit: int = _ID_MAX) -> None:
    """An identifier as it must be written: never truncated, since a cut id names another thing."""
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > limit:
        raise ValueError(f"{what} {value!r} is longer than {limit} characters")
    if _NOT_XML.search(value):
        raise ValueError(f"{what} {value!r} contains characters XML cannot carry")


def _bic(value: str, what: str) -> None:
    if not _BIC.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a BIC (4+2+2 or 4+2+2+3 upper-case characters)")


def _free_text(value: str, limit: int) -> str:
    """Free text cut to the schema's limit; characters XML cannot carry are dropped."""
    return _NOT_XML.sub("", value)[:limit]


def _positive(amount_minor: int, what: str) -> None:
    if amount_minor <= 0:
        raise ValueError(f"{what} has amount {amount_minor}; amounts must be > 0")


def _timestamp(moment: datetime.datetime, what: str) -> str:
    """ISO 8601 in UTC with its offset; a naive time would be read in the reader's zone."""
    if moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} is not timezone-aware")
    return moment.astimezone(datetime.UTC).isoformat()


def _date(day: datetime.date) -> str:
    # A datetime is also a date; rebuild a plain date so its time never leaks into an ISODate.
    return datetime.date(day.year, day.month, day.day).isoformat()


# --- XML -----------------------------------------------------------------------------------


def _add(parent: ET.Element, path: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append the chain of new elements named in ``path`` ("A/B/C") and return the last."""
    node = parent
    for tag in path.split("/"):
        node = ET.SubElement(node, tag)
    node.text = text
    node.attrib.update(attrib)
    return node


def _add_optional(parent: ET.Element, path: str, text: str) -> None:
    # The schema's texts have a minimum length of 1: an empty value is left out, not written.
    if text:
        _add(parent, path, text)


def _document(namespace: str) -> ET.Element:
    # An xmlns attribute on the root makes it the default namespace for the whole tree,
    # without ET.register_namespace, whose registry is global to the process.
    return ET.Element("Document", xmlns=namespace)


def _serialize(root: ET.Element) -> bytes:
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document + b"\n"


def _refuse_dtd(*_args: object) -> NoReturn:
    raise ValueError("the document has a DOCTYPE; ISO 20022 messages never do")


def _parse(document: bytes, namespace: str) -> ET.Element:
    """Parse a document of the given namespace, refusing DTDs and any other root."""
    # ISO 20022 messages never carry a DTD. Refusing one in a first pass keeps entity
    # expansion away from the tree builder, as defusedxml would, without a dependency.
    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = _refuse_dtd
    try:
        scanner.Parse(document, True)
        root = ET.fromstring(document)  # noqa: S314 - DTDs refused above
    except (expat.ExpatError, ET.ParseError) as error:
        raise ValueError(f"the document is not well-formed XML: {error}") from error
    if root.tag != f"{{{namespace}}}Document":
        raise ValueError(f"root element is {root.tag}, not {{{namespace}}}Document")
    return root


def _qualified(path: str, namespace: str) -> str:
    return "/".join(f"{{{namespace}}}{tag}" for tag in path.split("/"))


def _find(node: ET.Element, path: str, namespace: str) -> ET.Element:
    found = node.find(_qualified(path, namespace))
    if found is None:
        raise ValueError(f"{node.tag} has no {path}")
    return found


def _findall(node: ET.Element, path: str, namespace: str) -> list[ET.Element]:
    return node.findall(_qualified(path, namespace))


# --- camt.053 ------------------------------------------------------------------------------


def _period(statement: AccountStatement) -> tuple[datetime.datetime, datetime.datetime]:
    """The statement's FrDtTm and ToDtTm, checking every entry falls inside them."""
    _timestamp(statement.to_time, "to_time")
    start = statement.from_time
    if start is None:
        booked = [entry.booked_at for entry in statement.entries]
        start = min(booked) if booked else min(statement.created_at, statement.to_time)
    _timestamp(start, "from_time")
    if start > statement.to_time:
        raise ValueError(f"from_time {start.isoformat()} is after to_time")
    for entry in statement.entries:
        if not start <= entry.booked_at <= statement.to_time:
            raise ValueError(f"entry {entry.entry_id} is booked outside the statement period")
    return start, statement.to_time


def _check_statement(statement: AccountStatement) -> None:
    _exponent(statement.currency)
    _identifier(statement.message_id, "message_id")
    _identifier(statement.statement_id, "statement_id")
    _identifier(statement.account_id, "account_id", _ACCOUNT_MAX)
    _bic(statement.servicer_bic, "servicer_bic")
    _timestamp(statement.created_at, "created_at")
    for entry in statement.entries:
        _identifier(entry.entry_id, "entry_id")
        _positive(entry.amount_minor, f"entry {entry.entry_id}")
        _timestamp(entry.booked_at, f"entry {entry.entry_id} booked_at")
        if entry.end_to_end_id:
            _identifier(entry.end_to_end_id, f"entry {entry.entry_id} end_to_end_id")
    credits, debits = _credits_and_debits(statement.entries)
    expected = statement.opening_minor + credits - debits
    if expected != statement.closing_minor:
        raise ValueError(
            f"closing balance {statement.closing_minor} != opening {statement.opening_minor}"
            f" + credits {credits} - debits {debits} = {expected}"
        )


def _credits_and_debits(entries: Iterable[StatementEntry]) -> tuple[int, int]:
    credits = debits = 0
    for entry in entries:
        if entry.credit:
            credits += entry.amount_minor
        else:
            debits += entry.amount_minor
    return credits, debits


def _signed(parent: ET.Element, minor: int, currency: str, with_ccy: bool = True) -> None:
    """Amt and CdtDbtInd for a signed amount: the magnitude, and the sign as CRDT/DBIT."""
    text = _format_amount(abs(minor), currency)
    if with_ccy:
        _add(parent, "Amt", text, Ccy=currency)
    else:
        # TtlNetNtry's Amt is a bare decimal: the schema gives it no currency attribute.
        _add(parent, "Amt", text)
    _add(parent, "CdtDbtInd", _CREDIT if minor >= 0 else _DEBIT)


def _account(stmt: ET.Element, statement: AccountStatement) -> None:
    account = _add(stmt, "Acct")
    _add(account, "Id/Othr/Id", statement.account_id)
    _add(account, "Ccy", statement.currency)
    _add_optional(account, "Ownr/Nm", _free_text(statement.owner_name, _TEXT_MAX))
    _add(account, "Svcr/FinInstnId/BICFI", statement.servicer_bic)


def _balance(stmt: ET.Element, code: str, minor: int, currency: str, at: str) -> None:
    balance = _add(stmt, "Bal")
    _add(balance, "Tp/CdOrPrtry/Cd", code)
    _signed(balance, minor, currency)
    _add(balance, "Dt/DtTm", at)


def _summary(stmt: ET.Element, statement: AccountStatement) -> None:
    currency = statement.currency
    entries = statement.entries
    credits, debits = _credits_and_debits(entries)
    summary = _add(stmt, "TxsSummry")
    total = _add(summary, "TtlNtries")
    _add(total, "NbOfNtries", str(len(entries)))
    _add(total, "Sum", _format_amount(credits + debits, currency))
    _signed(_add(total, "TtlNetNtry"), credits - debits, currency, with_ccy=False)
    for tag, credit, amount in (("TtlCdtNtries", True, credits), ("TtlDbtNtries", False, debits)):
        node = _add(summary, tag)
        _add(node, "NbOfNtries", str(sum(1 for entry in entries if entry.credit == credit)))
        _add(node, "Sum", _format_amount(amount, currency))


def _entry(stmt: ET.Element, entry: StatementEntry, currency: str) -> None:
    node = _add(stmt, "Ntry")
    _signed(node, entry.amount_minor if entry.credit else -entry.amount_minor, currency)
    _add(node, "Sts/Cd", "BOOK")
    booked = _timestamp(entry.booked_at, "booked_at")
    _add(node, "BookgDt/DtTm", booked)
    _add(node, "ValDt/DtTm", booked)
    _add(node, "AcctSvcrRef", entry.entry_id)
    _add(node, "BkTxCd/Prtry/Cd", _BANK_TRANSACTION_CODE)
    _add(node, "NtryDtls/TxDtls/Refs/EndToEndId", entry.end_to_end_id or _NOT_PROVIDED)
    _add_optional(node, "AddtlNtryInf", _free_text(entry.description, _INFO_MAX))


def camt053(statement: AccountStatement) -> bytes:
    """The statement as a camt.053.001.08 document (UTF-8 bytes).

    Raises ValueError if it is inconsistent: see the module docstring.
    """
    _check_statement(statement)
    start, end = _period(statement)
    root = _document(_CAMT053_NS)
    report = _add(root, "BkToCstmrStmt")
    header = _add(report, "GrpHdr")
    _add(header, "MsgId", statement.message_id)
    _add(header, "CreDtTm", _timestamp(statement.created_at, "created_at"))
    stmt = _add(report, "Stmt")
    _add(stmt, "Id", statement.statement_id)
    _add(stmt, "CreDtTm", _timestamp(statement.created_at, "created_at"))
    period = _add(stmt, "FrToDt")
    _add(period, "FrDtTm", _timestamp(start, "from_time"))
    _add(period, "ToDtTm", _timestamp(end, "to_time"))
    _account(stmt, statement)
    currency = statement.currency
    _balance(stmt, "OPBD", statement.opening_minor, currency, _timestamp(start, "from_time"))
    _balance(stmt, "CLBD", statement.closing_minor, currency, _timestamp(end, "to_time"))
    _summary(stmt, statement)
    for entry in statement.entries:
        _entry(stmt, entry, currency)
    return _serialize(root)


def _read_signed(node: ET.Element, currency: str) -> int:
    """A signed amount from Amt and CdtDbtInd, checking Amt's currency where it has one."""
    amount = _find(node, "Amt", _CAMT053_NS)
    if amount.get("Ccy", currency) != currency:
        raise ValueError(f"amount in {amount.get('Ccy')} on a {currency} statement")
    minor = _parse_amount(amount.text, currency)
    indicator = _find(node, "CdtDbtInd", _CAMT053_NS).text
    if indicator not in (_CREDIT, _DEBIT):
        raise ValueError(f"CdtDbtInd is {indicator!r}, not CRDT or DBIT")
    return minor if indicator == _CREDIT else -minor


def _read_balance(stmt: ET.Element, code: str, currency: str) -> int:
    found = [
        balance
        for balance in _findall(stmt, "Bal", _CAMT053_NS)
        if _find(balance, "Tp/CdOrPrtry/Cd", _CAMT053_NS).text == code
    ]
    if len(found) != 1:
        raise ValueError(f"the statement has {len(found)} {code} balances, not 1")
    return _read_signed(found[0], currency)


def _check_count_and_sum(
    summary: ET.Element, tag: str, count: int, total: int, currency: str
) -> None:
    """A TxsSummry total, where present, must agree with the entries themselves."""
    node = summary.find(_qualified(tag, _CAMT053_NS))
    if node is None:
        return
    written_count = node.find(_qualified("NbOfNtries", _CAMT053_NS))
    if written_count is not None and written_count.text != str(count):
        raise ValueError(f"{tag}/NbOfNtries is {written_count.text}, the entries number {count}")
    written_sum = node.find(_qualified("Sum", _CAMT053_NS))
    if written_sum is not None and _parse_amount(written_sum.text, currency) != total:
        raise ValueError(f"{tag}/Sum is {written_sum.text}, the entries add up to another amount")


def camt053_totals(document: bytes) -> tuple[int, int, int, int]:
    """(opening, closing, credits, debits) in minor units of a camt.053.001.08 statement.

    Opening and closing are signed (negative when DBIT); credits and debits are the sums of
    the CRDT and DBIT entries. Raises ValueError if the document is not a one-statement
    camt.053.001.08, or if its TxsSummry disagrees with its entries.
    """
    root = _parse(document, _CAMT053_NS)
    statements = _findall(root, "BkToCstmrStmt/Stmt", _CAMT053_NS)
    if len(statements) != 1:
        raise ValueError(f"the document has {len(statements)} statements, not 1")
    stmt = statements[0]
    currency = _find(stmt, "Acct/Ccy", _CAMT053_NS).text or ""
    opening = _read_balance(stmt, "OPBD", currency)
    closing = _read_balance(stmt, "CLBD", currency)
    amounts = [_read_signed(entry, currency) for entry in _findall(stmt, "Ntry", _CAMT053_NS)]
    credits = sum(a for a in amounts if a > 0)
    debits = -sum(a for a in amounts if a < 0)
    summary = stmt.find(_qualified("TxsSummry", _CAMT053_NS))
    if summary is not None:
        n_credits = sum(1 for a in amounts if a > 0)
        _check_count_and_sum(summary, "TtlNtries", len(amounts), credits + debits, currency)
        _check_count_and_sum(summary, "TtlCdtNtries", n_credits, credits, currency)
        _check_count_and_sum(summary, "TtlDbtNtries", len(amounts) - n_credits, debits, currency)
    return opening, closing, credits, debits


# --- pacs.008 ------------------------------------------------------------------------------


def _check_batch(batch: SettlementBatch) -> None:
    _exponent(batch.currency)
    _identifier(batch.message_id, "message_id")
    _identifier(batch.settlement_agent, "settlement_agent")
    _timestamp(batch.created_at, "created_at")
    for index, transfer in enumerate(batch.transfers):
        where = f"transfer {index} ({transfer.instruction_id or transfer.end_to_end_id})"
        _positive(transfer.amount_minor, where)
        if transfer.instruction_id:
            _identifier(transfer.instruction_id, f"{where} instruction_id")
        if transfer.end_to_end_id:
            _identifier(transfer.end_to_end_id, f"{where} end_to_end_id")
        for account, what in (
            (transfer.debtor_account, "debtor"),
            (transfer.creditor_account, "creditor"),
        ):
            if account:
                _identifier(account, f"{where} {what}_account", _ACCOUNT_MAX)
        _bic(transfer.debtor_agent, f"{where} debtor_agent")
        _bic(transfer.creditor_agent, f"{where} creditor_agent")


def _party(parent: ET.Element, role: str, name: str, account: str) -> None:
    """Dbtr and DbtrAcct (or Cdtr and CdtrAcct); the name and account are optional."""
    node = _add(parent, role)
    _add_optional(node, "Nm", _free_text(name, _TEXT_MAX))
    _add_optional(parent, f"{role}Acct/Id/Othr/Id", account)


def _agent(parent: ET.Element, role: str, bic: str) -> None:
    _add(parent, f"{role}Agt/FinInstnId/BICFI", bic)


def _transfer(parent: ET.Element, transfer: CreditTransfer, currency: str) -> None:
    node = _add(parent, "CdtTrfTxInf")
    payment_id = _add(node, "PmtId")
    _add_optional(payment_id, "InstrId", transfer.instruction_id)
    _add(payment_id, "EndToEndId", transfer.end_to_end_id or _NOT_PROVIDED)
    _add(node, "IntrBkSttlmAmt", _format_amount(transfer.amount_minor, currency), Ccy=currency)
    # SLEV: charges follow the rules of the scheme (this network), not a per-transfer choice.
    _add(node, "ChrgBr", "SLEV")
    # The schema's order: debtor, its agent, then the creditor's agent, then the creditor.
    _party(node, "Dbtr", transfer.debtor_name, transfer.debtor_account)
    _agent(node, "Dbtr", transfer.debtor_agent)
    _agent(node, "Cdtr", transfer.creditor_agent)
    _party(node, "Cdtr", transfer.creditor_name, transfer.creditor_account)
    _add_optional(node, "RmtInf/Ustrd", _free_text(transfer.remittance_information, _TEXT_MAX))


def pacs008(batch: SettlementBatch) -> bytes:
    """The batch as a pacs.008.001.08 document (UTF-8 bytes).

    An empty batch is written with NbOfTxs 0 and a zero total, so that a window with nothing
    to settle still leaves a record; note the XSD itself wants at least one CdtTrfTxInf, so a
    strict validator will refuse that document. Raises ValueError on a malformed currency, a
    non-positive amount, an over-long identifier or a bank code that is not a BIC.
    """
    _check_batch(batch)
    currency = batch.currency
    total = sum(transfer.amount_minor for transfer in batch.transfers)
    root = _document(_PACS008_NS)
    message = _add(root, "FIToFICstmrCdtTrf")
    header = _add(message, "GrpHdr")
    _add(header, "MsgId", batch.message_id)
    _add(header, "CreDtTm", _timestamp(batch.created_at, "created_at"))
    _add(header, "NbOfTxs", str(len(batch.transfers)))
    _add(header, "TtlIntrBkSttlmAmt", _format_amount(total, currency), Ccy=currency)
    _add(header, "IntrBkSttlmDt", _date(batch.settlement_date))
    settlement = _add(header, "SttlmInf")
    _add(settlement, "SttlmMtd", "CLRG")
    _add(settlement, "ClrSys/Prtry", batch.settlement_agent)
    for transfer in batch.transfers:
        _transfer(message, transfer, currency)
    return _serialize(root)


def pacs008_totals(document: bytes) -> tuple[int, int]:
    """(number of transactions, total in minor units) of a pacs.008.001.08 document.

    Counted and summed from the CdtTrfTxInf themselves; raises ValueError if GrpHdr's NbOfTxs
    or TtlIntrBkSttlmAmt disagree with them, or if the amounts are in different currencies.
    """
    root = _parse(document, _PACS008_NS)
    message = _find(root, "FIToFICstmrCdtTrf", _PACS008_NS)
    header = _find(message, "GrpHdr", _PACS008_NS)
    amounts = _findall(message, "CdtTrfTxInf/IntrBkSttlmAmt", _PACS008_NS)
    header_total = header.find(_qualified("TtlIntrBkSttlmAmt", _PACS008_NS))
    written = [*amounts, *([] if header_total is None else [header_total])]
    currencies = {amount.get("Ccy", "") for amount in written}
    if len(currencies) > 1:
        raise ValueError(f"the amounts are in several currencies: {sorted(currencies)}")
    # No amount at all means a total of 0; XXX is ISO 4217's code for "no currency".
    currency = currencies.pop() if currencies else "XXX"
    total = sum(_parse_amount(amount.text, currency) for amount in amounts)
    count_text = _find(header, "NbOfTxs", _PACS008_NS).text or ""
    if count_text != str(len(amounts)):
        raise ValueError(f"GrpHdr/NbOfTxs is {count_text!r}, the document has {len(amounts)}")
    if header_total is not None and _parse_amount(header_total.text, currency) != total:
        raise ValueError(
            f"GrpHdr/TtlIntrBkSttlmAmt is {header_total.text}, the transactions add up to"
            f" {_format_amount(total, currency)}"
        )
    return len(amounts), total
