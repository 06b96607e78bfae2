"""camt.053 statements and pacs.008 batches: schema order, amounts in minor units, refusals."""

from __future__ import annotations

import dataclasses
import datetime
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from ops.iso20022 import (
    AccountStatement,
    CreditTransfer,
    SettlementBatch,
    StatementEntry,
    camt053,
    camt053_totals,
    pacs008,
    pacs008_totals,
)

CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
PACS = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
UTC = datetime.UTC


def at(hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, 11, 26, hour, minute, tzinfo=UTC)


def entry(entry_id: str, hour: int, credit: bool, amount: int, **changes: Any) -> StatementEntry:
    base = StatementEntry(
        entry_id=entry_id,
        booked_at=at(hour),
        credit=credit,
        amount_minor=amount,
        end_to_end_id=f"ORD-{entry_id}",
        description=f"order {entry_id}",
    )
    return dataclasses.replace(base, **changes)


def statement(**changes: Any) -> AccountStatement:
    base = AccountStatement(
        message_id="MSG-1",
        created_at=at(23, 59),
        statement_id="STMT-1",
        account_id="ACC-ALICE",
        currency="EUR",
        owner_name="Alice",
        servicer_bic="ALFAXX01",
        from_time=at(0),
        to_time=at(23),
        opening_minor=10_000,
        closing_minor=10_000 + 4500 + 1200 - 3000,
        entries=(
            entry("T1", 7, True, 4500),
            entry("T2", 8, False, 3000),
            entry("T3", 9, True, 1200),
        ),
    )
    return dataclasses.replace(base, **changes)


def transfer(n: int, amount: int, **changes: Any) -> CreditTransfer:
    base = CreditTransfer(
        instruction_id=f"TRF-{n}",
        end_to_end_id=f"ORD-{n}",
        amount_minor=amount,
        debtor_name="Alice",
        debtor_account="ACC-ALICE",
        debtor_agent="ALFAXX01",
        creditor_name="Bob's Shop",
        creditor_account="ACC-SHOP",
        creditor_agent="BETAXX02",
        remittance_information=f"order {n}",
    )
    return dataclasses.replace(base, **changes)


def batch(**changes: Any) -> SettlementBatch:
    base = SettlementBatch(
        message_id="BATCH-1",
        created_at=at(18),
        settlement_date=datetime.date(2026, 11, 26),
        currency="EUR",
        settlement_agent="SETLXX00",
        transfers=(transfer(1, 4500), transfer(2, 1999)),
    )
    return dataclasses.replace(base, **changes)


def parse(document: bytes) -> ET.Element:
    return ET.fromstring(document)  # noqa: S314 - our own output, not untrusted input


def find(node: ET.Element, path: str, ns: str) -> ET.Element:
    found = node.find("/".join(f"{{{ns}}}{tag}" for tag in path.split("/")))
    assert found is not None, path
    return found


def text(node: ET.Element, path: str, ns: str) -> str | None:
    return find(node, path, ns).text


def children(node: ET.Element) -> list[str]:
    return [child.tag.split("}")[1] for child in node]


def camt_stmt(document: bytes) -> ET.Element:
    return find(parse(document), "BkToCstmrStmt/Stmt", CAMT)


def pacs_message(document: bytes) -> ET.Element:
    return find(parse(document), "FIToFICstmrCdtTrf", PACS)


# --- camt.053 ------------------------------------------------------------------------------


def test_statement_round_trips_through_the_totals_parser() -> None:
    assert camt053_totals(camt053(statement())) == (10_000, 12_700, 5700, 3000)


def test_statement_totals_equal_the_entries() -> None:
    summary = find(camt_stmt(camt053(statement())), "TxsSummry", CAMT)
    assert text(summary, "TtlNtries/NbOfNtries", CAMT) == "3"
    assert text(summary, "TtlNtries/Sum", CAMT) == "87.00"
    assert text(summary, "TtlNtries/TtlNetNtry/Amt", CAMT) == "27.00"
    assert text(summary, "TtlNtries/TtlNetNtry/CdtDbtInd", CAMT) == "CRDT"
    assert text(summary, "TtlCdtNtries/NbOfNtries", CAMT) == "2"
    assert text(summary, "TtlCdtNtries/Sum", CAMT) == "57.00"
    assert text(summary, "TtlDbtNtries/NbOfNtries", CAMT) == "1"
    assert text(summary, "TtlDbtNtries/Sum", CAMT) == "30.00"


