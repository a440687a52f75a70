# afctl: `make demo` and `make test` are the whole set-up on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: venv demo test lint typecheck bench clean docs

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: venv
	@bash scripts/demo.sh

lint: venv
	$(BIN)/ruff check afctl tests bench
	$(BIN)/ruff format --check afctl tests bench
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo bench/.work .pytest_cache .mypy_cache .ruff_cache

docs: venv
	$(BIN)/python -c "from afctl.cli.reference import cli_reference; open('docs/cli.md', 'w').write(cli_reference())"
