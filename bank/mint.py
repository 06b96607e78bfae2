"""The issuing bank's mint: denomination keys, withdrawals, and taking its coins back.

**Keys.** One RSA key (3072 bits) per denomination of :data:`DENOMINATIONS_MINOR`,
kept in the bank's folder of the PKI directory (``<bank>/mint/<key id>.key``,
mode 0600, with ``<key id>.json``: value, withdrawal and deposit periods). A
denomination without a key still open for withdrawal gets a new one when the
key set is next asked for (the first GetDenominations or Withdraw, and after
a key's withdrawal period): keys rotate without a restart. A key stays in the
published set until its deposit period ends. The set is signed with the bank's
Ed25519 signing key (its newest cheque-signing key).

**Withdrawal** (:meth:`Mint.withdraw`): the blinded coins are signed (RFC 9474
BlindSign, :mod:`payment.blind_rsa`), then one transaction debits the
customer's account by their face value into the bank's e-cash outstanding
liability (:data:`OUTSTANDING`) and records the withdrawal under (customer,
request_id) with its answer, so a repeat returns the same blind signatures and
moves nothing. The bank keeps the SHA-256 of each blinded message and the blind
signatures: neither equals anything a coin shows at deposit.

**Deposit** (:func:`take_coins`): the coins of one deposit are checked (a key of
this bank within its deposit period, the denomination signature, each coin's
signature over the contract for its face value) and, in one transaction, every
coin is recorded spent (``spent_coins``, keyed by the coin's public key) and
the outstanding liability debited to the reserve mirror (or, for a merchant of
this bank, to suspense, from which the acquirer credits it in the same
transaction). A coin already spent refuses the whole deposit
COIN_DOUBLE_SPENT with its first spending as proof.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from interbank.v1 import cash_pb2, common_pb2
from interbank.v1 import settlement_pb2 as pb

from bank import ledger
from bank.accounts import held_by
from bank.messages import refuse_malformed
from bank.notices import emit_account_entry, money
from bank.opening import OUTSTANDING, RESERVE, SUSPENSE
from payment import blind_rsa, cash, errors
from payment.cash import CashError, DenominationKey
from payment.cheque_trust import ChequeKeys
from payment.clock import now as clock_now
from payment.clock import timestamp, to_iso
from payment.config import NetworkConfig, NodeConfig
from payment.logs import get_logger
from payment.pki import Pki, replace_file
from payment.storage import Store, request_hash

__all__ = [
    "DENOMINATIONS_MINOR",
    "DEPOSIT_DAYS",
    "WITHDRAW_DAYS",
    "Mint",
    "make_keys",
    "take_coins",
]

DENOMINATIONS_MINOR = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
"""The coin values, in minor units: 0.01 to 50 in the network's currency."""
WITHDRAW_DAYS = 365
"""How long a denomination key signs withdrawals."""
DEPOSIT_DAYS = 3 * 365
"""How long its coins may be deposited, from the key's creation."""

_ACCEPTED = pb.TRANSFER_STATUS_ACCEPTED
_REJECTED = pb.TRANSFER_STATUS_REJECTED
_log = get_logger("paynet.bank.mint")


@dataclass(frozen=True)
class _Key:
    """A denomination key with its private half (the bank's own)."""

    public: DenominationKey
    private: rsa.RSAPrivateKey


