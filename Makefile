# Two commands: `make demo` (install + run the chain on fixtures/) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_out

.PHONY: demo test lint install clean fixtures

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	bash bench/demo.sh $(PY) fixtures/world $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m ruff check ltr recall eval tests bench fixtures
	$(PY) -m mypy
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check ltr recall eval tests bench fixtures
	$(PY) -m mypy

fixtures: $(STAMP)
	$(PY) fixtures/make_fixtures.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) *.egg-info
