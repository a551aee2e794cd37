# har-clip: two commands set everything up on a fresh machine.
#   make quickstart   create .venv, install, `zenml init`, register the local stack, run the offline training pipeline
#   make test         install if needed, then run the test suite
#   make lock         re-resolve locks/ after a change to pyproject.toml's dependencies (commit what it rewrites)
#   make docs         serve the reference site (docs/, mkdocs.yml) on http://127.0.0.1:8000
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# The extra set to install: cpu,dev,cluster (default) or gpu,dev,cluster; each has its lock under locks/.
EXTRAS ?= cpu,dev,cluster
comma := ,
LOCK := locks/$(subst $(comma),-,$(EXTRAS)).txt
# One marker per extra set: switching EXTRAS re-syncs the virtualenv to the other lock (never both onnxruntimes).
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

export ZENML_ANALYTICS_OPT_IN := false
export TOKENIZERS_PARALLELISM := false
# uv trusts its own bundled CA roots unless told otherwise; behind a TLS-inspecting proxy (a company network, this
# project's CI) only the machine's store knows the proxy's CA, so uv reads the platform's store like pip does.
export UV_SYSTEM_CERTS ?= 1

.PHONY: install lock lock-check quickstart test test-fast lint docs docs-build clean

install: $(INSTALLED)

# From the lock, never a fresh resolve: uv (itself pinned with hashes in locks/uv.txt, bootstrapped with pip) makes
# the virtualenv exactly the lock, hashes checked; pip's find-links/index-url reach uv through `python -m locks
# sources` (the CPU torch wheel). Then the project itself, editable, and what the lock leaves out (TensorRT).
$(INSTALLED): pyproject.toml $(LOCK) locks/uv.txt
	$(PYTHON) -m locks check $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r locks/uv.txt
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes $$($(BIN)/python -m locks sources $(LOCK)) $(LOCK)
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

quickstart: install
	test -d .zen || $(BIN)/zenml init
	$(BIN)/python -m stacks.register local
	$(BIN)/python run.py --pipeline training --config configs/quickstart.yaml

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The reference site (mkdocs.yml, docs/). `docs` serves it while you edit; `docs-build` is CI's check: --strict fails
# on a broken link or anchor and on a page missing from the nav. Offline: no plugin fetches anything.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-build: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf .cache .pytest_cache .ruff_cache site