def test_statement_elements_follow_the_schema_order() -> None:
    root = parse(camt053(statement()))
    assert children(root) == ["BkToCstmrStmt"]
    assert children(find(root, "BkToCstmrStmt", CAMT)) == ["GrpHdr", "Stmt"]
    assert children(find(root, "BkToCstmrStmt/GrpHdr", CAMT)) == ["MsgId", "CreDtTm"]
    stmt = find(root, "BkToCstmrStmt/Stmt", CAMT)
    assert children(stmt) == [
        "Id",
        "CreDtTm",
        "FrToDt",
        "Acct",
        "Bal",
        "Bal",
        "TxsSummry",
        "Ntry",
        "Ntry",
        "Ntry",
    ]
    assert children(find(stmt, "Acct", CAMT)) == ["Id", "Ccy", "Ownr", "Svcr"]
    assert children(find(stmt, "Bal", CAMT)) == ["Tp", "Amt", "CdtDbtInd", "Dt"]


def test_an_entry_lists_its_elements_in_schema_order_with_its_values() -> None:
    ntry = find(camt_stmt(camt053(statement())), "Ntry", CAMT)
    assert children(ntry) == [
        "Amt",
        "CdtDbtInd",
        "Sts",
        "BookgDt",
        "ValDt",
        "AcctSvcrRef",
        "BkTxCd",
        "NtryDtls",
        "AddtlNtryInf",
    ]
    assert text(ntry, "Amt", CAMT) == "45.00"
    assert find(ntry, "Amt", CAMT).get("Ccy") == "EUR"
    assert text(ntry, "CdtDbtInd", CAMT) == "CRDT"
    assert text(ntry, "Sts/Cd", CAMT) == "BOOK"
    assert text(ntry, "BookgDt/DtTm", CAMT) == "2026-11-26T07:00:00+00:00"
    assert text(ntry, "ValDt/DtTm", CAMT) == "2026-11-26T07:00:00+00:00"
    assert text(ntry, "AcctSvcrRef", CAMT) == "T1"
    assert text(ntry, "BkTxCd/Prtry/Cd", CAMT) == "PMNT"
    assert text(ntry, "NtryDtls/TxDtls/Refs/EndToEndId", CAMT) == "ORD-T1"
    assert text(ntry, "AddtlNtryInf", CAMT) == "order T1"


def test_account_and_period_carry_the_statement_fields() -> None:
    stmt = camt_stmt(camt053(statement()))
    assert text(stmt, "Acct/Id/Othr/Id", CAMT) == "ACC-ALICE"
    assert text(stmt, "Acct/Ccy", CAMT) == "EUR"
    assert text(stmt, "Acct/Ownr/Nm", CAMT) == "Alice"
    assert text(stmt, "Acct/Svcr/FinInstnId/BICFI", CAMT) == "ALFAXX01"
    assert text(stmt, "FrToDt/FrDtTm", CAMT) == "2026-11-26T00:00:00+00:00"
    assert text(stmt, "FrToDt/ToDtTm", CAMT) == "2026-11-26T23:00:00+00:00"


def test_negative_opening_balance_is_written_as_a_debit_of_its_absolute_amount() -> None:
    document = camt053(statement(opening_minor=-2500, closing_minor=-2500 + 5700 - 3000))
    opening = camt_stmt(document).findall(f"{{{CAMT}}}Bal")[0]
    assert text(opening, "Tp/CdOrPrtry/Cd", CAMT) == "OPBD"
    assert text(opening, "Amt", CAMT) == "25.00"
    assert text(opening, "CdtDbtInd", CAMT) == "DBIT"
    amounts = [amount.text or "" for amount in parse(document).iter(f"{{{CAMT}}}Amt")]
    assert amounts and not any(amount.startswith("-") for amount in amounts)
    assert camt053_totals(document)[:2] == (-2500, 200)


def test_inconsistent_closing_balance_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"closing balance 12701 != opening 10000"):
        camt053(statement(closing_minor=12_701))


