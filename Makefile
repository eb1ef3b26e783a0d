# Two commands on a fresh Debian machine: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# System packages the service and its tests call: OCR, the embedded Redis, PDF checks, the test HSM, CJK fonts
# (ours, and a second face the OCR tests print values in), the browser for page tests, the tests' private
# OpenLDAP server (slapd, ldap-utils); npm (for axe-core, the page tests' accessibility check) is asked for
# only where no npm is on the PATH (NodeSource's nodejs has its own).
APT_PACKAGES := tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-osd redis-server poppler-utils softhsm2 fonts-arphic-uming fonts-wqy-zenhei qpdf chromium chromium-driver slapd ldap-utils

.PHONY: run test lint format system venv node lock clean

run: system venv
	$(BIN)/imaging up

# Two test processes, each file whole in one of them (its module's servers start once); the slowest files
# first (tests/conftest.py SLOW_FIRST). A single file runs alone as usual: .venv/bin/pytest tests/FILE.
test: system venv node lint
	$(BIN)/pytest -n 2 --dist loadfile

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Debian's own slapd is installed without a database of its own (debconf's no_configuration) and kept from
# starting (its init script's sentinel, /etc/ldap/noslapd): the tests start a private one.
system:
	@missing=$$({ for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done; \
	  command -v npm >/dev/null || echo npm; } | xargs); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages: $$missing"; \
	    case " $$missing " in *" slapd "*) \
	      echo "slapd slapd/no_configuration boolean true" | debconf-set-selections; \
	      mkdir -p /etc/ldap && touch /etc/ldap/noslapd;; \
	    esac; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "missing system packages: $$missing"; \
	    echo "install them as root:  sudo apt-get install $$missing"; \
	    exit 1; \
	  fi; \
	fi

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

# axe-core for the page tests, at the version package-lock.json pins, into node_modules/.
node: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

# Refresh constraints.txt after changing the dependencies in pyproject.toml.
lock: venv
	{ echo "# Exact versions a fresh machine installs (pip install -c constraints.txt -e '.[dev]')."; \
	  echo "# Regenerate after changing pyproject.toml: make lock"; \
	  $(BIN)/pip freeze --exclude-editable --disable-pip-version-check; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info node_modules
