"""The acquirer's side of electronic cash: a merchant's coins, taken to their issuer.

:meth:`CoinCollection.deposit` records the deposit (PENDING) and has the issuing
bank take the coins: this bank's own mint in the same transaction
(:func:`bank.mint.take_coins`, the money through suspense), or another bank's
through the settlement bank (SubmitCoinDeposit, settled like a cheque
presentment: from the issuer's reserve to this bank's). The answer is booked
once (:func:`apply_coin_answer`): ACCEPTED credits the merchant at once (no
provisional credit: the issuer has already said yes); REJECTED keeps the
reason and the issuer's double-spend proof. Without an answer the deposit
stays PENDING and is sent again every retry interval with the same id; the
merchant's repeat of DepositCoins answers it as it is now.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Awaitable, Callable

from interbank.v1 import cash_pb2, common_pb2
from interbank.v1 import settlement_pb2 as pb

from bank import ledger
from bank.mint import Mint, take_coins
from bank.notices import emit_account_entry, money
from bank.opening import RESERVE, SUSPENSE
from payment import cash, errors
from payment.clock import now as clock_now
from payment.clock import to_iso
from payment.config import NetworkConfig, Role
from payment.logs import get_logger
from payment.money import require_amount
from payment.storage import Store

__all__ = ["CoinAnswer", "CoinCollection", "SubmitCoins", "apply_coin_answer"]

CoinAnswer = tuple[str, str, bytes | None]
"""The issuer's answer: (ACCEPTED, REJECTED or PENDING, reason, serialized proof or None)."""
SubmitCoins = Callable[[pb.SubmitCoinDepositRequest], Awaitable[CoinAnswer | None]]
"""Sends a coin deposit to the settlement bank; None when the outcome is unknown."""

PENDING, ACCEPTED, REJECTED = "PENDING", "ACCEPTED", "REJECTED"
_log = get_logger("paynet.bank.coins")


class CoinCollection:
    """CashService.DepositCoins over the bank's store."""

    def __init__(
        self, store: Store, network: NetworkConfig, mint: Mint, submit: SubmitCoins
    ) -> None:
        self._store = store
        self._network = network
        self._mint = mint
        self._submit = submit

    async def deposit(
        self, request: cash_pb2.DepositCoinsRequest, caller_uri: str, caller_name: str
    ) -> cash_pb2.DepositCoinsResponse:
        """Record a deposit and have the issuer take the coins (a repeat: as it is now)."""
        issuer = self._check(request, caller_name)
        moment = clock_now()

        def step(conn: sqlite3.Connection) -> str:
            return self._record(conn, request, issuer, caller_uri, caller_name, moment)

        key = f"coins\x00{caller_name}\x00{request.request_id}"
        async with self._store.exclusive(key):
            deposit_id = await self._store.claimed_transaction(
                f"DepositCoins|{caller_name}", request.request_id, request, step
            )
            await self._send(deposit_id)
        return await self._store.read(lambda conn: deposit_of(conn, deposit_id))

    def _check(self, request: cash_pb2.DepositCoinsRequest, payee: str) -> str:
        """The issuing bank's code if the deposit is well formed; INVALID_ARGUMENT if not."""
        if request.contract.merchant_name != payee:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "contract.merchant_name must be the caller: a merchant deposits its own coins",
                field="contract.merchant_name",
            )
        if not 1 <= len(request.coins) <= cash.MAX_COINS:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"a deposit takes 1 to {cash.MAX_COINS} coins",
                field="coins",
                limit=str(cash.MAX_COINS),
            )
        issuers = {coin.bank_code for coin in request.coins}
        if len(issuers) != 1:
            raise errors.InvalidArgument(
                "FIELD_INVALID", "the coins of one deposit come from one bank", field="coins"
            )
        (issuer,) = issuers
        bank = self._network.bank_by_code(issuer)
        if bank is None or bank.role is not Role.BANK:  # the settlement bank issues no coins
            raise errors.InvalidArgument(
                "FIELD_INVALID", "the coins' bank is no member of this network", field="coins"
            )
        require_amount(request.amount.amount_minor, "amount")
        if request.amount.currency_code != self._network.currency:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"amount must be in {self._network.currency}",
                field="amount.currency_code",
            )
        return issuer

    def _record(
        self,
        conn: sqlite3.Connection,
        request: cash_pb2.DepositCoinsRequest,
        issuer: str,
        caller_uri: str,
        caller_name: str,
        now: dt.datetime,
    ) -> str:
        request_key = f"{caller_name}\x00{request.request_id}"
        row = conn.execute(
            "SELECT deposit_id FROM coin_deposits WHERE request_key = ?", (request_key,)
        ).fetchone()
        if row is not None:
            return str(row[0])
        account = conn.execute(
            "SELECT account_id FROM accounts WHERE kind = 'holder' AND holder_uri = ?",
            (caller_uri,),
        ).fetchone()
        if account is None:
            raise errors.PermissionDenied(
                "ACCOUNT_NOT_HELD_BY_CALLER", "the caller holds no account at this bank"
            )
        deposit_id = str(uuid.uuid4())
        message = cash_pb2.CoinDeposit(
            deposit_id=deposit_id,
            presenting_agent=self._mint.bank_code,
            issuing_agent=issuer,
            amount=request.amount,
            contract=request.contract,
            coins=request.coins,
        )
        conn.execute(
            "INSERT INTO coin_deposits (deposit_id, request_key, account_id, order_id,"
            " issuing_bank_code, amount, message, state, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deposit_id,
                request_key,
                account[0],
                request.contract.order_id,
                issuer,
                request.amount.amount_minor,
                message.SerializeToString(),
                PENDING,
                to_iso(now),
            ),
        )
        if issuer == self._mint.bank_code:
            # This bank issued the coins: its mint takes them now, through suspense.
            answer = take_coins(conn, message, mint=self._mint, now=now, on_us=True)
            status = pb.TransferStatus.Name(answer.status).removeprefix("TRANSFER_STATUS_")
            proof = (
                answer.double_spend_proof.SerializeToString()
                if answer.HasField("double_spend_proof")
                else None
            )
            apply_coin_answer(
                conn, deposit_id, (status, answer.reason_code, proof), now=now, on_us=True
            )
        return deposit_id

    async def _send(self, deposit_id: str) -> str:
        """Send a PENDING deposit to the settlement bank and book the answer; its state."""
        row = await self._store.read(
            lambda conn: conn.execute(
                "SELECT state, message FROM coin_deposits WHERE deposit_id = ?", (deposit_id,)
            ).fetchone()
        )
        if row[0] != PENDING:
            return str(row[0])
        message = cash_pb2.CoinDeposit.FromString(row[1])
        answer = await self._submit(
            pb.SubmitCoinDepositRequest(request_id=deposit_id, deposit=message)
        )
        if answer is None or answer[0] not in (ACCEPTED, REJECTED):
            return PENDING
        return await self._store.transaction(
            lambda conn: apply_coin_answer(conn, deposit_id, answer, now=clock_now(), on_us=False)
        )

    async def send_pending(self) -> int:
        """Send every PENDING deposit again; returns how many got decided."""
        ids = await self._store.read(
            lambda conn: [
                str(r[0])
                for r in conn.execute(
                    "SELECT deposit_id FROM coin_deposits WHERE state = ? ORDER BY created_at",
                    (PENDING,),
                )
            ]
        )
        decided = 0
        for deposit_id in ids:
            async with self._store.exclusive(f"coin-deposit\x00{deposit_id}"):
                if await self._send(deposit_id) != PENDING:
                    decided += 1
        return decided


