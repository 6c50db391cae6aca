# archive-sim: everything a fresh clone needs, installed from this project's own files.
#   make demo   build the example site into site/ (creates .venv and installs the package)
#   make test   install the test extras and run the test suite
#   make test-fast   the same without the tests marked slow (real site builds, the CNN)
#   make test-browser   the site in a real browser (Debian's chromium, via apt-get if missing)
#   make docs   build the manual in docs/ into build/docs/ (MkDocs, strict)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-fast test-browser docs install install-test install-browser install-docs serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Dependencies are installed once per change of pyproject.toml; the package itself is
# reinstalled from a freshly built wheel every time (not editable), so what runs is what ships.
$(VENV)/.deps: pyproject.toml | $(BIN)/python
	$(PIP) install .
	touch $@

$(VENV)/.deps-test: pyproject.toml | $(BIN)/python
	$(PIP) install '.[test]'
	touch $@

install: $(VENV)/.deps
	$(PIP) install --no-deps --force-reinstall .

install-test: $(VENV)/.deps-test
	$(PIP) install --no-deps --force-reinstall .

$(VENV)/.deps-browser: pyproject.toml | $(BIN)/python
	$(PIP) install '.[test,browser]'
	touch $@

install-browser: $(VENV)/.deps-browser
	$(PIP) install --no-deps --force-reinstall .

$(VENV)/.deps-docs: pyproject.toml | $(BIN)/python
	$(PIP) install '.[docs]'
	touch $@

install-docs: $(VENV)/.deps-docs
	$(PIP) install --no-deps --force-reinstall .

# Debian's chromium, never a browser that Playwright downloads.
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium

demo: install
	$(BIN)/archive-sim build --config config.yaml
	@echo
	@echo "The example site is in site/. To view it:"
	@echo "  $(BIN)/archive-sim serve     (then open http://127.0.0.1:8000/)"

# pytest (not python -m pytest) so the tests import the installed wheel, not the checkout.
test: install-test
	cd tests && ../$(BIN)/pytest -q --ignore=browser

test-fast: install-test
	cd tests && ../$(BIN)/pytest -q --ignore=browser -m "not slow"

# Builds a small site, serves it on localhost and drives it in headless chromium;
# screenshots for a person to look at go to build/screenshots/.
test-browser: $(CHROMIUM) install-browser
	cd tests && ../$(BIN)/pytest -q browser

# Strict: a broken link, a page missing from the nav or any other warning fails the build.
# The configuration reference is generated from the installed package (docs/hooks.py).
docs: install-docs
	$(BIN)/mkdocs build --strict --site-dir build/docs

serve: install
	$(BIN)/archive-sim serve

clean:
	rm -rf site .archive-sim build dist
