# Two commands set localrnn up on a fresh machine with Python 3.11:
#   make demo   -- create .venv, install localrnn, run the end-to-end demo (CPU, a few minutes)
#   make test   -- create .venv, install localrnn with test extras, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow test-wheel bench

$(BIN)/localrnn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/localrnn
	$(BIN)/localrnn demo

test: $(BIN)/localrnn
	$(BIN)/python -m pytest -q -n 2

test-slow: $(BIN)/localrnn
	$(BIN)/python -m pytest -q -n 2 -m slow

test-wheel: $(BIN)/localrnn
	$(BIN)/python -m pytest -q -m slow tests/test_wheel.py

bench: $(BIN)/localrnn
	$(BIN)/python benchmarks/bench_engine.py
