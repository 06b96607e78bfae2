"""The client profile: what a client in another language reads instead of the network file."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from customer.profile import client_profile, write_client_profile
from ops.devnet import write_dev_network
from payment.config import load_network


def test_the_profile_names_the_customers_material_bank_merchant_and_instruments(
    tmp_path: Path,
) -> None:
    network = load_network(write_dev_network(tmp_path))
    profile = client_profile(network, "bob")
    assert profile["customer"] == "bob"
    assert profile["cert"] == str(tmp_path / "pki" / "bob" / "cert.pem")
    assert profile["key"] == str(tmp_path / "pki" / "bob" / "key.pem")
    assert profile["signing_key"] == str(tmp_path / "pki" / "bob" / "signing.key")
    assert profile["ca_cert"] == str(tmp_path / "pki" / "ca.crt")
    assert profile["bank"] == {
        "name": "beta",
        "address": network.node("beta").address,
        "bank_code": "BETAXX02",
    }
    assert profile["merchant"] == {"name": "shop", "address": network.node("shop").address}
    assert profile["account_id"] == "bob-current"
    assert profile["instruments"]["card"] == {
        "kind": "INSTRUMENT_KIND_CARD",
        "bank_code": "BETAXX02",
        "number": "4000009876543210",
    }
    assert profile["instruments"]["account"]["number"] == "BETA00000002"


def test_a_saved_profile_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    network = load_network(write_dev_network(tmp_path))
    path = write_client_profile(network, "alice", tmp_path / "profiles" / "alice.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["account_id"] == "alice-current"


def test_an_unknown_customer_or_merchant_is_named_in_the_error(tmp_path: Path) -> None:
    network = load_network(write_dev_network(tmp_path))
    with pytest.raises(KeyError, match="no customer 'mallory'"):
        client_profile(network, "mallory")
    with pytest.raises(KeyError, match="no merchant 'bazaar'"):
        client_profile(network, "alice", "bazaar")


def test_the_command_prints_json_and_exits_2_for_an_unknown_customer(tmp_path: Path) -> None:
    path = write_dev_network(tmp_path)
    command = [sys.executable, "-m", "ops.cli", "client-profile", "--network", str(path)]
    done = subprocess.run([*command, "--customer", "alice"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bank"]["name"] == "alfa"
    done = subprocess.run([*command, "--customer", "mallory"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "paynet client-profile: the network file has no customer 'mallory'"
    )
