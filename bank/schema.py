"""SQLite schemas of the commercial bank's and the settlement bank's stores.

Both keep the same double-entry ledger (accounts and transfers, balances kept
in the same transaction as each transfer). Each adds the tables of its own
business on top. The common idempotency and outbox tables come from
:class:`payment.storage.Store`.
"""

from __future__ import annotations

__all__ = ["BANK_SCHEMA", "LEDGER_SCHEMA", "SETTLEMENT_SCHEMA"]

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    holder_uri TEXT,
    currency TEXT NOT NULL,
    no_overdraft INTEGER NOT NULL,
    debits_posted INTEGER NOT NULL DEFAULT 0,
    credits_posted INTEGER NOT NULL DEFAULT 0,
    debits_pending INTEGER NOT NULL DEFAULT 0,
    credits_pending INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id TEXT PRIMARY KEY,
    debit_account TEXT NOT NULL REFERENCES accounts (account_id),
    credit_account TEXT NOT NULL REFERENCES accounts (account_id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
    order_id TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    booked_at TEXT,
    booked_seq INTEGER UNIQUE,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS transfers_debit ON transfers (debit_account, booked_seq);
CREATE INDEX IF NOT EXISTS transfers_credit ON transfers (credit_account, booked_seq);
"""

BANK_SCHEMA = (
    LEDGER_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS instruments (
    instrument_hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    customer_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_keys (
    customer_name TEXT PRIMARY KEY,
    public_key_hex TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    hold_id TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    creditor_bank_code TEXT NOT NULL,
    creditor_account_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    ledger_transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
    challenge_id TEXT,
    instruction_id TEXT,
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_customer ON holds (customer_name, created_at);
CREATE INDEX IF NOT EXISTS holds_open ON holds (status, expires_at);
-- Every signed payment instruction that placed a hold, by the SHA-256 of its bytes
-- (what the customer's dual signature covers): each pays at most once. Written in the
-- transaction that places the hold; kept as long as the holds are.
CREATE TABLE IF NOT EXISTS instruction_uses (
    instruction_digest BLOB PRIMARY KEY,
    hold_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS challenges (
    challenge_id TEXT PRIMARY KEY,
    hold_id TEXT NOT NULL REFERENCES holds (hold_id),
    customer_name TEXT NOT NULL,
    secret BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outgoing_transfers (
    instruction_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'transfer' CHECK (kind IN ('transfer', 'return')),
    hold_id TEXT UNIQUE REFERENCES holds (hold_id),
    original_instruction_id TEXT,
    request_hash BLOB,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    creditor_agent TEXT NOT NULL,
    transfer BLOB NOT NULL,
    settlement_state TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    decided_at TEXT
);
CREATE INDEX IF NOT EXISTS outgoing_state ON outgoing_transfers (settlement_state);
CREATE INDEX IF NOT EXISTS outgoing_original
    ON outgoing_transfers (original_instruction_id) WHERE original_instruction_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS incoming_transfers (
    debtor_agent TEXT NOT NULL,
    instruction_id TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    account_id TEXT,
    amount INTEGER NOT NULL,
    end_to_end_id TEXT NOT NULL DEFAULT '',
    ledger_transfer_id TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (debtor_agent, instruction_id)
);
CREATE TABLE IF NOT EXISTS incoming_returns (
    returning_agent TEXT NOT NULL,
    return_id TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    original_instruction_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    account_id TEXT,
    amount INTEGER NOT NULL,
    ledger_transfer_id TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (returning_agent, return_id)
);
CREATE INDEX IF NOT EXISTS incoming_returns_original
    ON incoming_returns (original_instruction_id);
-- The drawee's side of cheques (bank.cheques). A holder's cheque account: one opaque
-- reference for all its books, serials allocated in sequence, closed by the holder.
CREATE TABLE IF NOT EXISTS cheque_accounts (
    account_id TEXT PRIMARY KEY REFERENCES accounts (account_id),
    account_reference BLOB NOT NULL UNIQUE,
    customer_name TEXT NOT NULL,
    next_serial INTEGER NOT NULL,
    closed_at TEXT
);
CREATE TABLE IF NOT EXISTS cheque_books (
    account_reference BLOB NOT NULL REFERENCES cheque_accounts (account_reference),
    first_serial INTEGER NOT NULL,
    last_serial INTEGER NOT NULL,
    bank_key_id TEXT NOT NULL,
    certificate BLOB NOT NULL,
    issued_at TEXT NOT NULL,
    PRIMARY KEY (account_reference, first_serial)
);
CREATE TABLE IF NOT EXISTS cheque_stops (
    account_reference BLOB NOT NULL,
    serial INTEGER NOT NULL,
    stopped_at TEXT NOT NULL,
    PRIMARY KEY (account_reference, serial)
);
-- Every cheque paid, by its serial: a cheque is paid at most once, whoever presents it.
-- Written in the transaction that debits the drawer.
CREATE TABLE IF NOT EXISTS cheques_paid (
    account_reference BLOB NOT NULL,
    serial INTEGER NOT NULL,
    presenting_agent TEXT NOT NULL,
    presentment_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    ledger_transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
    paid_at TEXT NOT NULL,
    PRIMARY KEY (account_reference, serial)
);
CREATE TABLE IF NOT EXISTS cheque_presentments (
    presenting_agent TEXT NOT NULL,
    presentment_id TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    amount INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (presenting_agent, presentment_id)
);
-- The acquirer's side (bank.collection): cheques its merchants deposited, each with its
-- provisional credit (a pending ledger transfer) until the drawee pays or returns it.
CREATE TABLE IF NOT EXISTS cheque_deposits (
    deposit_id TEXT PRIMARY KEY,
    request_key TEXT NOT NULL UNIQUE,
    cheque_digest BLOB NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    order_id TEXT NOT NULL,
    drawee_bank_code TEXT NOT NULL,
    serial INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    presentment BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('IN_CLEARING', 'PAID', 'RETURNED')),
    return_reason TEXT NOT NULL DEFAULT '',
    ledger_transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
    created_at TEXT NOT NULL,
    decided_at TEXT
);
CREATE INDEX IF NOT EXISTS cheque_deposits_state ON cheque_deposits (state, created_at);
-- The mint (bank.mint): each withdrawal under (customer, request_id) with its answer, and
-- the SHA-256 of each blinded message; never a coin's key or signature.
CREATE TABLE IF NOT EXISTS withdrawals (
    customer_name TEXT NOT NULL,
    request_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    amount INTEGER NOT NULL,
    blinded_digests BLOB NOT NULL,
    response BLOB NOT NULL,
    ledger_transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
    withdrawn_at TEXT NOT NULL,
    PRIMARY KEY (customer_name, request_id)
);
-- Every coin of this bank deposited, by its public key: a coin is spent at most once.
-- Written in the transaction that pays the liability out.
CREATE TABLE IF NOT EXISTS spent_coins (
    coin_public_key BLOB PRIMARY KEY,
    denomination_key_id TEXT NOT NULL,
    presenting_agent TEXT NOT NULL,
    deposit_id TEXT NOT NULL,
    contract BLOB NOT NULL,
    coin_signature BLOB NOT NULL,
    ledger_transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
    spent_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS coin_deposits_received (
    presenting_agent TEXT NOT NULL,
    deposit_id TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    proof BLOB,
    amount INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (presenting_agent, deposit_id)
);
-- The acquirer's side (bank.coin_collection): coin deposits of its merchants.
CREATE TABLE IF NOT EXISTS coin_deposits (
    deposit_id TEXT PRIMARY KEY,
    request_key TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    order_id TEXT NOT NULL,
    issuing_bank_code TEXT NOT NULL,
    amount INTEGER NOT NULL,
    message BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'ACCEPTED', 'REJECTED')),
    reason TEXT NOT NULL DEFAULT '',
    proof BLOB,
    ledger_transfer_id TEXT,
    created_at TEXT NOT NULL,
    decided_at TEXT
);
CREATE INDEX IF NOT EXISTS coin_deposits_state ON coin_deposits (state, created_at);
"""
)