class Mint:
    """CashService's issuer side over the bank's store and its mint folder."""

    def __init__(self, store: Store, network: NetworkConfig, node: NodeConfig) -> None:
        if node.bank_code is None:
            raise ValueError(f"node {node.name} has no bank_code")
        self._store = store
        self._network = network
        self._node = node
        self._code = node.bank_code
        self._folder = Pki(network.pki_dir).root / node.name / "mint"
        self._bank_keys = ChequeKeys(network)
        self._keys: dict[str, _Key] = {}
        self._lock = threading.Lock()

    @property
    def bank_code(self) -> str:
        """This bank's code."""
        return self._code

    # -- keys ----------------------------------------------------------------------------

    def _load(self) -> None:
        for meta in sorted(self._folder.glob("*.json")):
            key_id = meta.stem
            if key_id in self._keys:
                continue
            fields = json.loads(meta.read_text(encoding="utf-8"))
            private = serialization.load_pem_private_key(
                meta.with_suffix(".key").read_bytes(), password=None
            )
            assert isinstance(private, rsa.RSAPrivateKey)
            self._keys[key_id] = _Key(
                DenominationKey(
                    key_id,
                    int(fields["value_minor"]),
                    str(fields["currency"]),
                    private.public_key(),
                    int(fields["withdraw_until"]),
                    int(fields["deposit_until"]),
                ),
                private,
            )

    def _ensure(self, moment: dt.datetime) -> None:
        """Load the keys, and make one for each denomination with none open for withdrawal."""
        with self._lock:
            self._load()
            stamp = int(moment.timestamp())
            missing = [
                value
                for value in DENOMINATIONS_MINOR
                if not any(
                    k.public.value_minor == value and k.public.withdraw_until > stamp
                    for k in self._keys.values()
                )
            ]
            if not missing:
                return
            make_keys(self._folder, missing, self._network.currency, stamp)
            self._load()
            _log.info("mint.keys_made", denominations=len(missing))

    def key(self, key_id: str) -> DenominationKey | None:
        """A denomination key of this bank (any period), or None."""
        with self._lock:
            if key_id not in self._keys:
                self._load()
            found = self._keys.get(key_id)
        return found.public if found else None

    def published(self, moment: dt.datetime) -> list[DenominationKey]:
        """The key set: every key still within its deposit period, by value then id."""
        self._ensure(moment)
        stamp = int(moment.timestamp())
        with self._lock:
            keys = [k.public for k in self._keys.values() if k.public.deposit_until > stamp]
        return sorted(keys, key=lambda k: (k.value_minor, k.withdraw_until, k.key_id))

    async def denominations(self) -> cash_pb2.GetDenominationsResponse:
        """The signed key set (keys made first if a denomination has none open)."""
        moment = clock_now()
        keys = await asyncio.to_thread(self.published, moment)
        encoding = cash.key_set_encoding(self._code, keys)
        bank_key_id, bank_key = self._bank_keys.signing_key(self._node.name)
        return cash_pb2.GetDenominationsResponse(
            bank_code=self._code,
            key_set=encoding,
            signature=cash.sign_key_set(bank_key, encoding),
            bank_key_id=bank_key_id,
            denominations=[
                cash_pb2.Denomination(
                    denomination_key_id=k.key_id,
                    value=money(k.value_minor, k.currency),
                    public_key=k.public_der,
                    withdraw_until=timestamp(dt.datetime.fromtimestamp(k.withdraw_until, dt.UTC)),
                    deposit_until=timestamp(dt.datetime.fromtimestamp(k.deposit_until, dt.UTC)),
                )
                for k in keys
            ],
        )

    # -- withdrawal ----------------------------------------------------------------------

    async def withdraw(
        self, request: cash_pb2.WithdrawRequest, caller_uri: str, caller_name: str
    ) -> cash_pb2.WithdrawResponse:
        """Sign the blinded coins and debit the caller once per request_id."""
        if not 1 <= len(request.coins) <= cash.MAX_COINS:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"a withdrawal takes 1 to {cash.MAX_COINS} coins",
                field="coins",
                limit=str(cash.MAX_COINS),
            )
        scope = f"Withdraw|{caller_name}"

        def recorded(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT response FROM withdrawals WHERE customer_name = ? AND request_id = ?",
                (caller_name, request.request_id),
            ).fetchone()
            return bytes(row[0]) if row else None

        # A repeat is answered from the record before any check of keys or periods: a
        # withdrawal that debited the account is never refused afterwards.
        kept = await self._store.read(recorded)
        if kept is not None:
            await self._store.claimed_transaction(scope, request.request_id, request, recorded)
            return cash_pb2.WithdrawResponse.FromString(kept)
        moment = clock_now()
        stamp = int(moment.timestamp())
        await asyncio.to_thread(self._ensure, moment)
        keys: list[_Key] = []
        for index, coin in enumerate(request.coins):
            with self._lock:
                found = self._keys.get(coin.denomination_key_id)
            if found is None:
                raise errors.InvalidArgument(
                    "DENOMINATION_UNKNOWN",
                    "no denomination key of this bank has that id: ask GetDenominations",
                    denomination_key_id=coin.denomination_key_id[:64],
                )
            if found.public.withdraw_until <= stamp:
                raise errors.InvalidArgument(
                    "DENOMINATION_EXPIRED",
                    "that denomination key no longer signs withdrawals: ask GetDenominations",
                    denomination_key_id=coin.denomination_key_id,
                )
            n = found.public.public_key.public_numbers().n
            size = (n.bit_length() + 7) // 8
            blinded = coin.blinded_message
            if len(blinded) != size or int.from_bytes(blinded, "big") >= n:
                raise errors.InvalidArgument(
                    "FIELD_INVALID",
                    f"coins[{index}].blinded_message must be {size} bytes below the modulus",
                    field=f"coins[{index}].blinded_message",
                )
            keys.append(found)
        total = sum(k.public.value_minor for k in keys)

        def sign_all() -> list[bytes]:
            return [
                blind_rsa.blind_sign(k.private, c.blinded_message)
                for k, c in zip(keys, request.coins, strict=True)
            ]

        signatures = await asyncio.to_thread(sign_all)

        def step(conn: sqlite3.Connection) -> cash_pb2.WithdrawResponse:
            row = conn.execute(
                "SELECT response FROM withdrawals WHERE customer_name = ? AND request_id = ?",
                (caller_name, request.request_id),
            ).fetchone()
            if row is not None:
                return cash_pb2.WithdrawResponse.FromString(row[0])
            account = held_by(conn, request.account_id, caller_uri)
            try:
                transfer_id = ledger.transfer(
                    conn,
                    account.account_id,
                    OUTSTANDING,
                    total,
                    account.currency,
                    now=moment,
                    description=f"e-cash withdrawal, {len(keys)} coins",
                )
            except ledger.LimitExceeded:
                raise errors.FailedPrecondition(
                    "INSUFFICIENT_FUNDS", "the account cannot pay for these coins"
                ) from None
            response = cash_pb2.WithdrawResponse(
                blind_signatures=signatures, debited=money(total, account.currency)
            )
            conn.execute(
                "INSERT INTO withdrawals (customer_name, request_id, account_id, amount,"
                " blinded_digests, response, ledger_transfer_id, withdrawn_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    caller_name,
                    request.request_id,
                    account.account_id,
                    total,
                    b"".join(hashlib.sha256(c.blinded_message).digest() for c in request.coins),
                    response.SerializeToString(),
                    transfer_id,
                    to_iso(moment),
                ),
            )
            held = ledger.account(conn, account.account_id)
            assert held is not None and held.holder_uri is not None
            emit_account_entry(
                conn,
                held.holder_uri,
                account=common_pb2.AccountRef(bank_code=self._code, account_id=account.account_id),
                credit=False,
                amount=money(total, account.currency),
                order_id="",
                instruction_id=request.request_id,
                balance_after=money(held.booked, account.currency),
                description=f"e-cash withdrawal, {len(keys)} coins",
            )
            return response

        return await self._store.claimed_transaction(scope, request.request_id, request, step)

    # -- deposits delivered by the settlement bank ---------------------------------------

    async def receive(self, request: pb.ReceiveCoinDepositRequest) -> pb.ReceiveCoinDepositResponse:
        """Take a coin deposit presented through the settlement bank, once."""
        deposit = request.deposit
        for name in ("deposit_id", "presenting_agent"):
            if not getattr(deposit, name):
                raise errors.InvalidArgument(
                    "FIELD_INVALID", f"deposit.{name} is required", field=f"deposit.{name}"
                )
        refuse_malformed(deposit)
        if deposit.issuing_agent != self._code:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"deposit.issuing_agent is not this bank ({self._code})",
                field="deposit.issuing_agent",
            )
        key = f"coins\x00{deposit.presenting_agent}\x00{deposit.deposit_id}"
        moment = clock_now()
        async with self._store.exclusive(key):
            return await self._store.claimed_transaction(
                "ReceiveCoinDeposit",
                request.request_id,
                request,
                lambda conn: take_coins(conn, deposit, mint=self, now=moment, on_us=False),
            )