def test_debit_entries_are_written_with_positive_amounts() -> None:
    debit = camt_stmt(camt053(statement())).findall(f"{{{CAMT}}}Ntry")[1]
    assert text(debit, "Amt", CAMT) == "30.00"
    assert text(debit, "CdtDbtInd", CAMT) == "DBIT"


@pytest.mark.parametrize("amount", [0, -100])
def test_non_positive_entry_amounts_are_rejected(amount: int) -> None:
    entries = (entry("T1", 7, True, amount),)
    with pytest.raises(ValueError, match="amounts must be > 0"):
        camt053(statement(entries=entries, closing_minor=10_000 + amount))


@pytest.mark.parametrize("currency", ["eur", "EU", "EURO", "", "E1R"])
def test_a_currency_that_is_not_three_upper_case_letters_is_rejected(currency: str) -> None:
    with pytest.raises(ValueError, match="not 3 upper-case letters"):
        camt053(statement(currency=currency))
    with pytest.raises(ValueError, match="not 3 upper-case letters"):
        pacs008(batch(currency=currency))


def test_an_empty_end_to_end_id_is_written_as_notprovided() -> None:
    entries = (entry("T1", 7, True, 100, end_to_end_id="", description=""),)
    document = camt053(statement(entries=entries, closing_minor=10_100))
    ntry = find(camt_stmt(document), "Ntry", CAMT)
    assert text(ntry, "NtryDtls/TxDtls/Refs/EndToEndId", CAMT) == "NOTPROVIDED"
    assert ntry.find(f"{{{CAMT}}}AddtlNtryInf") is None


def test_without_from_time_the_period_starts_at_the_earliest_entry() -> None:
    stmt = camt_stmt(camt053(statement(from_time=None)))
    assert text(stmt, "FrToDt/FrDtTm", CAMT) == "2026-11-26T07:00:00+00:00"
    assert text(stmt, "Bal/Dt/DtTm", CAMT) == "2026-11-26T07:00:00+00:00"


def test_an_entry_booked_outside_the_period_is_rejected() -> None:
    with pytest.raises(ValueError, match="entry T1 is booked outside the statement period"):
        camt053(statement(from_time=at(8)))


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="not timezone-aware"):
        camt053(statement(created_at=datetime.datetime(2026, 11, 26, 12)))


def test_timestamps_in_another_zone_are_written_in_utc_with_their_offset() -> None:
    cet = datetime.timezone(datetime.timedelta(hours=1))
    created = datetime.datetime(2026, 11, 27, 8, 30, tzinfo=cet)
    header = find(parse(camt053(statement(created_at=created))), "BkToCstmrStmt", CAMT)
    assert text(header, "GrpHdr/CreDtTm", CAMT) == "2026-11-27T07:30:00+00:00"


def test_a_summary_that_disagrees_with_the_entries_is_rejected_by_the_parser() -> None:
    document = camt053(statement()).replace(b"<Sum>57.00</Sum>", b"<Sum>58.00</Sum>")
    with pytest.raises(ValueError, match=r"TtlCdtNtries/Sum is 58\.00"):
        camt053_totals(document)


# --- pacs.008 ------------------------------------------------------------------------------


def test_batch_round_trips_through_the_totals_parser() -> None:
    assert pacs008_totals(pacs008(batch())) == (2, 6499)


def test_group_header_lists_its_elements_in_schema_order_with_its_values() -> None:
    header = find(pacs_message(pacs008(batch())), "GrpHdr", PACS)
    assert children(header) == [
        "MsgId",
        "CreDtTm",
        "NbOfTxs",
        "TtlIntrBkSttlmAmt",
        "IntrBkSttlmDt",
        "SttlmInf",
    ]
    assert text(header, "MsgId", PACS) == "BATCH-1"
    assert text(header, "CreDtTm", PACS) == "2026-11-26T18:00:00+00:00"
    assert text(header, "NbOfTxs", PACS) == "2"
    assert text(header, "TtlIntrBkSttlmAmt", PACS) == "64.99"
    assert find(header, "TtlIntrBkSttlmAmt", PACS).get("Ccy") == "EUR"
    assert text(header, "IntrBkSttlmDt", PACS) == "2026-11-26"
    assert children(find(header, "SttlmInf", PACS)) == ["SttlmMtd", "ClrSys"]
    assert text(header, "SttlmInf/SttlmMtd", PACS) == "CLRG"
    assert text(header, "SttlmInf/ClrSys/Prtry", PACS) == "SETLXX00"


