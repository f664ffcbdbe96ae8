# make verify       : every case in cases/ (pairwise sweeps cut to their covering sets) through the reference,
#                     TensorFlow and the textbook formulations; summary, and reports/: junit.xml, results.json,
#                     report.html, summary.md
# make verify-full  : the same with every combination of every sweep (reports in reports/full/)
# make test         : every test (the cases and the harness's own tests); reports/ as for verify, and the
#                     report's screenshot in headless Chromium (installed with apt-get when missing)
# make fuzz         : a longer property-based search (FUZZ_MINUTES, default 5); failures saved under cases/found/
# make mutants      : break one convention at a time in the reference; every mutant must be killed
# make mutation     : mutmut's mutants of the reference package judged by cases/ (hours; resumable; MUTATION_ARGS,
#                     e.g. "--only harness.conv.dtypes" or "--rejudge-survivors"); report in reports/mutation/
# make coverage     : branch coverage of the reference package (reference, padding, layouts, dtypes) by cases/
#                     alone; HTML in reports/coverage/html/; fails on an unreached line or branch that
#                     selftest/coverage_exclusions.yaml does not list with a reason
# make bench        : time the reference against TensorFlow (all cores) and JAX's lax_reference on ResNet-50,
#                     MobileNetV2 and decoder shapes; table, reports/bench.json and reports/bench.png
# make docs         : the documentation site (docs/ -> site/), its generated pages first; strict: a broken link
#                     or a missing page fails
# make lint        : ruff (lint and format check), mypy over harness/ and actionlint over .github/workflows/ (also
#                     .pre-commit-config.yaml); make test runs it beside pytest
# make verify-caps : the registry under each ONEDNN_MAX_CPU_ISA cap below this CPU's own level (what users of
#                     older CPUs see; reports in reports/isa-CAP/)
# All create .venv and install the project on first use. ONEDNN=0 runs TensorFlow without oneDNN;
# ONEDNN_ISA=AVX2 (or AVX512_CORE, ...) caps the ISA oneDNN may use (ONEDNN_MAX_CPU_ISA), as on an older CPU.
# BACKENDS="reference torch jax ..." (make verify) also checks those backends against TensorFlow on every case they
# cover, installing the pip extras of torch / jax / onnxruntime when they are missing.
# SHARD=I/N runs the I-th of N deterministic, balanced shares (a CI matrix of N jobs covers the run once).
# TF=2.17 (or 2.17.1, nightly, or a path to a Python interpreter) runs TensorFlow's side with that version, installed
# once into a cached environment (harness/tf/versions.py); the harness itself stays in .venv.
# make matrix       : the registry once per TensorFlow version (2.13 to the installed one; MATRIX_ARGS, e.g.
#                     "--nightly" or "--versions 2.16,2.17") and oneDNN mode; reports/matrix/atlas.html. About 1.2 GiB
#                     of cache per version; `harness matrix --clean` removes them.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ONEDNN ?= 1
ONEDNN_ISA ?=
BACKENDS ?=
SHARD ?=
TF ?=
MATRIX_ARGS ?=
# The TensorFlow server's interpreter for TF=...: installed first when needed; a failure stops make.
TF_SERVER := $(if $(strip $(TF)),tfpy=$$($(BIN)/python -m harness.tf.versions ensure $(TF)) && HARNESS_TF_PYTHON=$$tfpy,)
TF_MODE := TF_ENABLE_ONEDNN_OPTS=$(ONEDNN) $(if $(strip $(ONEDNN_ISA)),ONEDNN_MAX_CPU_ISA=$(ONEDNN_ISA),)
PYTEST := $(TF_MODE) HARNESS_BACKENDS="$(BACKENDS)" HARNESS_SHARD="$(SHARD)" $(BIN)/python -m pytest -n auto -p no:hypothesispytest

.PHONY: env browser backends verify verify-full verify-caps test lint fuzz mutants mutation coverage bench docs clean matrix
MUTATION_ARGS ?=
FUZZ_MINUTES ?= 5
BENCH_ARGS ?=

env: $(STAMP)

