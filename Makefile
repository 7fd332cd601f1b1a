# The two commands of the README, each bootstrapping .venv from pyproject.toml.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed
STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
LAB_STAMP := $(VENV)/.installed-lab

.PHONY: demo test notebooks lab bench lint clean chromium

# The runtime dependencies only: all the demo needs (620 MB; with the test set, 1.7 GB).
$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

# The test set on top: pytest, nbclient, playwright, pyspark, moto, boto3, ruff, ...
$(STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

## demo: export the bundled sample (data/oxios-sample), print stats, save a chart under build/demo
demo: $(RUNTIME_STAMP)
	$(BIN)/sessionkit demo build/demo --from data/oxios-sample

## test: the whole test suite, notebooks included (the report's browser tests skip, saying so,
## where /usr/bin/chromium is missing: `make chromium` installs Debian's)
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

## notebooks: run the notebooks and store them with their outputs; redraw the README's chart
notebooks: $(STAMP)
	$(BIN)/python scripts/build_notebooks.py
	$(BIN)/python scripts/readme_chart.py

# JupyterLab (the "lab" extra), installed from the package index when first asked for: neither
# sessionkit nor its tests need it, so neither make demo nor make test installs it
$(LAB_STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[lab]'
	touch $(LAB_STAMP)

## lab: open the notebooks in JupyterLab, installing it into .venv the first time
lab: $(LAB_STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

## chromium: install Debian's chromium (apt-get) for the report's tests in a real headless browser
chromium:
	scripts/ensure-chromium

## bench: the speed benchmark (minutes; not part of test); results under bench/results/
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

## lint: ruff and mypy, as tests/test_lint.py runs them in the suite (config in pyproject.toml)
lint: $(STAMP)
	$(BIN)/python -m pytest tests/test_lint.py -q -p no:xdist

clean:
	rm -rf build .pytest_cache .hypothesis .mypy_cache
