# simplejwt-patches - every entry point bootstraps what it needs on a fresh machine.
#
#   make test    lint + type check + our suite on every pinned release + PyJWT boundaries + Django 6
#                + SimpleJWT's own suites with and without the shim
#   make demo    WAF-fronted Keycloak on 127.0.0.1: token rejected without the shim, accepted with it
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

.PHONY: bootstrap test lint matrix upstream demo list clean

$(VENV)/.bootstrapped: .ci/requirements-tools.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r .ci/requirements-tools.txt
	touch $@

bootstrap: $(VENV)/.bootstrapped

list: bootstrap
	$(NOX) --list

lint: bootstrap
	$(NOX) -s lint

matrix: bootstrap
	$(NOX) -t matrix

upstream: bootstrap
	$(NOX) -t upstream

test: bootstrap
	$(NOX) -s lint
	$(NOX) -t matrix
	$(NOX) -t upstream
	$(VENV)/bin/python .ci/summary.py

demo: bootstrap
	$(NOX) -s demo

clean:
	rm -rf $(VENV) .nox build *.egg-info