def make_keys(folder: Path, values: Sequence[int], currency: str, stamp: int) -> None:
    """Make and write one denomination key per value into a mint folder, open for
    withdrawal from stamp (Unix seconds) for WITHDRAW_DAYS and for deposit DEPOSIT_DAYS."""
    folder.mkdir(parents=True, exist_ok=True)
    # OpenSSL makes the keys without the GIL: two at a time on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        made = list(pool.map(lambda _: blind_rsa.generate_signing_key(), values))
    for value, private in zip(values, made, strict=True):
        key_id = cash.denomination_key_id(private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        replace_file(folder / f"{key_id}.key", pem, 0o600)
        meta = {
            "value_minor": value,
            "currency": currency,
            "withdraw_until": stamp + WITHDRAW_DAYS * 86400,
            "deposit_until": stamp + DEPOSIT_DAYS * 86400,
        }
        # The metadata last: a key is in the set once its private half is in place.
        replace_file(folder / f"{key_id}.json", json.dumps(meta).encode(), 0o644)


def take_coins(
    conn: sqlite3.Connection,
    deposit: cash_pb2.CoinDeposit,
    *,
    mint: Mint,
    now: dt.datetime,
    on_us: bool,
) -> pb.ReceiveCoinDepositResponse:
    """Accept a deposit's coins (all spent now, the liability paid out) or refuse them
    all, once per (presenting agent, deposit id)."""
    digest = request_hash(deposit)
    row = conn.execute(
        "SELECT request_hash, status, reason_code, proof FROM coin_deposits_received"
        " WHERE presenting_agent = ? AND deposit_id = ?",
        (deposit.presenting_agent, deposit.deposit_id),
    ).fetchone()
    if row is not None:
        if bytes(row[0]) != digest:
            raise errors.AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                "this deposit_id was already presented with different content",
                deposit_id=deposit.deposit_id,
            )
        return _answer(deposit.deposit_id, str(row[1]), str(row[2]), row[3])
    reason, proof = _refusal(conn, deposit, mint, now)
    if reason is None:
        _spend(conn, deposit, now, on_us)
    status = "REJECTED" if reason else "ACCEPTED"
    blob = proof.SerializeToString() if proof is not None else None
    conn.execute(
        "INSERT INTO coin_deposits_received (presenting_agent, deposit_id, request_hash, status,"
        " reason_code, proof, amount, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            deposit.presenting_agent,
            deposit.deposit_id,
            digest,
            status,
            reason or "",
            blob,
            deposit.amount.amount_minor,
            to_iso(now),
        ),
    )
    return _answer(deposit.deposit_id, status, reason or "", blob)


