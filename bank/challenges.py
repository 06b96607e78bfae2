"""Step-up challenges: a code sent to the device inbox, answered directly to the issuer.

A wrong answer must count even though the RPC fails, so each answer runs in
one transaction that *returns* its outcome (a response or an error), commits,
and only then is the error raised. Successes are remembered by request_id and
replayed; failures are not, so a retry of a failed answer is a new attempt.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import common_pb2, notification_pb2, order_pb2

from bank.holds import CHALLENGE_PENDING, VOIDED, find_hold, release_hold
from payment import errors, otp
from payment.clock import from_iso, timestamp, to_iso
from payment.clock import now as clock_now
from payment.config import RiskConfig
from payment.notifications import emit
from payment.ratelimit import SlidingWindow
from payment.storage import IdempotencyRecord, Store, request_hash

__all__ = ["Challenges", "open_challenge"]

_Outcome = authz.AnswerChallengeResponse | errors.PaynetError


class Challenges:
    """The issuer's challenge endpoint over the bank's store."""

    def __init__(self, store: Store, risk: RiskConfig, answers_per_minute: int = 10) -> None:
        self._store = store
        self._risk = risk
        self._answers = SlidingWindow(answers_per_minute)

    async def answer(
        self,
        request: authz.AnswerChallengeRequest,
        caller_uri: str,
        *,
        now: dt.datetime | None = None,
    ) -> authz.AnswerChallengeResponse:
        """Check a one-time code; authorizes the hold, counts a wrong try, or declines.

        A customer answering more than the limit per minute is refused
        RESOURCE_EXHAUSTED / CHALLENGE_ANSWERS_RATE_LIMITED before the code is looked at.
        """
        wait = self._answers.retry_after(caller_uri)
        if wait is not None:
            raise errors.ResourceExhausted(
                "CHALLENGE_ANSWERS_RATE_LIMITED",
                f"more than {self._answers.limit} challenge answers in a minute; "
                f"try again in {wait} s",
                retry_after_seconds=wait,
            )
        self._answers.hit(caller_uri)
        if not request.request_id:
            raise errors.InvalidArgument(
                "REQUEST_ID_MISSING", "request_id is required: choose a unique id per request"
            )
        moment = now or clock_now()
        scope = f"AnswerChallenge|{caller_uri}"
        digest = request_hash(request)
        kept_since = self._store.kept_since()

        def run(conn: sqlite3.Connection) -> _Outcome:
            stored = IdempotencyRecord.lookup(conn, scope, request.request_id, digest, kept_since)
            if stored is not None:
                return authz.AnswerChallengeResponse.FromString(stored)
            outcome = self._answer(conn, request, caller_uri, moment)
            if isinstance(outcome, authz.AnswerChallengeResponse):
                IdempotencyRecord.remember(
                    conn, scope, request.request_id, digest, outcome.SerializeToString()
                )
            return outcome

        async with self._store.exclusive(f"challenge\x00{request.challenge_id}"):
            outcome = await self._store.transaction(run)
        if isinstance(outcome, errors.PaynetError):
            raise outcome
        return outcome

    def _answer(
        self,
        conn: sqlite3.Connection,
        request: authz.AnswerChallengeRequest,
        caller_uri: str,
        now: dt.datetime,
    ) -> _Outcome:
        row = conn.execute(
            "SELECT c.hold_id, c.secret, c.attempts, c.status, c.expires_at, a.holder_uri"
            " FROM challenges c JOIN holds h ON h.hold_id = c.hold_id"
            " JOIN accounts a ON a.account_id = h.account_id WHERE c.challenge_id = ?",
            (request.challenge_id,),
        ).fetchone()
        # Someone else's challenge looks exactly like a missing one.
        if row is None or row[5] != caller_uri:
            return errors.NotFound("CHALLENGE_NOT_FOUND", "no such challenge for this customer")
        hold_id, secret, attempts, status, expires_at, _ = row
        hold = find_hold(conn, hold_id=hold_id)
        assert hold is not None  # joined above
        if status == "passed":
            return authz.AnswerChallengeResponse(hold_status=hold.status_proto)
        if status == "locked":
            return _locked()
        if status != "pending" or hold.status != CHALLENGE_PENDING:
            return _expired()
        if now > from_iso(expires_at):
            release_hold(conn, hold, status=VOIDED, event="declined", challenge_status="expired")
            return _expired()
        if secret is not None and otp.verify_code(bytes(secret), request.code):
            conn.execute(
                "UPDATE challenges SET status = 'passed', secret = NULL WHERE challenge_id = ?",
                (request.challenge_id,),
            )
            conn.execute("UPDATE holds SET status = 'AUTHORIZED' WHERE hold_id = ?", (hold_id,))
            return authz.AnswerChallengeResponse(hold_status=authz.HOLD_STATUS_AUTHORIZED)
        attempts += 1
        conn.execute(
            "UPDATE challenges SET attempts = ? WHERE challenge_id = ?",
            (attempts, request.challenge_id),
        )
        attempts_left = self._risk.challenge_max_attempts - attempts
        if attempts_left <= 0:
            release_hold(conn, hold, status=VOIDED, event="declined", challenge_status="locked")
            return _locked()
        return errors.InvalidArgument(
            "CHALLENGE_CODE_WRONG",
            f"the code is wrong; {attempts_left} attempt(s) left",
            attempts_left=attempts_left,
        )


def open_challenge(
    conn: sqlite3.Connection,
    *,
    hold_id: str,
    customer: str,
    recipient: str,
    merchant_name: str,
    amount: common_pb2.Money,
    issuer_code: str,
    ttl_seconds: int,
    now: dt.datetime,
) -> order_pb2.ChallengeRef:
    """Create a hold's challenge and send its code to the customer's device inbox."""
    challenge_id = str(uuid.uuid4())
    secret = otp.new_secret()
    expires_at = now + dt.timedelta(seconds=ttl_seconds)
    conn.execute(
        "INSERT INTO challenges (challenge_id, hold_id, customer_name, secret, attempts,"
        " status, created_at, expires_at) VALUES (?, ?, ?, ?, 0, 'pending', ?, ?)",
        (challenge_id, hold_id, customer, secret, to_iso(now), to_iso(expires_at)),
    )
    conn.execute("UPDATE holds SET challenge_id = ? WHERE hold_id = ?", (challenge_id, hold_id))
    # The code travels only to the customer's device inbox, never in a response.
    code = notification_pb2.OneTimeCode(
        challenge_id=challenge_id,
        code=otp.code_for(secret),
        merchant_name=merchant_name,
        amount=amount,
        expires_at=timestamp(expires_at),
    )
    emit(conn, recipient, notification_pb2.SubscribeResponse(one_time_code=code))
    return order_pb2.ChallengeRef(
        challenge_id=challenge_id, issuer_bank_code=issuer_code, expires_at=timestamp(expires_at)
    )


def _locked() -> errors.PaynetError:
    return errors.FailedPrecondition(
        "CHALLENGE_LOCKED", "too many wrong codes: the challenge is locked and the payment declined"
    )


def _expired() -> errors.PaynetError:
    return errors.FailedPrecondition(
        "CHALLENGE_EXPIRED", "the code is no longer accepted: the payment was declined"
    )
