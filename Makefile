# paynet: one entry point for every developer and CI task.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := node_modules/.bin/buf
SCAN_VENV := .venv-sslyze
NETWORK ?= network/dev.toml
PKI_DIR ?= var/pki

.PHONY: help venv tools generate check-generated lint breaking certs test clients-test run bench chaos ci clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## create .venv with paynet and its dev tools

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON_BOOT) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/python -m pip install --quiet -r requirements-scan.txt
	touch $@

tools: venv $(BUF) $(SCAN_VENV)/.installed ## install Python and Node tools, and the TLS scanner

generate: venv ## regenerate generated/ from protos/
	PYTHON=$(PY) scripts/generate.sh generated

check-generated: venv ## fail if generated/ differs from what protos/ generate
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	PYTHON=$(PY) scripts/generate.sh "$$tmp"; \
	if ! diff -r generated/interbank "$$tmp/interbank" -x __pycache__; then \
	  echo "generated/ is stale: run 'make generate' and commit the result" >&2; exit 1; fi; \
	echo "generated code is up to date"

lint: tools ## buf lint, buf format check, ruff, mypy
	$(BUF) lint
	$(BUF) format --diff --exit-code
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

breaking: tools ## buf breaking against the previous commit on main
	@if git rev-parse --verify --quiet HEAD~1 >/dev/null && \
	    git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then \
	  $(BUF) breaking --against '.git#ref=HEAD~1'; echo "no breaking change against HEAD~1"; \
	else echo "breaking: no previous commit with protos; nothing to compare"; fi

certs: venv ## make a dev PKI for $(NETWORK) in $(PKI_DIR)
	$(VENV)/bin/paynet pki init --network $(NETWORK) --out $(PKI_DIR)

test: tools check-generated lint breaking ## the whole suite, as CI runs it (clients-test included)
	$(PY) -m pytest -q -n auto

clients-test: tools ## TypeScript, Go and Java clients: envelope checks, then both purchases on a fresh paynet up
	$(PY) -m pytest -q tests/clients

run: venv ## a fresh network in a temporary directory, two purchases end to end
	$(VENV)/bin/paynet demo

bench: venv ## payments/s, p50/p99, CPU per payment at concurrency 1, 16, 64 beside bare echo baselines; histograms in build/bench; netting time; notification fan-out; e-cash withdrawals/s and deposits/s
	$(PY) -m bench.bench
	$(PY) -m bench.netbench
	GRPC_VERBOSITY=ERROR $(PY) -m bench.fanoutbench  # gRPC reads it as it loads: not a GOAWAY line per closing stream
	$(PY) -m bench.cashbench

CHAOS_SEED ?= 1
chaos: venv ## 2,000 payments while nodes are killed and paused; checks no money lost or duplicated
	$(PY) -m bench.chaos --seed $(CHAOS_SEED) --payments 2000 --min-kills 2

ci: test ## alias of test

clean: ## remove the venv, node tools and run state
	rm -rf $(VENV) $(SCAN_VENV) node_modules var .mypy_cache .ruff_cache .pytest_cache
	rm -rf clients/typescript/node_modules clients/typescript/dist clients/go/bin clients/java/target