def _answer(
    deposit_id: str, status: str, reason: str, proof: bytes | None
) -> pb.ReceiveCoinDepositResponse:
    answer = pb.ReceiveCoinDepositResponse(
        deposit_id=deposit_id,
        status=_ACCEPTED if status == "ACCEPTED" else _REJECTED,
        reason_code=reason,
    )
    if proof:
        answer.double_spend_proof.ParseFromString(proof)
    return answer


def _refusal(
    conn: sqlite3.Connection, deposit: cash_pb2.CoinDeposit, mint: Mint, now: dt.datetime
) -> tuple[str | None, cash_pb2.CoinSpendProof | None]:
    """Why the coins cannot be taken (and the proof of a double spend), or (None, None)."""
    contract = deposit.contract
    total = 0
    seen: set[bytes] = set()
    for coin in deposit.coins:
        key = mint.key(coin.denomination_key_id) if coin.bank_code == mint.bank_code else None
        if key is None:
            return "COIN_INVALID", None
        if key.deposit_until <= int(now.timestamp()):
            return "DENOMINATION_EXPIRED", None
        try:
            cash.verify_coin(
                key,
                coin.bank_code,
                coin.coin_public_key,
                coin.message_prefix,
                coin.denomination_signature,
                coin.coin_signature,
                (contract.order_id, contract.order_digest, contract.merchant_name),
            )
        except CashError:
            return "COIN_INVALID", None
        if coin.coin_public_key in seen or key.currency != deposit.amount.currency_code:
            return "COIN_INVALID", None  # a coin twice, or a sum in another currency
        seen.add(coin.coin_public_key)
        total += key.value_minor
    if not deposit.coins or total != deposit.amount.amount_minor:
        return "COIN_INVALID", None
    for coin in deposit.coins:
        spent = conn.execute(
            "SELECT contract, coin_signature FROM spent_coins WHERE coin_public_key = ?",
            (coin.coin_public_key,),
        ).fetchone()
        if spent is not None:
            proof = cash_pb2.CoinSpendProof(
                coin_public_key=coin.coin_public_key,
                contract=cash_pb2.CoinContract.FromString(spent[0]),
                coin_signature=spent[1],
            )
            return "COIN_DOUBLE_SPENT", proof
    return None, None


def _spend(
    conn: sqlite3.Connection, deposit: cash_pb2.CoinDeposit, now: dt.datetime, on_us: bool
) -> None:
    amount = deposit.amount
    transfer_id = ledger.transfer(
        conn,
        OUTSTANDING,
        SUSPENSE if on_us else RESERVE,
        amount.amount_minor,
        amount.currency_code,
        now=now,
        order_id=deposit.contract.order_id,
        description=f"e-cash deposit from {deposit.presenting_agent}, {len(deposit.coins)} coins",
    )
    contract = deposit.contract.SerializeToString()
    conn.executemany(
        "INSERT INTO spent_coins (coin_public_key, denomination_key_id, presenting_agent,"
        " deposit_id, contract, coin_signature, ledger_transfer_id, spent_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                coin.coin_public_key,
                coin.denomination_key_id,
                deposit.presenting_agent,
                deposit.deposit_id,
                contract,
                coin.coin_signature,
                transfer_id,
                to_iso(now),
            )
            for coin in deposit.coins
        ],
    )
