"""The network file: one TOML document describing a whole paynet network.

It is loaded once, in ``main()``, into frozen dataclasses and passed down. A bad
file raises :class:`ConfigError` whose message is one line naming the problem;
the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "CustomerConfig",
    "LimitsConfig",
    "MerchantConfig",
    "NetworkConfig",
    "NodeConfig",
    "ProductConfig",
    "RiskConfig",
    "Role",
    "SettlementConfig",
    "SettlementMode",
    "TimeoutsConfig",
    "load_network",
    "parse_network",
]


class ConfigError(Exception):
    """The network file cannot be used; the message is one line saying why."""


class Role(enum.StrEnum):
    """A node's role: the <role> segment of its certificate's SPIFFE id."""

    SETTLEMENT = "settlement"
    BANK = "bank"
    GATEWAY = "gateway"
    MERCHANT = "merchant"
    CUSTOMER = "customer"


SERVER_ROLES = (Role.SETTLEMENT, Role.BANK, Role.GATEWAY, Role.MERCHANT)
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_BANK_CODE = re.compile(r"^[A-Z0-9]{4,11}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SKU = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_INSTRUMENT = re.compile(r"^[0-9A-Z]{8,34}$")


@dataclass(frozen=True)
class NodeConfig:
    """One server process of the network."""

    name: str
    """Unique name; the <name> in spiffe://<trust-domain>/<role>/<name>."""
    role: Role
    """What the node does."""
    host: str
    """Host or IP the node listens on and is reached at."""
    port: int
    """TCP port; 0 only in tests that bind an ephemeral port."""
    data_dir: Path
    """Where the node keeps its SQLite store (absolute)."""
    bank_code: str | None = None
    """BIC-like code of a bank or the settlement bank; None for other roles."""

    @property
    def address(self) -> str:
        """host:port, as gRPC targets want it."""
        return f"{self.host}:{self.port}"

    @property
    def store_path(self) -> Path:
        """The node's SQLite store: ``<data_dir>/<role>.sqlite3``, e.g. ``bank.sqlite3``."""
        return self.data_dir / f"{self.role.value}.sqlite3"


@dataclass(frozen=True)
class RiskConfig:
    """Issuer risk rules that decide when a payment is challenged."""

    challenge_above_minor: int = 50_000
    """Payments above this amount (minor units) are challenged."""
    velocity_max_payments: int = 5
    """More than this many authorizations by one customer within the window are challenged."""
    velocity_window_seconds: int = 600
    """The velocity window."""
    challenge_ttl_seconds: int = 300
    """How long a one-time code is accepted."""
    challenge_max_attempts: int = 3
    """Wrong answers that lock a challenge and decline the payment."""
    hold_ttl_seconds: int = 7 * 24 * 3600
    """How long an uncaptured hold lives before it expires and releases the funds."""


class SettlementMode(enum.StrEnum):
    """How the settlement bank moves reserves."""

    GROSS = "gross"
    """Each transfer moves reserves at once (real-time gross settlement)."""
    NET = "net"
    """Transfers are netted in settlement windows; only net positions move reserves."""


@dataclass(frozen=True)
class SettlementConfig:
    """The network's settlement mode and, in net mode, its windows and caps."""

    mode: SettlementMode = SettlementMode.GROSS
    """Gross or deferred net settlement."""
    window_seconds: int = 0
    """Net mode: close a non-empty window this long after it opened; 0: by command only."""
    net_debit_cap_minor: int = 10**12
    """Net mode: how far a bank's net position may go below 0 (unless its node sets one)."""
    caps: tuple[tuple[str, int], ...] = ()
    """Net debit caps set per bank code (bank nodes' net_debit_cap_minor)."""

    def cap_of(self, bank_code: str) -> int:
        """A bank's net debit cap in minor units."""
        return dict(self.caps).get(bank_code, self.net_debit_cap_minor)


