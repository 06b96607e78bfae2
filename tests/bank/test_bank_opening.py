"""Opening the books: holder accounts, the reserve mirror, instruments and keys."""

from __future__ import annotations

from pathlib import Path

from interbank.v1 import common_pb2

from bank.audit import bank_totals, read_bank_totals, read_settlement_totals
from bank.opening import open_bank_books
from payment.clock import now


async def test_opening_credits_every_holder_and_mirrors_the_reserve(world):
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    assert await world.balance(world.alfa, "carol-current", "carol") == (5_000, 5_000, 0)
    assert await world.balance(world.beta, "bob-current", "bob") == (20_000, 20_000, 0)
    assert await world.balance(world.beta, "shop-sales", "shop") == (0, 0, 0)
    alfa = await world.alfa.store.read(bank_totals)
    beta = await world.beta.store.read(bank_totals)
    assert (alfa.reserve_balance, beta.reserve_balance) == (105_000, 20_000)
    settlement = read_settlement_totals(world.settlement_store.path)
    assert settlement.reserves == {"ALFAXX01": 105_000, "BETAXX02": 20_000, "GAMMXX03": 30_000}
    await world.assert_balanced()


async def test_opening_again_on_restart_posts_nothing_more(world):
    node = world.network.node("alfa")
    opened = await world.alfa.store.transaction(
        lambda conn: open_bank_books(conn, world.network, node, now=now())
    )
    assert opened == 0
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    await world.assert_balanced()


async def test_customer_keys_are_enrolled_from_the_pki(world):
    keys = await world.alfa.store.read(
        lambda conn: dict(conn.execute("SELECT customer_name, public_key_hex FROM customer_keys"))
    )
    assert set(keys) == {"alice", "carol"}
    assert keys["alice"] == world.pki.signing_public_key("alice").read_text().strip()


async def test_instrument_numbers_are_never_stored_in_clear(world):
    by_card = await world.authorize(amount=1_000)
    by_account = await world.authorize(
        number="ALFA00000001", kind=common_pb2.INSTRUMENT_KIND_BANK_ACCOUNT, amount=500
    )
    await world.capture(by_card.hold_id)
    await world.capture(by_account.hold_id)
    data_dir = Path(world.alfa.store.path).parent
    stored = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    for customer in world.network.customers:
        for number in (customer.card_number, customer.account_number):
            assert number.encode() not in stored


async def test_totals_can_be_read_from_the_store_file(world):
    totals = read_bank_totals(world.alfa.store.path)
    assert totals.debits_posted == totals.credits_posted == 105_000
    assert totals.balanced
