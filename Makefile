# har-clip: two commands set everything up on a fresh machine.
#   make quickstart   create .venv, install, `zenml init`, register the local stack, run the offline training pipeline
#   make test         install if needed, then run the test suite
#   make docs         serve the reference site (docs/, mkdocs.yml) on http://127.0.0.1:8000
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

export ZENML_ANALYTICS_OPT_IN := false
export TOKENIZERS_PARALLELISM := false

.PHONY: install quickstart test test-fast lint docs docs-build clean

install: $(VENV)/.installed

# One pip resolve for everything: installing wandb or mlflow after zenml can lift zenml's opentelemetry pin.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev,cluster]'
	touch $@

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
