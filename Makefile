# The two commands of README.md. Each creates the virtual environment and installs
# what it needs, so a fresh machine with Python 3.11 needs nothing else.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: dev test lint clean bench

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

dev: $(STAMP)
	$(VENV)/bin/takedown dev

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data

lint: $(STAMP)
	$(VENV)/bin/ruff check api workers infra tests bench
	$(VENV)/bin/mypy api workers infra
	$(VENV)/bin/lint-imports