@dataclass(frozen=True)
class LimitsConfig:
    """What every node accepts and how long it remembers requests."""

    max_message_bytes: int = 4 * 1024 * 1024
    """The largest gRPC message a node receives; a bigger one is RESOURCE_EXHAUSTED."""
    idempotency_retention_seconds: int = 86400
    """How long a request_id's result is kept (and replayed); older ones are pruned."""
    max_concurrent_streams: int = 100
    """Concurrent RPCs a node serves on one connection (HTTP/2 MAX_CONCURRENT_STREAMS);
    a client's further calls wait for a free stream (until their deadline): the node
    never resets a stream for being over it once the client has its settings."""
    max_concurrent_calls_per_caller: int = 256
    """Calls one participant (by its certificate identity) may have in progress on a node
    at once, over all its connections; an open stream (a subscription, a device inbox)
    counts until it ends. A call beyond it is refused at once, RESOURCE_EXHAUSTED /
    TOO_MANY_CONCURRENT_CALLS with retry_after_seconds. Nodes stay far below it: concurrent
    payments share batched calls between nodes, and `make bench` runs 64 at once."""
    challenge_answers_per_minute: int = 10
    """AnswerChallenge calls one customer may make per minute; more are RESOURCE_EXHAUSTED."""
    failed_authentications_per_minute: int = 10
    """Refused authentications (revoked, unknown, foreign) one certificate may cause per
    minute; after that its calls are RESOURCE_EXHAUSTED until the minute has passed."""
    instruction_window_seconds: int = 300
    """How far a sealed instruction's created_at may lie from the gateway's clock, either
    way; outside it is INSTRUCTION_EXPIRED or INSTRUCTION_FROM_FUTURE. The gateway remembers
    each instruction's nonce this long, so one sealed instruction pays at most one order."""
    cheque_stale_days: int = 180
    """How old a cheque's date may be: older is STALE_DATED, at the payee and the drawee."""


@dataclass(frozen=True)
class TimeoutsConfig:
    """Deadlines of outbound calls, in seconds (``[timeouts]`` in the network file).

    A call that reaches its deadline fails DEADLINE_EXCEEDED: its outcome is
    unknown (payment.errors.OUTCOME_UNKNOWN_CODES), so it is retried with the same
    request_id or resolved by asking, never taken as a refusal.
    """

    node_call_seconds: float = 5.0
    """Every call one node makes to another: merchant to gateway, gateway to the
    issuer and acquirer, bank to the settlement bank and back."""
    operator_call_seconds: float = 30.0
    """An operator's command to a node (closing a settlement window nets every
    transfer in it; a refund through the merchant's back office)."""
    audit_call_seconds: float = 5.0
    """Reading one bank's books for the network audit."""
    client_call_seconds: float = 10.0
    """A holder's client calling a node: the customer's client (shopping, paying,
    answering a challenge), a holder reading its balance or statement."""


@dataclass(frozen=True)
class CustomerConfig:
    """A customer: an account holder at one bank, enrolled with a signing key."""

    name: str
    """Unique name; the <name> of the customer's client certificate."""
    bank: str
    """Name of the bank node holding the account (the issuer)."""
    account_id: str
    """Public id of the account at the bank."""
    opening_balance_minor: int
    """Opening balance in minor units of the network currency."""
    account_number: str
    """The bank-account instrument number. Secret."""
    card_number: str
    """The card instrument number (PAN). Secret."""


@dataclass(frozen=True)
class ProductConfig:
    """One catalog item of a merchant."""

    sku: str
    """Stock-keeping unit."""
    name: str
    """Display name."""
    unit_price_minor: int
    """Unit price in minor units of the network currency."""


@dataclass(frozen=True)
class MerchantConfig:
    """A merchant node's account and catalog."""

    name: str
    """Name of the merchant node."""
    bank: str
    """Name of the bank node holding the merchant's account (the acquirer)."""
    account_id: str
    """Public id of the merchant's account."""
    opening_balance_minor: int
    """Opening balance in minor units."""
    products: tuple[ProductConfig, ...]
    """The catalog."""


@dataclass(frozen=True)
class NetworkConfig:
    """A whole network, as described by its network file."""

    trust_domain: str
    """SPIFFE trust domain of every certificate, for example "paynet.test"."""
    currency: str
    """ISO 4217 code of the network's single currency."""
    nodes: tuple[NodeConfig, ...]
    """Every server process."""
    customers: tuple[CustomerConfig, ...]
    """Every customer."""
    merchants: tuple[MerchantConfig, ...]
    """Every merchant's account and catalog."""
    risk: RiskConfig = field(default_factory=RiskConfig)
    """Issuer risk rules."""
    settlement: SettlementConfig = field(default_factory=SettlementConfig)
    """How interbank transfers settle."""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    """Message size and idempotency retention."""
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)
    """Deadlines of outbound calls."""
    reflection: bool = False
    """Serve gRPC server reflection on every node."""
    pki_dir: Path = Path("pki")
    """Where the network's PKI lives (absolute)."""
    source: Path | None = None
    """The file this was loaded from."""

    def node(self, name: str) -> NodeConfig:
        """The node called name; KeyError if none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def nodes_with_role(self, role: Role) -> tuple[NodeConfig, ...]:
        """Every node of a role, in file order."""
        return tuple(n for n in self.nodes if n.role is role)

    def the(self, role: Role) -> NodeConfig:
        """The single node of a role (settlement, gateway)."""
        return self.nodes_with_role(role)[0]

    def bank_by_code(self, bank_code: str) -> NodeConfig | None:
        """The bank (or settlement bank) with a code, or None."""
        for node in self.nodes:
            if node.bank_code == bank_code:
                return node
        return None

    def customer(self, name: str) -> CustomerConfig:
        """The customer called name; KeyError if none."""
        for customer in self.customers:
            if customer.name == name:
                return customer
        raise KeyError(name)

    def merchant(self, name: str) -> MerchantConfig:
        """The merchant called name; KeyError if none."""
        for merchant in self.merchants:
            if merchant.name == name:
                return merchant
        raise KeyError(name)

    def total_opening_money(self) -> int:
        """Money in the network at opening: every holder's opening balance."""
        return sum(c.opening_balance_minor for c in self.customers) + sum(
            m.opening_balance_minor for m in self.merchants
        )


