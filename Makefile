# The README's two commands: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data/synth
RUN    ?= runs/demo
PYTEST_ARGS ?=

.PHONY: help venv demo test bench lint clean browser

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

# The browser test of `alexnet serve` drives Debian's chromium: installed here when missing and we may (root).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } || \
		echo "note: no $(CHROMIUM); the browser test will fail (apt-get install chromium)"

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests

bench: $(STAMP)
	$(BIN)/alexnet bench train --arch paper
	$(BIN)/alexnet bench infer --arch paper

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
