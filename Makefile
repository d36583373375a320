# Two commands: `make demo` (install + run the chain on fixtures/) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_out

.PHONY: demo test lint install browser clean fixtures

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	bash bench/demo.sh $(PY) fixtures/world $(DEMO_OUT)

# The HTML readout is tested in a real browser: headless Chromium from Debian's package.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "make test needs Chromium for the HTML readout test: sudo apt-get install chromium" >&2; exit 1; fi; }

test: $(STAMP) browser
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
