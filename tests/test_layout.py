"""The layout's rules, read from the code's imports: the runtime core imports no service
and no tool, a service imports no other service and no tool, and nothing imports a
package by a name held in a string.

    payment/                     the runtime core: every node needs it, it needs nothing above
    bank/ gateway/ merchant/     one service each, on the core and the contracts only
    customer/ ops/ bench/        tools: import the core, the services and each other
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from payment.config import SERVER_ROLES, NodeConfig, Role

ROOT = Path(__file__).resolve().parents[1]
CORE = "payment"
SERVICES = ("bank", "gateway", "merchant")
TOOLS = ("customer", "ops", "bench")
OURS = (CORE, *SERVICES, *TOOLS)


def _imports(package: str) -> Iterator[tuple[Path, int, str]]:
    """(file, line, imported top-level package of ours) for every import in package."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".", 1)[0]
                if top in OURS:
                    yield path.relative_to(ROOT), node.lineno, top


def _forbidden(package: str, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{path}:{line} imports {top}"
        for path, line, top in _imports(package)
        if top != package and top not in allowed
    ]


def test_the_core_imports_no_service_and_no_tool() -> None:
    assert _forbidden(CORE, ()) == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_the_core(service: str) -> None:
    assert _forbidden(service, (CORE,)) == []


@pytest.mark.parametrize("package", [CORE, *SERVICES])
def test_nothing_below_the_tools_loads_a_module_by_name(package: str) -> None:
    loaders = [
        f"{path.relative_to(ROOT)}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if "importlib" in path.read_text(encoding="utf-8")
        or "__import__(" in path.read_text(encoding="utf-8")
    ]
    assert loaders == []


def test_the_check_sees_imports_where_they_are() -> None:
    # The tools do import the core and the services: the walk finds real imports.
    found = {top for _path, _line, top in _imports("ops")}
    assert {CORE, *SERVICES} <= found


# Services own their data: only a service's package speaks SQL to its tables. A table is
# a service's if one of its modules creates it; the core's own tables (idempotency,
# outbox) belong to no service.
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")
_CHECKED = (CORE, *SERVICES, *TOOLS, "scripts")


def _tables(service: str) -> set[str]:
    return {
        table
        for path in (ROOT / service).rglob("*.py")
        for table in _CREATE_TABLE.findall(path.read_text(encoding="utf-8"))
    }


def _statements_on(tables: set[str], packages: tuple[str, ...]) -> list[str]:
    """file:line and the SQL for every FROM/JOIN/INTO/UPDATE on one of tables in packages."""
    on_table = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(" + "|".join(sorted(tables)) + r")\b")
    found = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if match := on_table.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)}")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_only_a_service_reads_and_writes_its_tables(service: str) -> None:
    others = tuple(package for package in _CHECKED if package != service)
    assert _statements_on(_tables(service), others) == []


@pytest.mark.parametrize("service", SERVICES)
def test_the_check_sees_each_service_use_its_tables(service: str) -> None:
    tables = _tables(service)
    assert tables
    assert _statements_on(tables, (service,))


def test_a_store_file_is_named_only_where_store_path_is_defined() -> None:
    named = {
        path.relative_to(ROOT)
        for package in _CHECKED
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"\b(?:settlement|bank|gateway|merchant)\.sqlite3\b", path.read_text("utf-8"))
    }
    assert named == {Path("payment/config.py")}


def test_each_role_keeps_its_store_in_its_own_file(tmp_path: Path) -> None:
    paths = {
        role: NodeConfig(role.value, role, "127.0.0.1", 0, tmp_path).store_path
        for role in SERVER_ROLES
    }
    assert paths[Role.BANK] == tmp_path / "bank.sqlite3"
    assert len(set(paths.values())) == len(SERVER_ROLES)
