# simplejwt-patches - every entry point bootstraps what it needs on a fresh machine.
#
#   make test    lint + type check + our suite on every pinned release + PyJWT boundaries + Django 6
#                + SimpleJWT's own suites with and without the shim
#   make demo    WAF-fronted Keycloak on 127.0.0.1: token rejected without the shim, accepted with it
#   make bench   resilience benchmark vs vanilla SimpleJWT (PyJWT 2.13 and newest) -> bench/results.json
#                (make bench-apply: only its apply() row)
#   make soak    a few minutes of real servers under load on a bad day -> bench/soak.json (60 s of it run in make test)
#   make docs    the reference site from docs/ (mkdocs --strict) into build/site
#   make dist    sdist + wheel in dist/, twine check --strict, LICENSE in both, the sdist's own tests
#   make pin [VERSION=X]  fingerprint a release from its sdist into simplejwt_patches/proven.py
#   make lint | matrix | upstream | servers | list | clean

SHELL := /bin/bash
.DEFAULT_GOAL := test
PYENV_ROOT ?= $(HOME)/.pyenv
# The tooling interpreter: newest pyenv 3.12, else python3.12 / python3 on PATH.
PY := $(firstword $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin/python3.12) $(shell command -v python3.12 python3 2>/dev/null))
VENV := .venv
NOX := $(VENV)/bin/nox --no-color
export UV_PYTHON_DOWNLOADS := never
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: bootstrap redis node test lint matrix upstream servers dist docs demo bench bench-apply soak list clean pin

$(VENV)/.bootstrapped: .ci/requirements-tools.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r .ci/requirements-tools.txt
	touch $@

bootstrap: $(VENV)/.bootstrapped

# The shared-cache tests, the server tests and the benchmark start their own redis-server on a loopback port.
redis:
	@command -v redis-server >/dev/null || { \
	  echo "apt-get: installing Debian's redis-server (the shared-cache and server tests start it on 127.0.0.1)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version
	@command -v ip >/dev/null || { \
	  echo "apt-get: installing Debian's iproute2 (the deadline tests bring up lo in a network namespace)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq iproute2 >/dev/null; }

# The OpenID Provider tests run oidc-provider (npm, tests/oidc/package-lock.json) on Node.js 18.12+.
node:
	@command -v npm >/dev/null || { \
	  echo "apt-get: installing Debian's nodejs and npm (the OpenID Provider tests run oidc-provider on 127.0.0.1)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	@echo "node $$(node --version), npm $$(npm --version)"

list: bootstrap
	$(NOX) --list

lint: bootstrap
	$(NOX) -s lint

matrix: bootstrap redis
	$(NOX) -t matrix

upstream: bootstrap
	$(NOX) -t upstream

# One progress line per nox session ([i/N] name ... ok (Ns)); each session's output is in
# .nox/logs/<session>.log and printed only when it fails; the matrix cells and SimpleJWT's own suites
# run three at a time from one queue, one core each. The last line is the summary's
# "N passed, N failed, N skipped" (CI reads it).
SOAK_SECONDS ?= 240
SESSIONS := lint -t package -j matrix -t servers -t fuzz -j upstream

test: bootstrap redis node
	@rm -f .nox/junit-*.xml .nox/upstream-*.json .nox/sessions.json
	@status=0; $(VENV)/bin/python .ci/run_sessions.py $(SESSIONS) || status=$$?; \
	  echo; $(VENV)/bin/python .ci/summary.py; exit $$status

servers: bootstrap redis node
	$(NOX) -t servers

dist: bootstrap
	$(NOX) -s dist sdist

docs: bootstrap
	$(NOX) -s docs

# make pin VERSION=X: fingerprint release X from its sdist (diff against the newest pin, candidate
# entry in simplejwt_patches/proven.py); make pin: regenerate every pinned release.
pin: bootstrap
	$(NOX) -s pin -- $(VERSION)

demo: bootstrap
	$(NOX) -s demo

bench: bootstrap redis
	rm -f bench/results.json
	$(NOX) -t bench

# Only the apply() row, replaced (dated) in each PyJWT version's last full run in bench/results.json.
bench-apply: bootstrap
	$(NOX) -t bench -- apply_cost

# SOAK_BEFORE=<dir of another simplejwt_patches> adds a run of it under the label "before" (the comparison).
soak: bootstrap redis
	$(NOX) -s soak-long -- $(SOAK_SECONDS)
	@if [ -n "$(SOAK_BEFORE)" ]; then $(NOX) -s soak-long -- $(SOAK_SECONDS) --label before --package $(SOAK_BEFORE) || true; fi

clean:
	rm -rf $(VENV) .nox build dist *.egg-info .hypothesis .ruff_cache .mypy_cache .pytest_cache tests/oidc/node_modules
