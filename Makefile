# Rapport: `make run` to try it, `make test` to test it. Nothing else to install by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR := core/static/vendor
export RAPPORT_DATA_DIR ?= $(CURDIR)/data

.PHONY: install run test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# Browser assets are pinned in package.json and copied, never committed.
$(VENDOR)/.copied: node_modules/.package-lock.json
	mkdir -p $(VENDOR)/swagger-ui
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
	   node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js $(VENDOR)/swagger-ui/
	touch $@

install: $(STAMP) $(VENDOR)/.copied

run: install
	$(BIN)/rapport migrate
	@if [ ! -f "$(RAPPORT_DATA_DIR)/.demo-seeded" ]; then \
	  $(BIN)/rapport demo && touch "$(RAPPORT_DATA_DIR)/.demo-seeded"; fi
	$(BIN)/rapport serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) node_modules $(VENDOR) build *.egg-info
