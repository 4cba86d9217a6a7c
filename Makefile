# gemini-balance: a key-pooling gateway for the Gemini API.
# `make help` lists the targets.

CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
VENV ?= $(CURDIR)/.venv
PYTHON ?= python3

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt postgres venv build bench

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

run: ## Run everything in one process on :8000 (SQLite under ./data; API_KEYS, ALLOWED_TOKENS from env or .env)
	cargo run --release -p gb-launcher --bin gemini-balance

build: ## Build every crate and binary (debug)
	cargo build --workspace --bins

test: postgres venv build ## Run the whole test suite: Rust unit and end-to-end tests, the bench smoke, then the Python tests
	cargo test --workspace
	$(CARGO_TARGET_DIR)/debug/gb-bench run --smoke --gateway $(CARGO_TARGET_DIR)/debug/gemini-balance --out $(CARGO_TARGET_DIR)/bench-smoke 2>/dev/null
	test -s $(CARGO_TARGET_DIR)/bench-smoke/report.json && test -s $(CARGO_TARGET_DIR)/bench-smoke/report.md
	GB_BIN_DIR=$(CARGO_TARGET_DIR)/debug $(VENV)/bin/python -m pytest -q tests/sdk tests/deploy

bench: ## Release build, then the benchmark (BASELINE=path/to/an/earlier/gemini-balance adds it as a same-run baseline): reports in target/bench/report.md and report.json
	cargo build --release -p gb-launcher -p gb-bench --bins
	$(CARGO_TARGET_DIR)/release/gb-bench run --gateway $(CARGO_TARGET_DIR)/release/gemini-balance --out $(CURDIR)/target/bench $(if $(BASELINE),--baseline $(BASELINE))

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

postgres: ## Make sure the local PostgreSQL (127.0.0.1:5432) runs; the tests create their own databases
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
	  (command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start) || \
	  (echo "PostgreSQL is needed on 127.0.0.1:5432 (trust auth for user postgres), or set TEST_POSTGRES_URL" && exit 1)
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; exit 1

venv: $(VENV)/.installed ## Python venv with the official SDKs (google-genai, openai) and pytest

$(VENV)/.installed: tests/sdk/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/sdk/requirements.txt
	touch $@
