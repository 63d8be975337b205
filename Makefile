# nfsroot-build: make install | test | lint | demo | bench
# Debian's own interpreter when there is one: root-owned and readable by every
# user, so the same venv serves the unprivileged dry-run.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install system-deps test unit lint demo bench clean

$(BIN)/nfsroot-build: pyproject.toml
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || ./scripts/install-system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(BIN)/nfsroot-build   ## a venv with nfsroot-build in it (no root needed)
	@# The bytecode a wheel install compiles (pip does, an editable install does
	@# not): where PYTHONDONTWRITEBYTECODE is set (CI, containers) every command
	@# compiled the package again, 50-60 ms of each start. Up-to-date files are skipped.
	@$(BIN)/python -m compileall -q nfsroot_builder

system-deps:                     ## the Debian packages the real tests and the lab use (root)
	./scripts/install-system-deps

test: install system-deps        ## everything: unit, CLI, integration (root) and end-to-end
	$(BIN)/pytest -q -ra --durations=25 $(PYTEST_ARGS)

unit: install                    ## the fast tests only: no root, no network
	$(BIN)/pytest -q tests/unit tests/cli $(PYTEST_ARGS)

lint: install
	$(BIN)/pip install -q ruff
	$(BIN)/ruff check nfsroot_builder tests

demo: install system-deps        ## the main job: build the lab cluster under a staging prefix
	./scripts/demo

# QUICK=1: small sizes, one run each, no full build, no lab (what `make test` checks).
QUICK ?=
BENCH_OUT ?= bench/RESULTS.md
BENCH_ARGS ?=
bench: install system-deps       ## benchmarks (root): rewrites bench/RESULTS.md; QUICK=1 for a small run
	$(BIN)/python bench/run.py $(if $(QUICK),--quick) --out $(BENCH_OUT) --nfsroot-build $(BIN)/nfsroot-build $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
