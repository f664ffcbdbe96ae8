# make verify  : run every case in cases/ through the reference, TensorFlow and the textbook formulations
# make test    : every test (the cases and the harness's own tests)
# Both create .venv and install the project on first use. ONEDNN=0 runs TensorFlow without oneDNN.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ONEDNN ?= 1
PYTEST := TF_ENABLE_ONEDNN_OPTS=$(ONEDNN) $(BIN)/python -m pytest -n auto

.PHONY: env verify test clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

verify: $(STAMP)
	mkdir -p reports
	$(PYTEST) cases --junitxml=reports/junit.xml -q

test: $(STAMP)
	mkdir -p reports
	$(PYTEST) --junitxml=reports/junit-test.xml -q

clean:
	rm -rf $(VENV) reports/*.xml *.egg-info
