# gemini-balance: a key-pooling gateway for the Gemini API.
# `make help` lists the targets.

CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
VENV ?= $(CURDIR)/.venv
# The coding agents the tests drive (npm packages, pinned), installed beside the build cache.
AGENTS_DIR ?= $(CARGO_TARGET_DIR)/agents
AGENT_PACKAGES = @anthropic-ai/claude-code@2.1.332 @openai/codex@0.171.0 ai@7.0.173 @ai-sdk/openai@4.0.118
PYTHON ?= python3

SHELL := bash
.DEFAULT_GOAL := help
.PHONY: help run test faults fuzz lint deny fmt postgres valgrind chromium venv agents build bench tools

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

run: ## Run everything in one process on :8000 (SQLite under ./data; API_KEYS, ALLOWED_TOKENS from env or .env)
	cargo run --release -p gb-launcher --bin gemini-balance

build: ## Build every crate and binary (debug)
	cargo build --workspace --bins

test: postgres valgrind chromium venv agents build ## Run the whole test suite: Rust unit and end-to-end tests, the bench smoke, then the Python tests (SDKs, the console in Chromium)
	cargo test --workspace
	$(CARGO_TARGET_DIR)/debug/gb-bench run --smoke --gateway $(CARGO_TARGET_DIR)/debug/gemini-balance --out $(CARGO_TARGET_DIR)/bench-smoke 2>/dev/null
	test -s $(CARGO_TARGET_DIR)/bench-smoke/report.json && test -s $(CARGO_TARGET_DIR)/bench-smoke/report.md
	GB_BIN_DIR=$(CARGO_TARGET_DIR)/debug AGENTS_DIR=$(AGENTS_DIR) GB_ARTIFACTS=$(CARGO_TARGET_DIR)/console $(VENV)/bin/python -m pytest -q tests/sdk tests/deploy
	@echo "console screenshots: $(CARGO_TARGET_DIR)/console"
	$(MAKE) --no-print-directory faults

faults: build ## Kill each service under load (split on a Postgres of the run's own, all-in-one on SQLite): no request or row lost, state kept
	GB_BIN_DIR=$(CARGO_TARGET_DIR)/debug cargo test -p gb-tests --test faults -- --test-threads=1 --nocapture

FUZZ_SECONDS ?= 20
FUZZ_TARGETS = openai_request gemini_response json_depth sse_stream settings
fuzz: tools ## Run each fuzz target for FUZZ_SECONDS (default 20); corpora and logs under $CARGO_TARGET_DIR/fuzz
	@mkdir -p $(CARGO_TARGET_DIR)/fuzz
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p $(CARGO_TARGET_DIR)/fuzz/corpus/$$target; \
	  if RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz $$target $(CARGO_TARGET_DIR)/fuzz/corpus/$$target tests/fuzz/seeds/$$target -- \
	      -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
	      > $(CARGO_TARGET_DIR)/fuzz/$$target.log 2>&1; then \
	    echo "fuzz $$target: $$(grep -E '^stat::number_of_executed_units' $(CARGO_TARGET_DIR)/fuzz/$$target.log | tr -s ' ') in $(FUZZ_SECONDS) s, no failure"; \
	  else \
	    tail -n 60 $(CARGO_TARGET_DIR)/fuzz/$$target.log; echo "fuzz $$target failed"; exit 1; \
	  fi; \
	done

bench: ## Release build, then the benchmark (BASELINE=path/to/an/earlier/gemini-balance adds it as a same-run baseline): reports in target/bench/report.md and report.json
	cargo build --release -p gb-launcher -p gb-bench --bins
	$(CARGO_TARGET_DIR)/release/gb-bench run --gateway $(CARGO_TARGET_DIR)/release/gemini-balance --out $(CURDIR)/target/bench $(if $(BASELINE),--baseline $(BASELINE))

lint: deny ## rustfmt check, clippy with warnings as errors, cargo-deny
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p gb-tests --test faults -- -D warnings

deny: tools ## cargo-deny: licences, banned crates, sources (deny.toml)
	cargo deny check licenses bans sources

tools: ## Install cargo-deny and cargo-fuzz when missing (built from crates.io)
	@command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
	@command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

fmt: ## Format the code
	cargo fmt --all

postgres: ## Make sure the local PostgreSQL (127.0.0.1:5432) runs; the tests create their own databases
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
	  (command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start) || \
	  (echo "PostgreSQL is needed on 127.0.0.1:5432 (trust auth for user postgres), or set TEST_POSTGRES_URL" && exit 1)
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; exit 1

valgrind: ## Make sure valgrind is here: the benchmark counts instructions per request with callgrind
	@command -v callgrind_control >/dev/null || \
	  (command -v apt-get >/dev/null && apt-get install -y -q valgrind >/dev/null) || \
	  (echo "valgrind is needed (apt-get install valgrind): the benchmark, whose smoke run is in make test, counts instructions with callgrind" && exit 1)

chromium: ## Make sure Debian's Chromium (and a CJK font for the Chinese pages) is here: the console's browser tests drive it (no browser is downloaded)
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi wenquanyi || \
	  (command -v apt-get >/dev/null && apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-wqy-zenhei >/dev/null) || \
	  (echo "chromium is needed (apt-get install chromium fonts-wqy-zenhei): the console's browser tests drive it" && exit 1)

agents: ## Claude Code, Codex CLI and the AI SDK from npm (pinned), for the tests that run them against the gateway
	@mkdir -p $(AGENTS_DIR)
	@test "$$(cat $(AGENTS_DIR)/.installed 2>/dev/null)" = "$(AGENT_PACKAGES)" || \
	  (cd $(AGENTS_DIR) && npm install --no-audit --no-fund --silent $(AGENT_PACKAGES) && echo "$(AGENT_PACKAGES)" > .installed)

venv: $(VENV)/.installed ## Python venv with the official SDKs (google-genai, openai) and pytest

$(VENV)/.installed: tests/sdk/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/sdk/requirements.txt
	touch $@
