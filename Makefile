# archive-sim: everything a fresh clone needs, installed from this project's own files.
#   make demo   build the example site into site/ (creates .venv and installs the package;
#               with the find extra and onnxruntime-web, for the Find by image page)
#   make test   install the test extras and run the test suite
#   make test-fast   the same without the tests marked slow (real site builds, the CNN)
#   make test-browser   the site in a real browser (Debian's chromium, via apt-get if missing)
#   make docs   build the manual in docs/ into build/docs/ (MkDocs, strict)
#   make vendor-web   onnxruntime-web (pinned npm package) into the site's static assets
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: vendor-web demo test test-fast test-browser docs install install-test install-find install-browser install-docs serve bench clean

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

$(VENV)/.deps-find: pyproject.toml | $(BIN)/python
	$(PIP) install '.[find]'
	touch $@

install-find: $(VENV)/.deps-find
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

# "Find by image" runs the descriptor in the visitor's browser with onnxruntime-web. Its
# files are copied from the pinned npm package (checked against this checksum) into the
# templates' static assets, so a site never loads them from another host. Only the
# WebAssembly build is kept: its loader, glue and binary, and the licence notice (the
# package carries no LICENSE file: its package.json field and the bundle's header).
ORT_WEB_VERSION := 1.31.1
ORT_WEB_SHA256  := bdccdb9fbb9ab537247c0c734e9b1d2b1b338b4f2a09faa58f0dc1cfa27c312c
ORT_WEB_BUILD   := build/npm/onnxruntime-web-$(ORT_WEB_VERSION)
ORT_WEB_STATIC  := templates/static/vendor/onnxruntime-web
ORT_WEB_FILES   := ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm

$(ORT_WEB_STATIC)/VERSION:
	rm -rf $(ORT_WEB_BUILD) && mkdir -p $(ORT_WEB_BUILD)
	cd $(ORT_WEB_BUILD) && npm pack --silent onnxruntime-web@$(ORT_WEB_VERSION) >/dev/null
	echo "$(ORT_WEB_SHA256)  $(ORT_WEB_BUILD)/onnxruntime-web-$(ORT_WEB_VERSION).tgz" | sha256sum -c --quiet
	tar xzf $(ORT_WEB_BUILD)/onnxruntime-web-$(ORT_WEB_VERSION).tgz -C $(ORT_WEB_BUILD)
	rm -rf $(ORT_WEB_STATIC) && mkdir -p $(ORT_WEB_STATIC)
	cp $(addprefix $(ORT_WEB_BUILD)/package/dist/,$(ORT_WEB_FILES)) $(ORT_WEB_STATIC)/
	{ echo "onnxruntime-web $(ORT_WEB_VERSION), https://github.com/Microsoft/onnxruntime"; \
	  echo "License (package.json): $$(node -p "require('./$(ORT_WEB_BUILD)/package/package.json').license")"; \
	  echo; head -5 $(ORT_WEB_BUILD)/package/dist/ort.wasm.min.js; } > $(ORT_WEB_STATIC)/LICENSE
	echo $(ORT_WEB_VERSION) > $@

vendor-web: $(ORT_WEB_STATIC)/VERSION

# The demo has the "Find by image" page when npm can fetch onnxruntime-web; without npm
# it is built without that page (the build says so in one line).
demo:
	@$(MAKE) --no-print-directory vendor-web || echo "make vendor-web failed: the demo is built without Find by image"
	@$(MAKE) --no-print-directory install-find
	$(BIN)/archive-sim build --config config.yaml
	@echo
	@echo "The example site is in site/. To view it:"
	@echo "  $(BIN)/archive-sim serve     (then open http://127.0.0.1:8000/)"

# pytest (not python -m pytest) so the tests import the installed wheel, not the checkout.
# vendor-web first: the wheel carries onnxruntime-web, which the find page's tests need.
test: vendor-web install-test
	cd tests && ../$(BIN)/pytest -q --ignore=browser

test-fast: vendor-web install-test
	cd tests && ../$(BIN)/pytest -q --ignore=browser -m "not slow"

# Builds a small site, serves it on localhost and drives it in headless chromium;
# screenshots for a person to look at go to build/screenshots/.
test-browser: $(CHROMIUM) vendor-web install-browser
	cd tests && ../$(BIN)/pytest -q browser

# Strict: a broken link, a page missing from the nav or any other warning fails the build.
# The configuration reference is generated from the installed package (docs/hooks.py).
docs: install-docs
	$(BIN)/mkdocs build --strict --site-dir build/docs

serve: install
	$(BIN)/archive-sim serve

clean:
	rm -rf site .archive-sim build dist
