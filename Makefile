# make verify       : every case in cases/ (pairwise sweeps cut to their covering sets) through the reference,
#                     TensorFlow and the textbook formulations; summary, reports/junit.xml
# make verify-full  : the same with every combination of every sweep
# make test         : every test (the cases and the harness's own tests)
# make fuzz         : a longer property-based search (FUZZ_MINUTES, default 5); failures saved under cases/found/
# make mutants      : break one convention at a time in the reference; every mutant must be killed
# All create .venv and install the project on first use. ONEDNN=0 runs TensorFlow without oneDNN.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ONEDNN ?= 1
PYTEST := TF_ENABLE_ONEDNN_OPTS=$(ONEDNN) $(BIN)/python -m pytest -n auto

.PHONY: env verify verify-full test fuzz mutants clean
FUZZ_MINUTES ?= 5

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

verify: $(STAMP)
	mkdir -p reports
	$(PYTEST) cases --junitxml=reports/junit.xml -q

verify-full: $(STAMP)
	mkdir -p reports
	HARNESS_SWEEP=full $(PYTEST) cases --junitxml=reports/junit-full.xml -q

test: $(STAMP)
	mkdir -p reports
	$(PYTEST) --junitxml=reports/junit-test.xml -q

fuzz: $(STAMP)
	TF_ENABLE_ONEDNN_OPTS=$(ONEDNN) $(BIN)/python -m harness.search --minutes $(FUZZ_MINUTES) --save cases/found

mutants: $(STAMP)
	TF_ENABLE_ONEDNN_OPTS=$(ONEDNN) $(BIN)/python -m harness.mutants

clean:
	rm -rf $(VENV) reports/*.xml *.egg-info