def apply_coin_answer(
    conn: sqlite3.Connection,
    deposit_id: str,
    answer: CoinAnswer,
    *,
    now: dt.datetime,
    on_us: bool,
) -> str:
    """Book the issuer's answer for a deposit once; returns its state now. With on_us the
    issuer is this bank, whose mint paid the coins into suspense in this transaction; else
    the settlement bank moved the reserves."""
    row = conn.execute(
        "SELECT state, account_id, amount, order_id, issuing_bank_code FROM coin_deposits"
        " WHERE deposit_id = ?",
        (deposit_id,),
    ).fetchone()
    if row is None:
        raise ledger.LedgerError(f"no coin deposit {deposit_id}")
    state, account_id, amount, order_id, issuer = row
    status, reason, proof = answer
    if state != PENDING or status not in (ACCEPTED, REJECTED):
        return str(state)
    transfer_id = None
    if status == ACCEPTED:
        holder = ledger.account(conn, account_id)
        assert holder is not None and holder.holder_uri is not None
        description = f"e-cash deposit, coins of {issuer}"
        transfer_id = ledger.transfer(
            conn,
            SUSPENSE if on_us else RESERVE,
            account_id,
            amount,
            holder.currency,
            now=now,
            order_id=order_id,
            description=description,
        )
        credited = ledger.account(conn, account_id)
        assert credited is not None
        emit_account_entry(
            conn,
            holder.holder_uri,
            account=common_pb2.AccountRef(account_id=account_id),
            credit=True,
            amount=money(amount, holder.currency),
            order_id=order_id,
            instruction_id=deposit_id,
            balance_after=money(credited.booked, holder.currency),
            description=description,
        )
    conn.execute(
        "UPDATE coin_deposits SET state = ?, reason = ?, proof = ?, ledger_transfer_id = ?,"
        " decided_at = ? WHERE deposit_id = ?",
        (status, reason if status == REJECTED else "", proof, transfer_id, to_iso(now), deposit_id),
    )
    _log.info("coins.decided", deposit_id=deposit_id, state=status, reason=reason)
    return status


def deposit_of(conn: sqlite3.Connection, deposit_id: str) -> cash_pb2.DepositCoinsResponse:
    """A deposit as it is now."""
    row = conn.execute(
        "SELECT d.state, d.reason, d.proof, d.amount, a.currency FROM coin_deposits d"
        " JOIN accounts a ON a.account_id = d.account_id WHERE d.deposit_id = ?",
        (deposit_id,),
    ).fetchone()
    state, reason, proof, amount, currency = row
    response = cash_pb2.DepositCoinsResponse(
        deposit_id=deposit_id,
        state=cash_pb2.CoinDepositState.Value(f"COIN_DEPOSIT_STATE_{state}"),
        reason=reason,
        amount=money(amount, currency),
    )
    if proof:
        response.double_spend_proof.ParseFromString(proof)
    return response
