"""A bad network file is reported in one line naming the problem, with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.cli import main
from ops.devnet import DEV_NETWORK, free_ports, write_dev_network
from payment.config import Role, SettlementMode, load_network


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "network.toml"
    path.write_text(text)
    return path


def dev_text() -> str:
    return DEV_NETWORK.read_text()


def test_the_dev_network_file_loads_into_frozen_dataclasses() -> None:
    network = load_network(DEV_NETWORK)
    assert [n.role for n in network.nodes] == [
        Role.SETTLEMENT,
        Role.BANK,
        Role.BANK,
        Role.GATEWAY,
        Role.MERCHANT,
    ]
    assert network.customer("alice").opening_balance_minor == 250000
    assert network.bank_by_code("BETAXX02") is network.node("beta")
    with pytest.raises(AttributeError):
        network.currency = "USD"  # type: ignore[misc]


def test_a_throwaway_dev_network_gets_a_distinct_free_port_per_node(tmp_path: Path) -> None:
    # Ports picked one at a time and released at once can come back twice,
    # and such a network is refused with "port clash"; this loads every time.
    for round_ in range(20):
        network = load_network(write_dev_network(tmp_path / str(round_)))
        ports = [int(node.address.rsplit(":", 1)[1]) for node in network.nodes]
        assert len(set(ports)) == len(ports) == 5
        assert all(port > 0 for port in ports)


def test_free_ports_are_distinct_even_when_many_are_asked_for() -> None:
    ports = free_ports(500)
    assert len(set(ports)) == 500


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda t: t.replace('currency = "EUR"\n', ""),
            "network is missing key 'currency'",
            id="missing-key",
        ),
        pytest.param(
            lambda t: t.replace('role = "gateway"', 'role = "wizard"'),
            "node 'gateway' has unknown role 'wizard'",
            id="unknown-role",
        ),
        pytest.param(
            lambda t: t.replace('name = "beta"\nrole = "bank"', 'name = "alfa"\nrole = "bank"'),
            "duplicate node name 'alfa'",
            id="duplicate-name",
        ),
        pytest.param(
            lambda t: t.replace("127.0.0.1:7403", "127.0.0.1:7402"),
            "port clash: nodes alfa and beta both listen on 127.0.0.1:7402",
            id="port-clash",
        ),
        pytest.param(
            lambda t: t.replace(
                "opening_balance_minor = 250000", "opening_balance_minor = 2500.50"
            ),
            "customer 'alice' opening_balance_minor is a bad amount 2500.5",
            id="float-amount",
        ),
        pytest.param(
            lambda t: t.replace("opening_balance_minor = 90000", "opening_balance_minor = -5"),
            "customer 'bob' opening_balance_minor is a bad amount -5",
            id="negative-amount",
        ),
        pytest.param(
            lambda t: t.replace("unit_price_minor = 4500", 'unit_price_minor = "45.00"'),
            "products[0] unit_price_minor is a bad amount '45.00'",
            id="string-amount",
        ),
        pytest.param(
            lambda t: t.replace(
                'bank = "beta"\naccount_id = "bob-current"',
                'bank = "gamma"\naccount_id = "bob-current"',
            ),
            "customer 'bob' bank 'gamma' is not a node with role bank",
            id="unknown-bank",
        ),
        pytest.param(lambda t: t + "\nfoo = 1\n", "has unknown key 'foo'", id="unknown-key"),
        pytest.param(
            lambda t: t.replace('trust_domain = "paynet.test"', "trust_domain = ["),
            "not valid TOML",
            id="not-toml",
        ),
    ],
)
def test_each_kind_of_bad_network_file_gives_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate, expected: str
) -> None:
    path = write(tmp_path, mutate(dev_text()))
    code = main(["health", "--network", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"paynet: {path}: ")
    assert expected in err


def test_a_missing_network_file_is_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--network", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_bad_instrument_number_is_reported_without_echoing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, dev_text().replace('"4000001234567899"', '"4000-0012-3456-7899"'))
    assert main(["health", "--network", str(path)]) == 2
    err = capsys.readouterr().err
    assert "card_number must be 8-34 digits" in err
    assert "0012" not in err


def test_the_settlement_table_sets_the_mode_window_and_caps(tmp_path: Path) -> None:
    text = dev_text().replace(
        'bank_code = "BETAXX02"', 'bank_code = "BETAXX02"\nnet_debit_cap_minor = 1234'
    )
    network = load_network(write(tmp_path, text))
    assert network.settlement.mode is SettlementMode.NET
    assert network.settlement.window_seconds == 30
    assert network.settlement.cap_of("BETAXX02") == 1234
    assert network.settlement.cap_of("ALFAXX01") == 200000


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ('mode = "net"', 'mode = "batch"', "[settlement] mode 'batch' must be 'gross' or 'net'"),
        ("window_seconds = 30", "window_seconds = -1", "window_seconds must be a whole number"),
        ("net_debit_cap_minor = 200000", "net_debit_cap_minor = 1.5", "bad amount 1.5"),
        (
            'role = "gateway"',
            'role = "gateway"\nnet_debit_cap_minor = 5',
            "only banks have a net_debit_cap_minor",
        ),
    ],
)
def test_a_bad_settlement_table_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replace: str, by: str, expected: str
) -> None:
    text = dev_text()
    assert replace in text
    path = write(tmp_path, text.replace(replace, by, 1))
    assert main(["health", "--network", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err


def test_the_limits_table_sets_message_size_and_retention(tmp_path: Path) -> None:
    network = load_network(DEV_NETWORK)
    assert network.limits.max_message_bytes == 4 * 1024 * 1024
    assert network.limits.idempotency_retention_seconds == 86400
    text = "\n".join(line for line in dev_text().splitlines() if "max_message_bytes" not in line)
    defaulted = load_network(write(tmp_path, text))
    assert defaulted.limits.max_message_bytes == 4 * 1024 * 1024


def test_the_limits_table_sets_streams_and_rate_limits(tmp_path: Path) -> None:
    network = load_network(DEV_NETWORK)
    assert network.limits.max_concurrent_streams == 100
    assert network.limits.challenge_answers_per_minute == 10
    assert network.limits.failed_authentications_per_minute == 10
    text = dev_text().replace(
        "challenge_answers_per_minute = 10", "challenge_answers_per_minute = 4"
    )
    assert load_network(write(tmp_path, text)).limits.challenge_answers_per_minute == 4


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        (
            "idempotency_retention_seconds = 86400",
            "idempotency_retention_seconds = 0",
            "[limits] idempotency_retention_seconds must be a whole number >= 1, got 0",
        ),
        (
            "max_message_bytes = 4194304",
            'max_message_bytes = "4M"',
            "[limits] max_message_bytes must be a whole number >= 1, got '4M'",
        ),
        ("[limits]", "[limits]\nmax_streams = 3", "max_streams"),
    ],
)
def test_a_bad_limits_table_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replace: str, by: str, expected: str
) -> None:
    text = dev_text()
    assert replace in text
    path = write(tmp_path, text.replace(replace, by, 1))
    assert main(["health", "--network", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err
