"""A throwaway copy of the dev network: free loopback ports, its own data and PKI.

``make run`` and the tests use it so that nothing clashes with a network
already running and nothing is left in the checkout.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable
from pathlib import Path

__all__ = ["DEV_NETWORK", "add_customers", "free_ports", "write_dev_network"]

DEV_NETWORK = Path(__file__).resolve().parents[1] / "network" / "dev.toml"


def free_ports(count: int) -> list[int]:
    """count distinct TCP ports on 127.0.0.1 that nothing listens on right now.

    Every socket stays bound until the last port is picked: a port picked and
    released at once can be handed out again by the next bind, and two nodes
    given the same port make a network that does not load (port clash).
    """
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def write_dev_network(
    directory: Path,
    *,
    reflection: bool = True,
    settlement_mode: str | None = None,
    pick_ports: Callable[[int], list[int]] = free_ports,
    **rules: int,
) -> Path:
    """Write the dev network into directory with fresh ports; returns the file.

    Data directories and the PKI go under directory; whole-number rules of
    [risk] and [settlement] can be overridden by name (for example
    hold_ttl_seconds=2, window_seconds=0), and the settlement mode set.
    pick_ports(count) chooses the ports (parallel test workers pass their own).
    """
    text = DEV_NETWORK.read_text(encoding="utf-8")
    address = r'address = "127\.0\.0\.1:\d+"'
    ports = iter(pick_ports(len(re.findall(address, text))))
    text = re.sub(address, lambda _m: f'address = "127.0.0.1:{next(ports)}"', text)
    text = text.replace('"../var/data/', '"data/').replace(
        'pki_dir = "../var/pki"', 'pki_dir = "pki"'
    )
    text = re.sub(
        r"^reflection = \w+", f"reflection = {'true' if reflection else 'false'}", text, flags=re.M
    )
    for key, value in rules.items():
        text, count = re.subn(rf"^{key} = \d+", f"{key} = {int(value)}", text, flags=re.M)
        if count != 1:
            raise KeyError(f"no rule {key!r} in {DEV_NETWORK.name}")
    if settlement_mode is not None:
        text = re.sub(r'^mode = "\w+"', f'mode = "{settlement_mode}"', text, flags=re.M)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "network.toml"
    path.write_text(text, encoding="utf-8")
    return path


def add_customers(
    path: Path, names: tuple[str, ...], opening_balance_minor: int, banks: tuple[str, ...]
) -> None:
    """Append customers to a network file, the i-th at banks[i % len(banks)].

    Each gets the account "<name>-current" and its own card and account numbers.
    """
    blocks = []
    for i, name in enumerate(names):
        bank = banks[i % len(banks)]
        blocks.append(
            f"""
[[customers]]
name = "{name}"
bank = "{bank}"
account_id = "{name}-current"
opening_balance_minor = {opening_balance_minor}
account_number = "{bank.upper()}9{i:07d}"
card_number = "49{i % 2}{i:013d}"
"""
        )
    with path.open("a", encoding="utf-8") as out:
        out.write("".join(blocks))
