# har-clip: two commands set everything up on a fresh machine.
#   make quickstart   create .venv, install, `zenml init`, register the local stack, run the offline training pipeline
#   make test         install if needed, then run the test suite
#   make lock         re-resolve locks/ after a change to pyproject.toml's dependencies (commit what it rewrites)
#   make docs         serve the reference site (docs/, mkdocs.yml) on http://127.0.0.1:8000
#   make lock-verify  check every lock's pins and hashes against a fresh resolve (CI; needs the package index)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# The tests run on PYTEST_WORKERS pytest-xdist workers (0: one process), grouped by tests/workers.py, in a random
# order (pytest-randomly) seeded from the commit, so that a rerun of the same commit orders the same way; TEST_SEED
# overrides it (pytest prints the seed it used in its header).
PYTEST_WORKERS ?= 2
# Two workers share the cores, so OpenMP threads must sleep when idle: libgomp's default spin-wait made two torch
# processes on 2 cores run 6x slower than either alone (19.6 s against 3.0 s for the same training loop).
OMP_WAIT_POLICY ?= PASSIVE
TEST_SEED ?= $(shell printf '%d' 0x$$(git rev-parse --short=7 HEAD 2>/dev/null || echo 0))
PYTEST := OMP_WAIT_POLICY=$(OMP_WAIT_POLICY) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder \
    --randomly-seed=$(TEST_SEED)
# The interpreter: PYTHON if given, else the first of python3, python3.11, python3.12, python3.13 on PATH whose
# version is supported (3.11-3.13, the support table in docs/install.md). An existing .venv keeps its own.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach candidate,python3 python3.11 python3.12 python3.13,$(shell \
    $(candidate) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' >/dev/null 2>&1 \
    && echo $(candidate))) python3)
endif
LOCK_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
# The extra set to install: cpu,dev,cluster (default) or gpu,dev,cluster; each has one lock per supported Python and
# platform under locks/ (`python -m locks lock EXTRAS` names this machine's; empty where the table has none).
EXTRAS ?= cpu,dev,cluster
comma := ,
LOCK := $(shell $(LOCK_PYTHON) -m locks lock $(EXTRAS) 2>/dev/null)
# One marker per lock: switching EXTRAS re-syncs the virtualenv to the other lock (never both onnxruntimes).
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

export ZENML_ANALYTICS_OPT_IN := false
export TOKENIZERS_PARALLELISM := false
# uv trusts its own bundled CA roots unless told otherwise; behind a TLS-inspecting proxy (a company network, this
# project's CI) only the machine's store knows the proxy's CA, so uv reads the platform's store like pip does.
export UV_SYSTEM_CERTS ?= 1

.PHONY: install lock lock-check lock-verify quickstart test test-seed test-fast lint docs docs-build clean

install: $(INSTALLED)

# From the lock, never a fresh resolve: uv (itself pinned with hashes in locks/uv.txt, bootstrapped with pip) makes
# the virtualenv exactly the lock, hashes checked. `python -m locks sources` gives uv pip's own find-links/index-url
# (a machine's wheel folder or mirror keeps working) and, where those hold no CPU build of torch, PyTorch's CPU index
# for torch alone (HAR_CLIP_TORCH_INDEX overrides it; unreachable: one line naming it, and the install stops).
# Then the project itself, editable, and what the lock leaves out (TensorRT). --compile-bytecode: every process of a
# run (a step, a torchrun worker, a server) imports torch, transformers and ZenML, and without .pyc files (uv writes
# none unless asked; PYTHONDONTWRITEBYTECODE or a read-only virtualenv stop Python from writing them) each process
# compiles them again: `import pipelines.training` takes 21 s without them and 11 s with them on 2 cores.
$(INSTALLED): pyproject.toml $(LOCK) locks/uv.txt
	@test -n "$(LOCK)" || $(LOCK_PYTHON) -m locks lock $(EXTRAS)
	$(PYTHON) -m locks check $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r locks/uv.txt
	sources="$$($(BIN)/python -m locks sources $(LOCK))" && \
	    $(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes $$sources $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m locks unlocked $(LOCK) | xargs -r $(BIN)/python -m pip install --quiet
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $@

# Re-resolve every lock (resolution only, nothing installed) with the virtualenv's uv; run it after any change to
# pyproject.toml's dependencies and commit locks/. `lock-check` is CI's comparison: no resolve, a hash.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --require-hashes --no-deps -r locks/uv.txt
	$(BIN)/python -m locks refresh --uv $(BIN)/uv

lock-check:
	$(PYTHON) -m locks check

# Every lock's pins and hashes against a resolve of pyproject.toml with the lock as constraints: a hand-edited pin
# or hash fails, named. Needs uv (the virtualenv's) and the package index; CI runs it after the install.
lock-verify: install
	$(BIN)/python -m locks verify --uv $(BIN)/uv

quickstart: install
	test -d .zen || $(BIN)/zenml init
	$(BIN)/python -m stacks.register local
	$(BIN)/python run.py --pipeline training --config configs/quickstart.yaml

test: install
	$(PYTEST) $(PYTEST_ARGS)

test-seed:
	@echo $(TEST_SEED)

test-fast: install
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint .github/workflows/*.yml

# The reference site (mkdocs.yml, docs/). `docs` serves it while you edit; `docs-build` is CI's check: --strict fails
# on a broken link or anchor and on a page missing from the nav. Offline: no plugin fetches anything.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-build: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf .cache .pytest_cache .ruff_cache site