def load_network(path: Path | str) -> NetworkConfig:
    """Read and validate a network file; relative paths resolve against its folder."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_network(raw, base_dir=path.resolve().parent, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_network(
    raw: Mapping[str, Any], *, base_dir: Path, source: Path | None = None
) -> NetworkConfig:
    """Validate a parsed network document."""
    _only_keys(
        raw,
        "network",
        {
            "trust_domain",
            "currency",
            "reflection",
            "pki_dir",
            "nodes",
            "customers",
            "merchants",
            "risk",
            "settlement",
            "limits",
            "timeouts",
        },
    )
    trust_domain = _str(raw, "trust_domain", "network")
    if not re.fullmatch(r"[a-z0-9.-]+", trust_domain):
        raise ConfigError(f"trust_domain {trust_domain!r} must be lower-case letters, digits, dots")
    currency = _str(raw, "currency", "network")
    if not _CURRENCY.fullmatch(currency):
        raise ConfigError(f"currency {currency!r} is not an ISO 4217 code like 'EUR'")
    reflection = raw.get("reflection", False)
    if not isinstance(reflection, bool):
        raise ConfigError("reflection must be true or false")

    node_tables = _tables(raw, "nodes")
    nodes = tuple(_node(item, i, base_dir) for i, item in enumerate(node_tables))
    _unique([n.name for n in nodes], "node name")
    _unique([n.bank_code for n in nodes if n.bank_code], "bank_code")
    ports = [(n.host, n.port) for n in nodes if n.port != 0]
    for host_port in ports:
        if ports.count(host_port) > 1:
            clash = [n.name for n in nodes if (n.host, n.port) == host_port]
            raise ConfigError(
                f"port clash: nodes {' and '.join(clash)} both listen on "
                f"{host_port[0]}:{host_port[1]}"
            )
    for role in (Role.SETTLEMENT, Role.GATEWAY):
        count = sum(1 for n in nodes if n.role is role)
        if count != 1:
            raise ConfigError(f"the network needs exactly one {role} node, found {count}")
    banks = {n.name for n in nodes if n.role is Role.BANK}
    if not banks:
        raise ConfigError("the network needs at least one bank node")

    customers = tuple(_customer(item, i, banks) for i, item in enumerate(_tables(raw, "customers")))
    merchant_nodes = {n.name for n in nodes if n.role is Role.MERCHANT}
    merchants = tuple(
        _merchant(item, i, banks, merchant_nodes)
        for i, item in enumerate(_tables(raw, "merchants"))
    )
    _unique([c.name for c in customers] + [n.name for n in nodes], "participant name")
    _unique([m.name for m in merchants], "merchant")
    missing = merchant_nodes - {m.name for m in merchants}
    if missing:
        raise ConfigError(f"merchant node {sorted(missing)[0]!r} has no [[merchants]] entry")
    _unique(
        [f"{c.bank}/{c.account_id}" for c in customers]
        + [f"{m.bank}/{m.account_id}" for m in merchants],
        "account (bank/account_id)",
    )
    _unique(
        [c.card_number for c in customers] + [c.account_number for c in customers],
        "instrument number",
    )

    risk = _risk(raw.get("risk", {}))
    settlement = _settlement(raw.get("settlement", {}), node_tables, nodes)
    limits = _limits(raw.get("limits", {}))
    timeouts = _timeouts(raw.get("timeouts", {}))
    pki_dir = raw.get("pki_dir", "pki")
    if not isinstance(pki_dir, str) or not pki_dir:
        raise ConfigError("pki_dir must be a path string")
    return NetworkConfig(
        trust_domain=trust_domain,
        currency=currency,
        nodes=nodes,
        customers=customers,
        merchants=merchants,
        risk=risk,
        settlement=settlement,
        limits=limits,
        timeouts=timeouts,
        reflection=reflection,
        pki_dir=(base_dir / pki_dir).resolve(),
        source=source,
    )


def _node(item: Mapping[str, Any], index: int, base_dir: Path) -> NodeConfig:
    where = f"nodes[{index}]"
    _only_keys(
        item, where, {"name", "role", "address", "data_dir", "bank_code", "net_debit_cap_minor"}
    )
    name = _name(item, where)
    where = f"node {name!r}"
    role_text = _str(item, "role", where)
    try:
        role = Role(role_text)
    except ValueError:
        roles = ", ".join(r.value for r in SERVER_ROLES)
        raise ConfigError(f"{where} has unknown role {role_text!r} (one of: {roles})") from None
    if role is Role.CUSTOMER:
        raise ConfigError(f"{where}: customers are clients, list them under [[customers]]")
    address = _str(item, "address", where)
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{where} address {address!r} must be host:port")
    data_dir = Path(item.get("data_dir", f"data/{name}"))
    bank_code = item.get("bank_code")
    if role in (Role.BANK, Role.SETTLEMENT):
        if not isinstance(bank_code, str) or not _BANK_CODE.fullmatch(bank_code):
            raise ConfigError(f"{where} needs a bank_code of 4-11 upper-case letters or digits")
    elif bank_code is not None:
        raise ConfigError(f"{where}: only banks and the settlement bank have a bank_code")
    if "net_debit_cap_minor" in item and role is not Role.BANK:
        raise ConfigError(f"{where}: only banks have a net_debit_cap_minor")
    return NodeConfig(
        name=name,
        role=role,
        host=host,
        port=int(port_text),
        data_dir=(base_dir / data_dir).resolve(),
        bank_code=bank_code,
    )


def _customer(item: Mapping[str, Any], index: int, banks: set[str]) -> CustomerConfig:
    where = f"customers[{index}]"
    _only_keys(
        item,
        where,
        {"name", "bank", "account_id", "opening_balance_minor", "account_number", "card_number"},
    )
    name = _name(item, where)
    where = f"customer {name!r}"
    return CustomerConfig(
        name=name,
        bank=_bank_ref(item, where, banks),
        account_id=_account_id(item, where),
        opening_balance_minor=_amount(item, "opening_balance_minor", where),
        account_number=_instrument(item, "account_number", where),
        card_number=_instrument(item, "card_number", where),
    )


def _merchant(
    item: Mapping[str, Any], index: int, banks: set[str], merchant_nodes: set[str]
) -> MerchantConfig:
    where = f"merchants[{index}]"
    _only_keys(item, where, {"name", "bank", "account_id", "opening_balance_minor", "products"})
    name = _name(item, where)
    where = f"merchant {name!r}"
    if name not in merchant_nodes:
        raise ConfigError(f"{where} is not a node with role merchant")
    products = []
    for i, product in enumerate(_tables(item, "products", where)):
        pwhere = f"{where} products[{i}]"
        _only_keys(product, pwhere, {"sku", "name", "unit_price_minor"})
        sku = _str(product, "sku", pwhere)
        if not _SKU.fullmatch(sku):
            raise ConfigError(f"{pwhere} sku {sku!r} must be 1-64 letters, digits, . _ -")
        price = _amount(product, "unit_price_minor", pwhere)
        if price == 0:
            raise ConfigError(f"{pwhere} unit_price_minor must be above 0")
        products.append(
            ProductConfig(sku=sku, name=_str(product, "name", pwhere), unit_price_minor=price)
        )
    _unique([p.sku for p in products], f"{where} sku")
    if not products:
        raise ConfigError(f"{where} needs at least one product")
    return MerchantConfig(
        name=name,
        bank=_bank_ref(item, where, banks),
        account_id=_account_id(item, where),
        opening_balance_minor=_amount(item, "opening_balance_minor", where),
        products=tuple(products),
    )


def _risk(item: Any) -> RiskConfig:
    if not isinstance(item, Mapping):
        raise ConfigError("[risk] must be a table")
    defaults = RiskConfig()
    known = set(RiskConfig.__dataclass_fields__)
    _only_keys(item, "[risk]", known)
    values = {}
    for key in known:
        value = item.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"[risk] {key} must be a whole number >= 0, got {value!r}")
        values[key] = value
    if values["challenge_max_attempts"] < 1:
        raise ConfigError("[risk] challenge_max_attempts must be at least 1")
    return RiskConfig(**values)


def _limits(item: Any) -> LimitsConfig:
    if not isinstance(item, Mapping):
        raise ConfigError("[limits] must be a table")
    defaults = LimitsConfig()
    known = set(LimitsConfig.__dataclass_fields__)
    _only_keys(item, "[limits]", known)
    values = {}
    for key in known:
        value = item.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"[limits] {key} must be a whole number >= 1, got {value!r}")
        values[key] = value
    return LimitsConfig(**values)


def _timeouts(item: Any) -> TimeoutsConfig:
    if not isinstance(item, Mapping):
        raise ConfigError("[timeouts] must be a table")
    defaults = TimeoutsConfig()
    known = set(TimeoutsConfig.__dataclass_fields__)
    _only_keys(item, "[timeouts]", known)
    values = {}
    for key in known:
        value = item.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"[timeouts] {key} must be a number of seconds > 0, got {value!r}")
        values[key] = float(value)
    return TimeoutsConfig(**values)


def _settlement(
    item: Any, node_tables: list[Mapping[str, Any]], nodes: tuple[NodeConfig, ...]
) -> SettlementConfig:
    if not isinstance(item, Mapping):
        raise ConfigError("[settlement] must be a table")
    _only_keys(item, "[settlement]", {"mode", "window_seconds", "net_debit_cap_minor"})
    defaults = SettlementConfig()
    mode_text = item.get("mode", str(defaults.mode))
    try:
        mode = SettlementMode(mode_text)
    except ValueError:
        raise ConfigError(f"[settlement] mode {mode_text!r} must be 'gross' or 'net'") from None
    window = item.get("window_seconds", defaults.window_seconds)
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ConfigError(
            f"[settlement] window_seconds must be a whole number >= 0, got {window!r}"
        )
    cap = (
        _amount(item, "net_debit_cap_minor", "[settlement]")
        if "net_debit_cap_minor" in item
        else defaults.net_debit_cap_minor
    )
    caps = tuple(
        (node.bank_code, _amount(table, "net_debit_cap_minor", f"node {node.name!r}"))
        for table, node in zip(node_tables, nodes, strict=True)
        if node.bank_code is not None and "net_debit_cap_minor" in table
    )
    return SettlementConfig(mode=mode, window_seconds=window, net_debit_cap_minor=cap, caps=caps)


def _only_keys(item: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ConfigError(
            f"{where} has unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _tables(item: Mapping[str, Any], key: str, where: str = "network") -> list[Mapping[str, Any]]:
    if key not in item:
        raise ConfigError(f"{where} is missing [[{key}]]")
    value = item[key]
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where} {key} must be an array of tables ([[{key}]])")
    return value


def _str(item: Mapping[str, Any], key: str, where: str) -> str:
    if key not in item:
        raise ConfigError(f"{where} is missing key {key!r}")
    value = item[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} {key} must be a non-empty string")
    return value


def _name(item: Mapping[str, Any], where: str) -> str:
    name = _str(item, "name", where)
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where} name {name!r} must be lower-case letters, digits, '-' (max 32)")
    return name


def _bank_ref(item: Mapping[str, Any], where: str, banks: set[str]) -> str:
    bank = _str(item, "bank", where)
    if bank not in banks:
        raise ConfigError(f"{where} bank {bank!r} is not a node with role bank")
    return bank


def _account_id(item: Mapping[str, Any], where: str) -> str:
    account_id = _str(item, "account_id", where)
    if not _NAME.fullmatch(account_id):
        raise ConfigError(
            f"{where} account_id {account_id!r} must be lower-case letters, digits, '-'"
        )
    return account_id


def _instrument(item: Mapping[str, Any], key: str, where: str) -> str:
    value = _str(item, key, where)
    if not _INSTRUMENT.fullmatch(value):
        # The value is an instrument number: never echo it.
        raise ConfigError(f"{where} {key} must be 8-34 digits or upper-case letters")
    return value


def _amount(item: Mapping[str, Any], key: str, where: str) -> int:
    if key not in item:
        raise ConfigError(f"{where} is missing key {key!r}")
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{where} {key} is a bad amount {value!r}: "
            "use a whole number of minor units (1050 = 10.50)"
        )
    if not 0 <= value <= 10**15:
        raise ConfigError(f"{where} {key} is a bad amount {value}: must be between 0 and 10^15")
    return value


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            shown = "(hidden)" if what == "instrument number" else repr(value)
            raise ConfigError(f"duplicate {what} {shown}")
        seen.add(value)
