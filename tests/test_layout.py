"""The layout's rules, read from the code's imports: the runtime core imports no service
and no tool, a service imports no other service and no tool, and nothing imports a
package by a name held in a string.

    payment/                     the runtime core: every node needs it, it needs nothing above
    bank/ gateway/ merchant/     one service each, on the core and the contracts only
    customer/ ops/ bench/        tools: import the core, the services and each other
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

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
