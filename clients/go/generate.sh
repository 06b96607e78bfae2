#!/usr/bin/env bash
# Regenerates gen/interbank/v1 from ../../protos with buf and the protoc-gen-go
# and protoc-gen-go-grpc versions pinned in go.mod (tool directives).
#
#   ./generate.sh          regenerate
#   ./generate.sh --check  regenerate into a temporary copy and fail if the
#                          committed files differ (stale generated code)
set -euo pipefail
cd "$(dirname "$0")"

repo_root=$(cd ../.. && pwd)
if [[ -x "$repo_root/node_modules/.bin/buf" ]]; then
  buf=("$repo_root/node_modules/.bin/buf")
elif command -v buf >/dev/null 2>&1; then
  buf=(buf)
else
  buf=(npx --prefix "$repo_root" buf)
fi

# Build the pinned plugins once so buf's parallel invocations don't race to compile.
go build -o /dev/null google.golang.org/protobuf/cmd/protoc-gen-go
go build -o /dev/null google.golang.org/grpc/cmd/protoc-gen-go-grpc

if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "${buf[@]}" generate --template buf.gen.yaml -o "$tmp"
  if ! diff -r gen "$tmp/gen"; then
    echo "generated code in clients/go/gen is stale: run ./generate.sh" >&2
    exit 1
  fi
  echo "generated code is fresh"
  exit 0
fi

rm -rf gen
"${buf[@]}" generate --template buf.gen.yaml
echo "generated into gen/"