def test_a_transaction_lists_its_elements_in_schema_order_with_its_values() -> None:
    tx = find(pacs_message(pacs008(batch())), "CdtTrfTxInf", PACS)
    assert children(tx) == [
        "PmtId",
        "IntrBkSttlmAmt",
        "ChrgBr",
        "Dbtr",
        "DbtrAcct",
        "DbtrAgt",
        "CdtrAgt",
        "Cdtr",
        "CdtrAcct",
        "RmtInf",
    ]
    assert children(find(tx, "PmtId", PACS)) == ["InstrId", "EndToEndId"]
    assert text(tx, "PmtId/InstrId", PACS) == "TRF-1"
    assert text(tx, "PmtId/EndToEndId", PACS) == "ORD-1"
    assert text(tx, "IntrBkSttlmAmt", PACS) == "45.00"
    assert text(tx, "ChrgBr", PACS) == "SLEV"
    assert text(tx, "Dbtr/Nm", PACS) == "Alice"
    assert text(tx, "DbtrAcct/Id/Othr/Id", PACS) == "ACC-ALICE"
    assert text(tx, "DbtrAgt/FinInstnId/BICFI", PACS) == "ALFAXX01"
    assert text(tx, "CdtrAgt/FinInstnId/BICFI", PACS) == "BETAXX02"
    assert text(tx, "Cdtr/Nm", PACS) == "Bob's Shop"
    assert text(tx, "CdtrAcct/Id/Othr/Id", PACS) == "ACC-SHOP"
    assert text(tx, "RmtInf/Ustrd", PACS) == "order 1"


def test_an_empty_batch_has_no_transactions_and_a_zero_total() -> None:
    document = pacs008(batch(transfers=()))
    message = pacs_message(document)
    assert text(message, "GrpHdr/NbOfTxs", PACS) == "0"
    assert text(message, "GrpHdr/TtlIntrBkSttlmAmt", PACS) == "0.00"
    assert message.findall(f"{{{PACS}}}CdtTrfTxInf") == []
    assert pacs008_totals(document) == (0, 0)


@pytest.mark.parametrize("field", ["instruction_id", "end_to_end_id"])
def test_transfer_ids_over_35_characters_are_rejected(field: str) -> None:
    long_id = "X" * 36
    with pytest.raises(ValueError, match=f"{field} '{long_id}' is longer than 35 characters"):
        pacs008(batch(transfers=(transfer(1, 100, **{field: long_id}),)))


def test_an_id_of_exactly_35_characters_is_kept_whole() -> None:
    exact = "Y" * 35
    tx = find(
        pacs_message(pacs008(batch(transfers=(transfer(1, 100, end_to_end_id=exact),)))),
        "CdtTrfTxInf",
        PACS,
    )
    assert text(tx, "PmtId/EndToEndId", PACS) == exact


def test_message_and_statement_ids_over_35_characters_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"message_id .* is longer than 35 characters"):
        pacs008(batch(message_id="M" * 36))
    with pytest.raises(ValueError, match=r"entry_id .* is longer than 35 characters"):
        camt053(statement(entries=(entry("E" * 36, 7, True, 2700),)))


def test_names_and_remittance_over_140_characters_are_truncated() -> None:
    long_name, long_text = "N" * 200, "R" * 141
    transfers = (transfer(1, 100, debtor_name=long_name, remittance_information=long_text),)
    tx = find(pacs_message(pacs008(batch(transfers=transfers))), "CdtTrfTxInf", PACS)
    assert text(tx, "Dbtr/Nm", PACS) == "N" * 140
    assert text(tx, "RmtInf/Ustrd", PACS) == "R" * 140
    stmt = camt_stmt(camt053(statement(owner_name=long_name)))
    assert text(stmt, "Acct/Ownr/Nm", CAMT) == "N" * 140


def test_empty_optional_fields_are_left_out_and_an_empty_end_to_end_id_is_notprovided() -> None:
    bare = transfer(
        1, 100, instruction_id="", end_to_end_id="", debtor_account="", remittance_information=""
    )
    tx = find(pacs_message(pacs008(batch(transfers=(bare,)))), "CdtTrfTxInf", PACS)
    assert children(find(tx, "PmtId", PACS)) == ["EndToEndId"]
    assert text(tx, "PmtId/EndToEndId", PACS) == "NOTPROVIDED"
    assert "DbtrAcct" not in children(tx)
    assert "RmtInf" not in children(tx)


