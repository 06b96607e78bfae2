"""The ``paynet`` command.

    paynet pki init    --network FILE --out DIR [--force]
    paynet pki revoke  (NAME | --serial HEX | --cert FILE) (--network FILE | --pki DIR)
    paynet pki rotate  NAME --network FILE
    paynet pki rotate-cheque-key BANK --network FILE
    paynet serve ROLE  --network FILE --name NAME
    paynet up          --network FILE
    paynet health      --network FILE
    paynet shop        --network FILE --customer NAME --buy SKU[:QTY] ... [--instrument KIND]
    paynet wallet      --network FILE --customer NAME [--file PATH]
    paynet client-profile --network FILE --customer NAME [--merchant NAME]
    paynet demo        a fresh network in a temporary directory, purchases, refund, audit
    paynet settlement close|window --network FILE [--window ID]
    paynet refund      --network FILE --merchant NAME --order ID [--amount MINOR]
    paynet audit       --network FILE
    paynet reconcile   --network FILE [--json]
    paynet export statement --network FILE --holder NAME --account ID [--from T] [--to T] --out DIR
    paynet export window    --network FILE --window ID --out DIR

A bad network file is reported in one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from payment.config import ConfigError, NetworkConfig, Role, load_network

__all__ = ["main"]

EXIT_USAGE = 2


def _network(path: str) -> NetworkConfig:
    return load_network(Path(path))


def _cmd_pki_init(args: argparse.Namespace) -> int:
    from payment.pki import PkiExistsError, init_pki

    network = _network(args.network)
    out = Path(args.out) if args.out else network.pki_dir
    try:
        pki = init_pki(network, out, force=args.force)
    except PkiExistsError as exc:
        print(f"paynet pki init: {exc}", file=sys.stderr)
        return 1
    print(
        f"PKI for trust domain {network.trust_domain} written to {pki.root} "
        f"({len(network.nodes)} nodes, {len(network.customers)} customers)"
    )
    return 0


def _cmd_pki_revoke(args: argparse.Namespace) -> int:
    from payment.pki import Pki, revoke, revoke_serial

    if (args.network is None) == (args.pki is None):
        print("paynet pki revoke: give --network FILE or --pki DIR", file=sys.stderr)
        return EXIT_USAGE
    pki = Pki(_network(args.network).pki_dir if args.network else Path(args.pki))
    chosen = [x for x in (args.name, args.serial, args.cert) if x]
    if len(chosen) != 1:
        print("paynet pki revoke: name one of NAME, --serial HEX or --cert FILE", file=sys.stderr)
        return EXIT_USAGE
    if args.cert:
        serial = revoke(pki, Path(args.cert))
    elif args.serial:
        try:
            serial = revoke_serial(pki, int(args.serial, 16))
        except ValueError:
            print(f"paynet pki revoke: {args.serial!r} is not a hex serial", file=sys.stderr)
            return EXIT_USAGE
    else:
        if not pki.cert(args.name).exists():
            print(
                f"paynet pki revoke: no certificate for {args.name!r} in {pki.root}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        serial = revoke(pki, pki.cert(args.name))
    print(
        f"revoked serial {serial:x}; CRL {pki.crl} re-signed; running nodes refuse it "
        "within a second, on new connections and on existing ones"
    )
    return 0


def _cmd_pki_rotate(args: argparse.Namespace) -> int:
    from payment.pki import Pki, rotate

    network = _network(args.network)
    try:
        old, new = rotate(network, Pki(network.pki_dir), args.name)
    except KeyError:
        print(
            f"paynet pki rotate: no node or customer {args.name!r} in {args.network}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(
        f"{args.name}: new key and certificate, serial {old:x} -> {new:x}; a running node "
        "serves it to new connections and its clients reconnect with it, without a restart. "
        f"The old certificate stays valid until revoked: paynet pki revoke --network "
        f"{args.network} --serial {old:x}"
    )
    return 0


def _cmd_pki_rotate_cheque_key(args: argparse.Namespace) -> int:
    from payment.pki import Pki, rotate_cheque_key

    network = _network(args.network)
    try:
        bank = network.node(args.bank)
    except KeyError:
        bank = None
    if bank is None or bank.role is not Role.BANK or bank.bank_code is None:
        print(
            f"paynet pki rotate-cheque-key: no bank {args.bank!r} in {args.network}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    key_id = rotate_cheque_key(Pki(network.pki_dir), bank.name, bank.bank_code)
    print(
        f"{bank.name}: new cheque-signing key {key_id}, published; the bank signs the cheque"
        " books it issues from now on with it (no restart). Earlier keys stay published, so"
        " their books' cheques keep clearing."
    )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from ops.nodes import APP_FACTORIES
    from payment.logs import configure_logging
    from payment.server import serve_node

    network = _network(args.network)
    try:
        node = network.node(args.name)
    except KeyError:
        raise ConfigError(f"no node named {args.name!r} in {args.network}") from None
    if str(node.role) != args.role:
        raise ConfigError(f"node {node.name!r} has role {node.role}, not {args.role}")
    configure_logging(node=node.name)
    asyncio.run(serve_node(network, node, APP_FACTORIES[node.role]))
    return 0


def _cmd_client_profile(args: argparse.Namespace) -> int:
    from customer.profile import client_profile

    network = _network(args.network)
    try:
        profile = client_profile(network, args.customer, args.merchant)
    except KeyError as exc:
        print(f"paynet client-profile: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(profile, indent=2))
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    from ops.launcher import LocalNetwork, run_until_signal

    network = _network(args.network)
    if not pki_exists(network):
        print(
            f"paynet up: no PKI at {network.pki_dir}; run 'paynet pki init --network "
            f"{args.network}' first",
            file=sys.stderr,
        )
        return 1
    net = LocalNetwork(network, Path(args.network), log_sink=sys.stdout)
    names = ", ".join(f"{n.name} ({n.role}) {n.address}" for n in network.nodes)
    return asyncio.run(
        run_until_signal(
            net, on_ready=lambda: print(f"paynet up: all nodes SERVING: {names}", flush=True)
        )
    )


def pki_exists(network: NetworkConfig) -> bool:
    """Whether the network's PKI directory holds a CA."""
    return (network.pki_dir / "ca.crt").exists()


