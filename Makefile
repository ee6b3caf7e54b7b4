# The README's two commands: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data/synth
RUN    ?= runs/demo
PYTEST_ARGS ?=

.PHONY: help venv demo test bench lint clean

help:
	@echo "make demo   set up the environment and run the main job (synthetic data -> train -> eval -> pictures)"
	@echo "make test   set up the environment and run the test suite"
	@echo "make bench  throughput benchmarks against torchvision's AlexNet"
	@echo "make lint   ruff (style, imports, likely bugs) over src/ and tests/"

# (Re)install only when pyproject.toml changes; a second run reuses the environment.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/alexnet demo --data $(DATA) --out $(RUN)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests

bench: $(STAMP)
	$(BIN)/alexnet bench train --arch paper
	$(BIN)/alexnet bench infer --arch paper

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