@pytest.mark.parametrize("amount", [0, -1])
def test_non_positive_transfer_amounts_are_rejected(amount: int) -> None:
    with pytest.raises(ValueError, match="amounts must be > 0"):
        pacs008(batch(transfers=(transfer(1, amount),)))


def test_a_bank_code_that_is_not_a_bic_is_rejected() -> None:
    with pytest.raises(ValueError, match="debtor_agent 'ALFA' is not a BIC"):
        pacs008(batch(transfers=(transfer(1, 100, debtor_agent="ALFA"),)))


@pytest.mark.parametrize(
    ("written", "tampered", "message"),
    [
        (b"<NbOfTxs>2<", b"<NbOfTxs>3<", "NbOfTxs is '3', the document has 2"),
        (
            b">64.99</TtlIntr",
            b">65.00</TtlIntr",
            "TtlIntrBkSttlmAmt is 65.00, the transactions add up",
        ),
        (b'<TtlIntrBkSttlmAmt Ccy="EUR"', b'<TtlIntrBkSttlmAmt Ccy="USD"', "several currencies"),
    ],
)
def test_a_group_header_that_disagrees_with_the_transactions_is_rejected(
    written: bytes, tampered: bytes, message: str
) -> None:
    document = pacs008(batch())
    assert document.count(written) == 1
    with pytest.raises(ValueError, match=message):
        pacs008_totals(document.replace(written, tampered))


# --- amounts, encoding, namespaces ---------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "minor", "written"),
    [
        ("EUR", 4500, "45.00"),
        ("EUR", 5, "0.05"),
        ("EUR", 123_456_789, "1234567.89"),
        ("JPY", 4500, "4500"),
        ("KRW", 1, "1"),
        ("KWD", 4500, "4.500"),
        ("KWD", 1, "0.001"),
        ("BHD", 1_000_000, "1000.000"),
    ],
)
def test_minor_units_are_written_with_the_currency_exponent(
    currency: str, minor: int, written: str
) -> None:
    document = pacs008(batch(currency=currency, transfers=(transfer(1, minor),)))
    tx = find(pacs_message(document), "CdtTrfTxInf", PACS)
    assert text(tx, "IntrBkSttlmAmt", PACS) == written
    assert find(tx, "IntrBkSttlmAmt", PACS).get("Ccy") == currency
    assert pacs008_totals(document) == (1, minor)


def test_a_statement_in_kwd_round_trips_with_three_decimals() -> None:
    entries = (entry("T1", 7, True, 1234), entry("T2", 8, False, 5))
    document = camt053(
        statement(currency="KWD", opening_minor=0, closing_minor=1229, entries=entries)
    )
    assert text(camt_stmt(document), "Bal/Amt", CAMT) == "0.000"
    assert camt053_totals(document) == (0, 1229, 1234, 5)


def test_documents_parse_with_the_right_default_namespace() -> None:
    for document, namespace in ((camt053(statement()), CAMT), (pacs008(batch()), PACS)):
        assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
        root = parse(document)
        assert root.tag == f"{{{namespace}}}Document"
        assert all(node.tag.startswith(f"{{{namespace}}}") for node in root.iter())
        assert b"ns0" not in document
        assert f'<Document xmlns="{namespace}">'.encode() in document


def test_documents_are_pretty_printed_utf8() -> None:
    document = pacs008(batch(transfers=(transfer(1, 100, creditor_name="Zoë & Co <Ltd>"),)))
    assert b"\n    <GrpHdr>\n" in document
    tx = find(pacs_message(document), "CdtTrfTxInf", PACS)
    assert text(tx, "Cdtr/Nm", PACS) == "Zoë & Co <Ltd>"
    assert "Zoë".encode() in document


def test_the_parsers_refuse_another_message_type_and_a_dtd() -> None:
    with pytest.raises(ValueError, match=r"not \{urn:iso:std:iso:20022:tech:xsd:camt"):
        camt053_totals(pacs008(batch()))
    with_dtd = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Document/>'
    with pytest.raises(ValueError, match="DOCTYPE"):
        pacs008_totals(with_dtd)
