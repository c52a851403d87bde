# The two README commands: `make tune` (set up, then the main job) and `make test` (set up, then the tests).
# Set-up is idempotent: Debian's Chromium when missing, a .venv in the repo root, the package installed editable.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHROMIUM ?= /usr/lib/chromium/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup chromium tune test lint clean

setup: chromium $(VENV)/.installed

# chromium: the browser kgen measures in; libvulkan1: the Vulkan loader wgpu-py needs to run WGSL on
# Chromium's own SwiftShader driver in fast tests.
chromium:
	@if { [ ! -x "$(CHROMIUM)" ] && [ -z "$$KGEN_CHROMIUM" ]; } || ! ldconfig -p | grep -q libvulkan.so.1; then \
		echo "kgen: installing Debian's chromium and libvulkan1 (apt-get)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium libvulkan1 >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x "$(BIN)/python" ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

tune: setup
	$(BIN)/kgen doctor

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
