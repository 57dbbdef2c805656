# Every target bootstraps what it needs: a fresh clone runs `make test` or `make demo` directly.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
AWSCLI_VERSION := 1.46.2
PIP_VERSION := 25.3
# moto's sdist holds its own Batch tests, run against the local endpoint (tests/local/batch/peer);
# the same version pyproject.toml pins.
MOTO_VERSION := 5.2.5
# sam build needs an interpreter matching the python3.13 Lambda runtime; pyenv has one here.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PY313_DIR := $(shell (pyenv root 2>/dev/null || echo $$HOME/.pyenv))/versions/3.13.0/bin

.PHONY: venv tools peer browser lint unit test build demo bench clean

venv: $(BIN)/.installed
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# aws-sam-cli, checkov and the AWS CLI pin their own dependency trees, so each lives in its own venv.
tools: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed $(TOOLS)/awscli/.installed
$(TOOLS)/sam/.installed:
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install -q --disable-pip-version-check "aws-sam-cli==$(SAM_CLI_VERSION)"
	touch $@
$(TOOLS)/checkov/.installed:
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"
	touch $@
# The real AWS CLI runs README's `aws ...` examples against the local cloud (tests/pipeline).
$(TOOLS)/awscli/.installed:
	$(PYTHON) -m venv $(TOOLS)/awscli
	$(TOOLS)/awscli/bin/pip install -q --disable-pip-version-check "awscli==$(AWSCLI_VERSION)"
	touch $@

peer: $(TOOLS)/peer/moto-$(MOTO_VERSION).tar.gz
$(TOOLS)/peer/moto-$(MOTO_VERSION).tar.gz: | venv
	$(BIN)/pip download -q --disable-pip-version-check "moto==$(MOTO_VERSION)" --no-binary :all: --no-deps -d $(TOOLS)/peer

lint: venv tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict sluice/local
	$(BIN)/mypy --strict functions/trigger/app.py
	$(BIN)/mypy --strict functions/notify/app.py
	$(BIN)/mypy sluice bench
	# The job images import their packages top-level (the Dockerfiles' WORKDIR), so from there.
	cd containers && ../$(BIN)/mypy ingest transform aggregate jobkit
	SAM_CLI_TELEMETRY=0 $(TOOLS)/sam/bin/sam validate --lint --region us-east-1
	$(BIN)/cfn-lint template.yaml
	$(TOOLS)/checkov/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	find containers -name Dockerfile -print0 | xargs -0 -r $(BIN)/hadolint

build: venv tools
	PATH="$(PY313_DIR):$$PATH" SAM_CLI_TELEMETRY=0 $(TOOLS)/sam/bin/sam build --cached --parallel

# The report test opens report.html in headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium for the report test"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

unit: venv browser peer
	$(BIN)/pytest

test: lint build unit

demo: venv
	$(BIN)/sluice demo

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache
