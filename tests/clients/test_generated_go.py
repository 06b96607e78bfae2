"""The Go client's generated code, which Go convention commits, is what the
protos and the pinned protoc-gen-go / protoc-gen-go-grpc generate."""

from __future__ import annotations

from tests.clients.conftest import LANGUAGES, require_toolchain, run


def test_the_committed_go_code_is_what_the_protos_generate() -> None:
    go = LANGUAGES["go"]
    require_toolchain(go)
    output = run(("./generate.sh", "--check"), go.directory, timeout=600)
    assert "generated code is fresh" in output
