# `make run` and `make test` set everything up on first use (a virtual environment in
# .venv with hwnas and its dependencies), then run the main job or the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwnas-installed
OUT ?= runs/quickstart

.PHONY: run test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[tflite-lean,dev,optuna,ray,randwire]'
	$(PY) -m pip install -c constraints.txt --no-deps 'litert-torch>=0.10,<0.11'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/hwnas search --recipe search/quickstart.toml -o $(OUT)

test: $(STAMP)
	$(PY) -m pytest -n auto --maxprocesses 4

clean:
	rm -rf $(VENV) runs