def _cmd_health(args: argparse.Namespace) -> int:
    from ops.launcher import check_health

    network = _network(args.network)

    async def run() -> list[tuple[str, str, str, str, str]]:
        reports = await asyncio.gather(*(check_health(network, n) for n in network.nodes))
        return [
            (
                r.node.name,
                str(r.node.role),
                r.node.address,
                r.status,
                f"{r.latency_ms:.1f} ms" if r.status == "SERVING" else r.detail,
            )
            for r in reports
        ]

    rows = asyncio.run(run())
    header = ("NODE", "ROLE", "ADDRESS", "STATUS", "DETAIL")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0 if all(r[3] == "SERVING" for r in rows) else 1


def _cmd_shop(args: argparse.Namespace) -> int:
    from customer.shop import shop

    network = _network(args.network)
    return asyncio.run(shop(network, args.customer, args.merchant, args.buy, args.instrument))


def _cmd_wallet(args: argparse.Namespace) -> int:
    from customer.wallet import CoinWallet, default_wallet_path, render_wallet
    from payment.clock import now

    network = _network(args.network)
    try:
        network.customer(args.customer)
    except KeyError:
        print(f"paynet wallet: no customer {args.customer!r} in {args.network}", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.file) if args.file else default_wallet_path(network, args.customer)
    if not path.exists():
        print(f"paynet wallet: {args.customer} has no wallet at {path} yet", file=sys.stderr)
        return 1
    try:
        wallet = CoinWallet(path)
    except ValueError as exc:
        print(f"paynet wallet: {exc}", file=sys.stderr)
        return 1
    print(f"wallet of {args.customer}: {path}")
    print(render_wallet(wallet, now()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ops.demo import run_demo

    return asyncio.run(run_demo(keep=args.keep))


def _cmd_settlement(args: argparse.Namespace) -> int:
    from ops.operations import close_window, get_window, window_json
    from payment.errors import PaynetError

    network = _network(args.network)
    try:
        if args.settlement_command == "close":
            window = asyncio.run(close_window(network))
        else:
            window = asyncio.run(get_window(network, args.window or ""))
    except PaynetError as exc:
        print(f"paynet settlement {args.settlement_command}: {exc.reason}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(window_json(window)))
    return 0


def _cmd_refund(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    from ops.operations import refund_order
    from payment.errors import PaynetError

    network = _network(args.network)
    try:
        reply = asyncio.run(refund_order(network, args.merchant, args.order, args.amount))
    except PaynetError as exc:
        print(f"paynet refund: {exc.reason}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(MessageToDict(reply)))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from ops.audit import audit_network

    report = asyncio.run(audit_network(_network(args.network), settle_seconds=args.settle))
    print(json.dumps(report.to_json()))
    return 0 if report.ok else 1


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from ops.reconcile import reconcile, render_table

    report = reconcile(_network(args.network))
    if not args.json:
        print(render_table(report))
    print(json.dumps(report.to_json()))
    return 0 if report.ok else 1


def _moment(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not an ISO-8601 time like 2026-11-26T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _cmd_export(args: argparse.Namespace) -> int:
    from ops.export import ExportError, export_statement, export_window

    network = _network(args.network)
    out = Path(args.out)
    try:
        if args.export_command == "statement":
            path = asyncio.run(
                export_statement(
                    network,
                    args.holder,
                    args.account,
                    out,
                    from_time=_moment(args.from_time),
                    to_time=_moment(args.to_time),
                )
            )
        else:
            path = export_window(network, args.window, out)
    except (ExportError, ValueError) as exc:
        print(f"paynet export {args.export_command}: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the paynet command."""
    parser = argparse.ArgumentParser(
        prog="paynet", description="paynet: an interbank payment network over gRPC and mutual TLS"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    pki = sub.add_parser("pki", help="the network's certificates and keys").add_subparsers(
        dest="pki_command", required=True
    )
    init = pki.add_parser("init", help="make a CA, node and customer certificates, CRL, HPKE key")
    init.add_argument("--network", required=True, help="the network file (TOML)")
    init.add_argument("--out", help="output directory (default: the file's pki_dir)")
    init.add_argument("--force", action="store_true", help="replace an existing PKI")
    init.set_defaults(func=_cmd_pki_init)
    rev = pki.add_parser("revoke", help="add a certificate to the CA's CRL (nodes reload it)")
    rev.add_argument("name", nargs="?", help="the participant whose current certificate to revoke")
    rev.add_argument("--serial", help="revoke this serial (hex) instead")
    rev.add_argument("--cert", help="revoke this certificate file (PEM) instead")
    rev.add_argument("--network", help="the network file (TOML); its pki_dir is used")
    rev.add_argument("--pki", help="the PKI directory, instead of --network")
    rev.set_defaults(func=_cmd_pki_revoke)
    rot = pki.add_parser("rotate", help="new key and certificate for a participant, no restart")
    rot.add_argument("name", help="the node or customer")
    rot.add_argument("--network", required=True, help="the network file (TOML)")
    rot.set_defaults(func=_cmd_pki_rotate)
    chq = pki.add_parser(
        "rotate-cheque-key", help="a new cheque-signing key for a bank, the old ones kept"
    )
    chq.add_argument("bank", help="the bank node")
    chq.add_argument("--network", required=True, help="the network file (TOML)")
    chq.set_defaults(func=_cmd_pki_rotate_cheque_key)

    serve = sub.add_parser("serve", help="run one node")
    serve.add_argument("role", choices=[str(r) for r in Role if r is not Role.CUSTOMER])
    serve.add_argument("--network", required=True, help="the network file (TOML)")
    serve.add_argument("--name", required=True, help="the node's name in the network file")
    serve.set_defaults(func=_cmd_serve)

    up = sub.add_parser("up", help="run every node of a network as its own process")
    up.add_argument("--network", required=True, help="the network file (TOML)")
    up.set_defaults(func=_cmd_up)

    health = sub.add_parser("health", help="check every node over mTLS")
    health.add_argument("--network", required=True, help="the network file (TOML)")
    health.set_defaults(func=_cmd_health)

    shop = sub.add_parser("shop", help="buy as a customer against a running network")
    shop.add_argument("--network", required=True, help="the network file (TOML)")
    shop.add_argument("--customer", required=True, help="the customer's name")
    shop.add_argument("--merchant", default=None, help="the merchant (default: the first)")
    shop.add_argument("--buy", nargs="+", required=True, metavar="SKU[:QTY]", help="what to buy")
    shop.add_argument(
        "--instrument",
        choices=["card", "account", "cheque", "coins"],
        default="card",
        help="pay by card, by bank account, by electronic cheque, or with electronic cash "
        "(coins from the customer's wallet; the order's total withdrawn first if no "
        "unspent coins add up to it)",
    )
    shop.set_defaults(func=_cmd_shop)

    wallet = sub.add_parser(
        "wallet",
        help="show a customer's e-cash wallet",
        description="Show a customer's e-cash wallet file: its coins by issuing bank and "
        "denomination (how many unspent, how many spent), the unspent total, the number "
        "of spent coins and of withdrawals still waiting for the bank's answer. It reads "
        "the file only (no node is asked) and never shows a coin's key.",
    )
    wallet.add_argument("--network", required=True, help="the network file (TOML)")
    wallet.add_argument("--customer", required=True, help="the customer's name")
    wallet.add_argument(
        "--file",
        help="the wallet file (default: wallet.json in the customer's folder of the PKI "
        "directory, where paynet shop --instrument coins keeps it)",
    )
    wallet.set_defaults(func=_cmd_wallet)

    profile = sub.add_parser(
        "client-profile",
        help="JSON with what a client in another language needs to buy as a customer",
    )
    profile.add_argument("--network", required=True, help="the network file (TOML)")
    profile.add_argument("--customer", required=True, help="the customer's name")
    profile.add_argument("--merchant", default=None, help="the merchant (default: the first)")
    profile.set_defaults(func=_cmd_client_profile)

    settlement = sub.add_parser(
        "settlement", help="settlement windows (net mode), as the settlement bank's operator"
    ).add_subparsers(dest="settlement_command", required=True)
    close = settlement.add_parser("close", help="close the open window and settle it")
    close.add_argument("--network", required=True, help="the network file (TOML)")
    close.set_defaults(func=_cmd_settlement)
    window = settlement.add_parser("window", help="show a window and its net positions")
    window.add_argument("--network", required=True, help="the network file (TOML)")
    window.add_argument("--window", help="the window id (default: the open window)")
    window.set_defaults(func=_cmd_settlement)

    refund = sub.add_parser("refund", help="refund a settled order, as the merchant")
    refund.add_argument("--network", required=True, help="the network file (TOML)")
    refund.add_argument("--merchant", required=True, help="the merchant's name")
    refund.add_argument("--order", required=True, help="the order id")
    refund.add_argument(
        "--amount", type=int, help="minor units to refund (default: all not yet refunded)"
    )
    refund.set_defaults(func=_cmd_refund)

    audit = sub.add_parser("audit", help="check every bank's books over mTLS; JSON, exit 1 if bad")
    audit.add_argument("--network", required=True, help="the network file (TOML)")
    audit.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds to wait for transfers in flight before judging (default 5)",
    )
    audit.set_defaults(func=_cmd_audit)

    reconcile = sub.add_parser(
        "reconcile", help="match every store transaction by transaction; exit 1 on mismatches"
    )
    reconcile.add_argument("--network", required=True, help="the network file (TOML)")
    reconcile.add_argument("--json", action="store_true", help="print only the JSON report")
    reconcile.set_defaults(func=_cmd_reconcile)

    export = sub.add_parser("export", help="ISO 20022 XML: camt.053 statements, pacs.008 windows")
    kinds = export.add_subparsers(dest="export_command", required=True)
    statement = kinds.add_parser("statement", help="an account statement as camt.053")
    statement.add_argument("--network", required=True, help="the network file (TOML)")
    statement.add_argument("--holder", required=True, help="the customer or merchant name")
    statement.add_argument("--account", required=True, help="the holder's account id")
    statement.add_argument("--from", dest="from_time", help="period start, ISO-8601 (inclusive)")
    statement.add_argument("--to", dest="to_time", help="period end, ISO-8601 (exclusive)")
    statement.add_argument("--out", required=True, help="directory to write the file into")
    statement.set_defaults(func=_cmd_export)
    batch = kinds.add_parser("window", help="a closed settlement window as pacs.008")
    batch.add_argument("--network", required=True, help="the network file (TOML)")
    batch.add_argument("--window", required=True, help="the window id")
    batch.add_argument("--out", required=True, help="directory to write the file into")
    batch.set_defaults(func=_cmd_export)

    demo = sub.add_parser("demo", help="a fresh network: purchases, a refund, settlement, audit")
    demo.add_argument("--keep", action="store_true", help="keep the temporary directory")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the paynet command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"paynet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
