# simplejwt-patches - every entry point bootstraps what it needs on a fresh machine.
#
#   make test    lint + type check + our suite on every pinned release + PyJWT boundaries + Django 6
#                + SimpleJWT's own suites with and without the shim
#   make demo    WAF-fronted Keycloak on 127.0.0.1: token rejected without the shim, accepted with it
#   make bench   resilience benchmark vs vanilla SimpleJWT (PyJWT 2.13 and newest) -> bench/results.json
#   make pin [VERSION=X]  fingerprint a release from its sdist into simplejwt_patches/proven.py
#   make lint | matrix | upstream | list

SHELL := /bin/bash
.DEFAULT_GOAL := test
PYENV_ROOT ?= $(HOME)/.pyenv
# The tooling interpreter: newest pyenv 3.12, else python3.12 / python3 on PATH.
PY := $(firstword $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin/python3.12) $(shell command -v python3.12 python3 2>/dev/null))
VENV := .venv
NOX := $(VENV)/bin/nox --no-color
export UV_PYTHON_DOWNLOADS := never
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: bootstrap redis test lint matrix upstream demo bench list clean pin

$(VENV)/.bootstrapped: .ci/requirements-tools.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r .ci/requirements-tools.txt
	touch $@

bootstrap: $(VENV)/.bootstrapped

# The shared-cache tests and the benchmark start their own redis-server on a loopback port.
redis:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

list: bootstrap
	$(NOX) --list

lint: bootstrap
	$(NOX) -s lint

matrix: bootstrap redis
	$(NOX) -t matrix

upstream: bootstrap
	$(NOX) -t upstream

test: bootstrap redis
	rm -f .nox/junit-*.xml .nox/upstream-*.json
	$(NOX) -s lint
	$(NOX) -t matrix
	$(NOX) -t upstream
	$(VENV)/bin/python .ci/summary.py

# make pin VERSION=X: fingerprint release X from its sdist (diff against the newest pin, candidate
# entry in simplejwt_patches/proven.py); make pin: regenerate every pinned release.
pin: bootstrap
	$(NOX) -s pin -- $(VERSION)

demo: bootstrap
	$(NOX) -s demo

bench: bootstrap redis
	rm -f bench/results.json
	$(NOX) -t bench

clean:
	rm -rf $(VENV) .nox build *.egg-info