SETTLEMENT_SCHEMA = (
    LEDGER_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS settlement_transfers (
    debtor_agent TEXT NOT NULL,
    instruction_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('transfer', 'return', 'cheque', 'coins')),
    original_instruction_id TEXT,
    request_hash BLOB NOT NULL,
    creditor_agent TEXT NOT NULL,
    amount INTEGER NOT NULL,
    message BLOB NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    ledger_transfer_id TEXT,
    window_id TEXT REFERENCES settlement_windows (window_id),
    detail BLOB,
    created_at TEXT NOT NULL,
    decided_at TEXT,
    PRIMARY KEY (debtor_agent, instruction_id)
);
CREATE INDEX IF NOT EXISTS settlement_status ON settlement_transfers (status);
-- Covers the netting query at window close (no table lookups, no sort).
CREATE INDEX IF NOT EXISTS settlement_window
    ON settlement_transfers (window_id, status, debtor_agent, creditor_agent, amount);
CREATE INDEX IF NOT EXISTS settlement_original
    ON settlement_transfers (original_instruction_id) WHERE original_instruction_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS settlement_windows (
    window_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'CLOSED', 'SETTLED')),
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    settled_at TEXT,
    transfer_count INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS settlement_one_open_window
    ON settlement_windows (status) WHERE status = 'OPEN';
CREATE TABLE IF NOT EXISTS window_positions (
    window_id TEXT NOT NULL REFERENCES settlement_windows (window_id),
    bank_code TEXT NOT NULL,
    net_minor INTEGER NOT NULL DEFAULT 0,
    pending_out_minor INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (window_id, bank_code)
);
"""
)
