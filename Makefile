# Two commands for a newcomer: `make demo` (a simulated center) and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# Real peers the tests talk to (Debian packages): MQTT broker, serial pty pairs,
# InfluxDB 1.6.7 and VictoriaMetrics (its /api/v2/write stands in for InfluxDB 2.x).
# The installer's tests: shellcheck, systemd (systemd-analyze verify, -sysusers, -tmpfiles), python3-venv;
# the TLS broker tests: openssl. Headless Chromium prints reports to PDF and drives the page tests;
# WenQuanYi gives it CJK glyphs; pdftotext (poppler-utils) reads the PDFs back in tests. The hub's tests start
# a PostgreSQL 15 cluster of their own (postgresql; initdb + pg_ctl in a temp dir).
APT_PKGS := mosquitto mosquitto-clients openssl socat influxdb victoria-metrics shellcheck systemd python3-venv \
            chromium fonts-wqy-zenhei poppler-utils postgresql

.PHONY: demo test test-arm lint system-deps venv clean install bench bench-peers soak assets

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The pages' browser libraries (uPlot), pinned in package-lock.json: npm ci, then the built files go to
# daemon/api/static/vendor/ (gitignored; the wheel ships them). Debian's nodejs npm if npm is missing.
ASSETS := daemon/api/static/vendor/.built
$(ASSETS): package.json package-lock.json deploy/assets.sh
	@command -v npm >/dev/null || $(MAKE) system-deps EXTRA_APT="nodejs npm"
	deploy/assets.sh
assets: $(ASSETS)

venv: $(VENV)/.installed assets

demo: $(VENV)/.installed assets
	$(VENV)/bin/coldchain demo $(ARGS)

system-deps:
	@missing=""; for p in $(APT_PKGS) $(EXTRA_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

# Style and bugs (ruff), types (mypy, [tool.mypy]) and the rooms' walls (import-linter, [tool.importlinter]).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check daemon drivers tests bench hub
	$(VENV)/bin/mypy daemon drivers bench hub
	$(VENV)/bin/lint-imports --no-cache

# Parallel workers (pytest-xdist): most tests wait on a real peer, so 3 workers fill 2 cores; one test file
# stays on one worker (its module fixtures start once). JOBS=0 runs everything in one process.
JOBS ?= 3
test: system-deps $(VENV)/.installed assets lint
	$(PY) -m pytest -n $(JOBS) --dist loadfile $(ARGS)

# The Pi's own architectures without a Pi (issue 18): a Debian bookworm root per architecture under
# qemu-user-static, deploy/install.sh from a wheel of this checkout, check-config and the demo inside it.
# The bare roots are cached in .arm/ (each run unpacks a fresh copy); report in .arm/ARCH/report.txt.
ARM_APT := debootstrap qemu-user-static binfmt-support curl
ARCHS   ?= arm64 armhf
test-arm: assets
	@$(MAKE) --no-print-directory system-deps EXTRA_APT="$(ARM_APT)"
	@for a in $(ARCHS); do tests/arm/check.sh $$a || exit 1; done

# On the Pi: install or upgrade into /opt/coldchain with the systemd unit (see docs/install.md).
install:
	@SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO deploy/install.sh $(ARGS)

# The peers users pick instead of us, for scenario 7 of the benchmark: Node-RED 4 with
# node-red-contrib-influxdb (npm; Node-RED 5 needs a newer Node.js than Debian's) and
# mqtt2influxdb 1.5.2 (PyPI, in a venv of its own: it wants influxdb 5.x and an old schema).
BENCH_DIR := .bench
$(BENCH_DIR)/node-red/.installed:
	@command -v npm >/dev/null || $(MAKE) system-deps EXTRA_APT="nodejs npm"
	mkdir -p $(BENCH_DIR)/node-red
	cd $(BENCH_DIR)/node-red && npm install --no-audit --no-fund --silent node-red@4.1.15 node-red-contrib-influxdb@0.7.0
	touch $@
$(BENCH_DIR)/m2i/.installed:
	$(PYTHON) -m venv $(BENCH_DIR)/m2i
	$(BENCH_DIR)/m2i/bin/pip install -q mqtt2influxdb==1.5.2
	touch $@
bench-peers: $(BENCH_DIR)/node-red/.installed $(BENCH_DIR)/m2i/.installed

# Every scenario against real peers; prints the table and writes docs/benchmarks.md (~8 min).
bench: system-deps $(VENV)/.installed assets bench-peers
	$(PY) -m bench $(ARGS)

# The soak (docs/robustness.md): 200 MQTT sensors, faults cycling, exact counts at the end. MINUTES of load,
# then a few minutes of settling; journal, logs, samples and report.json go to a temp folder it names.
MINUTES ?= 45
soak: system-deps $(VENV)/.installed
	$(PY) -m bench.soak --minutes $(MINUTES) $(ARGS)

clean:
	rm -rf $(VENV) $(BENCH_DIR) node_modules daemon/api/static/vendor build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
