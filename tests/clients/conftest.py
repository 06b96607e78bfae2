"""The clients in other languages, built with their own toolchains and run
against a fresh ``paynet up``.

A language whose toolchain is missing is skipped with what to install, except
under ``CI=true``, where a missing toolchain fails the run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.clientnet import ClientNetwork, start_client_network
from tests.conftest import require_tool

CLIENTS = Path(__file__).resolve().parents[2] / "clients"


@dataclass(frozen=True)
class Language:
    """How to build, test and call one language's client."""

    name: str
    """Directory under clients/."""
    tools: tuple[str, ...]
    """Commands that must be on PATH."""
    install: str
    """What to install when one is missing."""
    build: tuple[tuple[str, ...], ...]
    """Commands, run in the client's directory, that build it and its envelope tool."""
    test: tuple[str, ...]
    """The language's own test command (vector tests and the buyer)."""
    envelope: tuple[str, ...]
    """The envelope tool; ``seal`` or ``open`` is appended."""
    version: tuple[tuple[str, ...], str, tuple[int, int]] | None = None
    """A command printing the toolchain's version, a regex for it, the least version."""

    @property
    def directory(self) -> Path:
        return CLIENTS / self.name


LANGUAGES = {
    "typescript": Language(
        name="typescript",
        tools=("node", "npm"),
        install="Node.js 20 or later with npm (https://nodejs.org/)",
        build=(
            ("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"),
            ("npm", "run", "build"),
        ),
        test=("npm", "test"),
        envelope=("node", "dist/envelope-cli.js"),
        version=(("node", "--version"), r"v(\d+)\.(\d+)", (20, 0)),
    ),
    "go": Language(
        name="go",
        tools=("go",),
        install="Go 1.26 or later, for crypto/hpke (https://go.dev/dl/)",
        build=(("go", "build", "-o", "bin/envelope", "./cmd/envelope"),),
        test=("go", "test", "-count=1", "-v", "./..."),
        envelope=("bin/envelope",),
        version=(("go", "env", "GOVERSION"), r"go(\d+)\.(\d+)", (1, 26)),
    ),
    "java": Language(
        name="java",
        tools=("java", "mvn"),
        install="a JDK 17 or later and Maven 3.8 or later (https://maven.apache.org/)",
        build=(("mvn", "-q", "-B", "package", "-DskipTests"),),
        test=("mvn", "-q", "-B", "test"),
        envelope=("java", "-jar", "target/paynet-client.jar"),
        version=(("java", "-version"), r'version "(\d+)(?:\.(\d+))?', (17, 0)),
    ),
}


def _missing(language: Language) -> str | None:
    """Why the language's toolchain cannot build it here, or None."""
    absent = [tool for tool in language.tools if shutil.which(tool) is None]
    if absent:
        return f"{', '.join(absent)} not found"
    if language.version is not None:
        command, pattern, least = language.version
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        found = re.search(pattern, done.stdout + done.stderr)
        if found is None:
            return f"cannot read the version from {' '.join(command)}"
        have = (int(found.group(1)), int(found.group(2) or 0))
        if have < least:
            return f"{' '.join(command)} says {found.group(0)}, older than {least[0]}.{least[1]}"
    return None


def require_toolchain(language: Language) -> None:
    """Skip (or, under CI=true, fail) when the language's toolchain is missing."""
    why = _missing(language)
    require_tool(why and f"{language.name} client: {why}", language.install)


def run(command: tuple[str, ...], cwd: Path, *, timeout: float, **kwargs: object) -> str:
    """Run command in cwd; its output, or fail the test with the output's tail."""
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode} in {cwd}:\n{output[-6000:]}")
    return output


@pytest.fixture(params=sorted(LANGUAGES), scope="session")
def client(request: pytest.FixtureRequest) -> Language:
    """Each language's client, built once per session (or skipped/failed without its tools)."""
    language = LANGUAGES[request.param]
    require_toolchain(language)
    for command in language.build:
        run(command, language.directory, timeout=1200)
    return language


@pytest.fixture(scope="session")
def client_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientNetwork]:
    """One fresh ``paynet up`` with a funded buyer per language."""
    running = start_client_network(tmp_path_factory.mktemp("clients-net"))
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, f"paynet up exited {code}; see {running.log}"