# tools/install.py installs with uv, passing pip's configuration on (about 40 s where pip takes 90, bytecode
# compiled as pip does), and with pip when that cannot be done (harness/install.py).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python tools/install.py -e '.[dev]'
	touch $(STAMP)

# Headless Chromium renders report.html in tests/plugin/test_report_browser.py (Debian's package; root or sudo needed).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing chromium (apt-get)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The pip extras the named backends need (`harness backends --install`: installs only what is missing).
backends: $(STAMP)
	@if [ -n "$(strip $(BACKENDS))" ]; then $(BIN)/python -m harness backends --install $(BACKENDS); fi

verify: $(STAMP) backends
	$(TF_SERVER) $(PYTEST) cases --junitxml=reports/junit.xml --reports reports -q

verify-full: $(STAMP) backends
	$(TF_SERVER) HARNESS_SWEEP=full $(PYTEST) cases --junitxml=reports/full/junit.xml --reports reports/full -q

# Every cap below this CPU's level, one registry run each; stops at the first that fails.
verify-caps: $(STAMP)
	@set -e; for cap in $$($(BIN)/harness machine --caps-below); do \
	  echo "== ONEDNN_MAX_CPU_ISA=$$cap"; \
	  TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=$$cap $(BIN)/python -m pytest -n auto cases \
	    --junitxml=reports/isa-$$cap/junit.xml --reports reports/isa-$$cap -q; \
	done

# The older TensorFlow that tests/tensorflow/test_other_version.py checks is installed (once, into the user cache)
# while pytest collects: the tests that need it wait for it instead of each holding a worker through the install.
TEST_TF ?= 2.17
# make lint runs beside pytest (its output in reports/lint.log); either failing fails make test.
# --dist loadgroup hands out one test (or group: tests/conftest.py) at a time, in the order tests/conftest.py sets
# (slowest first, the registry's items last); the last line is the wall time since make started, install included.
TEST_STARTED := $(if $(filter test,$(MAKECMDGOALS)),$(shell date +%s))
test: $(STAMP) browser
	@mkdir -p reports; ($(BIN)/python -m harness.tf.versions ensure $(TEST_TF) > reports/test-tf-install.log 2>&1 &)
	@$(MAKE) --no-print-directory lint > reports/lint.log 2>&1 & lint=$$!; \
	HARNESS_TEST_TF=$(TEST_TF) $(PYTEST) --dist loadgroup --no-loadscope-reorder \
	  --junitxml=reports/junit.xml --reports reports -q; status=$$?; \
	if wait $$lint; then echo "make lint: passed (reports/lint.log)"; \
	else cat reports/lint.log; echo "make lint: FAILED"; status=1; fi; \
	echo "make test: $$(( $$(date +%s) - $(or $(TEST_STARTED),$$(date +%s)) )) s wall"; exit $$status

# ruff (lint and format check) and mypy over harness/ (pyproject.toml), actionlint over the CI workflows.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/actionlint .github/workflows/*.yml

matrix: $(STAMP)
	$(BIN)/harness matrix $(MATRIX_ARGS)

fuzz: $(STAMP)
	$(TF_MODE) $(BIN)/python -m harness.selftest.search --minutes $(FUZZ_MINUTES) --save cases/found

mutants: $(STAMP)
	$(TF_MODE) $(BIN)/python -m harness.selftest.mutation

mutation: $(STAMP)
	$(TF_MODE) $(BIN)/python -m harness.selftest.mutmut_run --out reports/mutation $(MUTATION_ARGS)

coverage: $(STAMP)
	$(TF_MODE) $(BIN)/python -m harness.selftest.coverage --out reports/coverage -- -n auto

# A report: exits 0 even when a target is missed (add --check through BENCH_ARGS to fail instead).
bench: $(STAMP)
	$(TF_MODE) $(BIN)/python -m bench.run --out reports $(BENCH_ARGS)

docs: $(STAMP)
	$(BIN)/python -m docs.generate
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # not --quiet: it hides the warnings strict counts

clean:
	rm -rf $(VENV) *.egg-info site
	find reports -mindepth 1 ! -name README.md -exec rm -rf {} +
