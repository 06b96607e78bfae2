"""The issuing banks' denomination key sets, as the merchant checks coins against them.

Each set comes from its bank (CashService.GetDenominations) and is taken only
if the bank's published signing key signed it and its keys encode to exactly
what was signed (:func:`read_key_set`, docs/cash.md section 2). :class:`KeySets`
keeps one per bank, fetched on first use and again when a coin names a key the
kept set lacks (at most every REFETCH_AFTER_S, so that made-up key ids cannot
turn every payment into a call to the bank); a bank that cannot be asked is
not asked again for RETRY_FAILED_FETCH_AFTER_S, so payments do not queue
behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Final

from interbank.v1 import cash_pb2

from payment import errors
from payment.cash import CashError, DenominationKey, read_key_set
from payment.cheque_trust import ChequeKeys
from payment.errors import relayed
from payment.logs import get_logger

if TYPE_CHECKING:
    from interbank.v1.cash_pb2_grpc import CashServiceAsyncStub

__all__ = ["REFETCH_AFTER_S", "RETRY_FAILED_FETCH_AFTER_S", "KeySets", "read_key_set"]

_log = get_logger("paynet.merchant")

REFETCH_AFTER_S: Final = 30.0
"""A coin naming a key the kept set lacks has the set fetched again, at most this often per
bank: a new key appears once a year, and unknown key ids must not make every payment a call."""
RETRY_FAILED_FETCH_AFTER_S: Final = 2.0
"""A bank whose key set could not be fetched (or did not verify) is asked again after this;
payments meanwhile are refused with the same error at once rather than queue behind it."""


class KeySets:
    """Issuing banks' key sets, each checked against its bank's published signing key and
    kept per bank."""

    def __init__(
        self,
        trust: ChequeKeys,
        issuer: Callable[[str], CashServiceAsyncStub | None],
        call_timeout_s: float,
    ) -> None:
        """trust: the banks' published signing keys; issuer: a bank's CashService by its
        code (None for no bank of the network); call_timeout_s: GetDenominations' deadline."""
        self._trust = trust
        self._issuer = issuer
        self._timeout_s = call_timeout_s
        self._kept: dict[str, tuple[float, dict[str, DenominationKey]]] = {}
        self._failed: dict[str, tuple[float, errors.PaynetError]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def keys(self, bank_code: str, key_ids: Collection[str]) -> Mapping[str, DenominationKey]:
        """The bank's keys by id: fetched if none are kept, or if one of key_ids is not
        among them and they are older than REFETCH_AFTER_S.

        A kept set stays in use when fetching it again fails; with none kept, the
        failure (UNAVAILABLE, KEY_SET_UNAVAILABLE, or FAILED_PRECONDITION,
        KEY_SET_INVALID) is raised, and raised again without asking the bank for
        RETRY_FAILED_FETCH_AFTER_S.
        """
        kept = self._kept.get(bank_code)
        if kept is not None and not self._due(kept, key_ids):
            return kept[1]
        async with self._locks.setdefault(bank_code, asyncio.Lock()):
            kept = self._kept.get(bank_code)  # fetched meanwhile for a concurrent payment?
            if kept is not None and not self._due(kept, key_ids):
                return kept[1]
            failed = self._failed.get(bank_code)
            if (
                kept is None
                and failed
                and time.monotonic() - failed[0] < RETRY_FAILED_FETCH_AFTER_S
            ):
                earlier = failed[1]
                raise type(earlier)(earlier.reason, earlier.message, **earlier.metadata)
            try:
                keys = await self._fetch(bank_code)
            except (errors.Unavailable, errors.FailedPrecondition) as exc:
                if kept is None:
                    self._failed[bank_code] = (time.monotonic(), exc)
                    raise
                # Not asked again for REFETCH_AFTER_S; coins of an unknown key are refused.
                self._kept[bank_code] = (time.monotonic(), kept[1])
                return kept[1]
            self._failed.pop(bank_code, None)
            self._kept[bank_code] = (time.monotonic(), keys)
            return keys

    @staticmethod
    def _due(kept: tuple[float, dict[str, DenominationKey]], key_ids: Collection[str]) -> bool:
        fetched_at, keys = kept
        missing = any(key_id not in keys for key_id in key_ids)
        return missing and time.monotonic() - fetched_at >= REFETCH_AFTER_S

    async def _fetch(self, bank_code: str) -> dict[str, DenominationKey]:
        stub = self._issuer(bank_code)
        if stub is None:
            raise errors.InvalidArgument(
                "FIELD_INVALID", "the coins' bank is no bank of this network", field="coins"
            )
        try:
            reply = await relayed(
                stub.GetDenominations(cash_pb2.GetDenominationsRequest(), timeout=self._timeout_s)
            )
        except errors.PaynetError as exc:
            _log.warning("coins.key_set_unavailable", bank_code=bank_code, reason=exc.reason)
            raise errors.Unavailable(
                "KEY_SET_UNAVAILABLE",
                f"the key set of bank {bank_code} could not be fetched; submit the coins again",
                bank_code=bank_code,
            ) from None
        try:
            keys = read_key_set(reply, bank_code, self._trust)
        except CashError as exc:
            _log.error("coins.key_set_invalid", bank_code=bank_code, field=exc.field)
            raise errors.FailedPrecondition(
                "KEY_SET_INVALID",
                f"the key set of bank {bank_code} does not verify against its published"
                " signing key: its coins cannot be taken now",
                bank_code=bank_code,
            ) from None
        _log.info("coins.key_set_fetched", bank_code=bank_code, keys=len(keys))
        return {key.key_id: key for key in keys}
