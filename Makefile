# Two commands do everything on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A local mirror of the data in torchvision's layout; used when present, else torchvision downloads.
DATA_MIRROR ?= ../shared/data
LAB_ARGS ?=
PYTEST_ARGS ?=
# The class's JupyterHub (make hub): the site's folder, options of `python -m autograder.hub setup`
# (e.g. --port 443 --ssl-key K --ssl-cert C, or --db URL), and a roster to create accounts from.
HUB_ROOT ?= /srv/dgm
HUB_ARGS ?=
ROSTER ?=
CHP_VERSION ?= 5.3.0

.PHONY: setup data browser sandbox hub-deps hub release workspace lab test selfcheck bench clean

setup: $(STAMP) data

# The virtualenv is rebuilt only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Copies or downloads what is missing, verifies checksums of everything (a second run only verifies),
# then trains the small classifiers behind the Fréchet figures once (cached in data/classifiers).
data: $(STAMP)
	$(PY) -m helpers.data $(if $(wildcard $(DATA_MIRROR)/MNIST),--from $(DATA_MIRROR))
	$(PY) -m helpers.classifier

# Every assignment, as if the term were over (course.toml's dates and `after` rules all met): one
# person's own copy for `make lab`, never handed out (the class gets assignments through the exchange).
release: setup
	$(PY) -m autograder release --now '2999-12-31 23:59'

# Chromium for the browser tests (tests/test_browser.py, driven by Playwright): Debian's package,
# installed when missing and we are root; otherwise those tests are skipped and say why.
browser:
	@test -x /usr/bin/chromium || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "Chromium is not installed and cannot be installed here: the browser tests will be skipped."

# bubblewrap for the grading sandbox (autograder/grading/sandbox.py): Debian's package, installed when
# missing and we are root; without it (or root) kernels get no namespaces and those tests are skipped.
sandbox:
	@command -v bwrap >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
		|| echo "bubblewrap is not installed and cannot be installed here: grading kernels get no namespaces."

# configurable-http-proxy for JupyterHub (make hub, tests/test_hub.py): npm's package, installed
# into .hub/node_modules (npm from Debian when missing and we are root); without it the hub tests are skipped.
hub-deps:
	@test -x .hub/node_modules/.bin/configurable-http-proxy || { { command -v npm >/dev/null || { \
		test "$$(id -u)" = 0 && command -v apt-get >/dev/null && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }; } \
		&& npm install --prefix .hub --no-audit --no-fund --loglevel=error configurable-http-proxy@$(CHP_VERSION) >/dev/null; } \
		|| echo "configurable-http-proxy cannot be installed here: the hub tests will be skipped."

# The class's JupyterHub on this server, as root (docs/instructors.md: "A JupyterHub for the class"): accounts,
# folders and permissions, the gradebook's PostgreSQL, then the hub in the foreground (Ctrl-C stops it).
hub: setup hub-deps
	$(PY) -m autograder.hub setup --root $(HUB_ROOT) $(HUB_ARGS)
	$(if $(ROSTER),$(PY) -m autograder.hub accounts $(ROSTER) --root $(HUB_ROOT) --passwords $(HUB_ROOT)/passwords.csv)
	$(PY) -m autograder.hub up --root $(HUB_ROOT)

# The student's copy of the release: new notebooks are added, edited ones are never overwritten.
workspace: release
	$(PY) -m autograder.lab --no-start

# JupyterLab on the workspace (nbgrader's Assignments tab and Validate button, ipywidgets).
lab: release
	$(PY) -m autograder.lab $(LAB_ARGS)

test: setup browser sandbox hub-deps
	$(PY) -m pytest $(PYTEST_ARGS)

selfcheck: setup
	$(PY) -m autograder selfcheck

clean:
	rm -rf release submitted autograded feedback gradebook.db grades.csv grade-log.csv report grades-canvas.csv grades-moodle.csv
