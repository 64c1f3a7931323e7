# mlprod: the README's commands (demo, test) and the daily ones (lab, bench, export, lock).
# A fresh clone and python3 (3.11+) are enough: the first run makes .tools/ (uv) and .venv/ (the project's
# environment, installed from the hash-pinned requirements/dev.lock); later runs reuse both.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlprod-installed
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: demo test test-slow check lint nbtest pytest bench lab export lock hooks wheel-check clean-env

## Set-up ---------------------------------------------------------------------------------------

$(UV):
	@echo "make: bootstrapping uv $(UV_VERSION) into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) pyproject.toml requirements/dev.lock
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes --compile-bytecode requirements/dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation --editable .
	@$(MAKE) --no-print-directory hooks
	@touch $(STAMP)

hooks: ## nbdev's git hooks: the notebook merge and diff drivers (.gitattributes, .gitconfig)
	@if [ -e .git ]; then \
		$(BIN)/nbdev-install-hooks >/dev/null && \
		git config --local merge.jupyternotebook.driver "$(CURDIR)/$(BIN)/nbdev-merge %O %A %B %P" && \
		git config --local diff.jupyternotebook.command "$(CURDIR)/$(BIN)/nbdev-diff-driver" && \
		echo "make: nbdev git hooks installed (notebook merge and diff drivers from $(BIN))"; \
	fi

## The README's two commands ---------------------------------------------------------------------

# The whole flow on scikit-learn's bundled iris set (no network): data -> split -> train -> predict -> evaluate.
# Each line is a command a user can run alone (README.md); tests/test_demo.py runs these very lines.
demo: $(STAMP)
	$(BIN)/mlprod data iris --output outputs/demo/raw/iris.csv
	$(BIN)/mlprod data fetch --sql sql/iris_train.sql --table iris_raw=outputs/demo/raw/iris.csv --output outputs/demo/iris.csv
	$(BIN)/mlprod data split outputs/demo/iris.csv --train-out outputs/demo/train.csv --test-out outputs/demo/test.csv --test-size 0.25 --seed 42 --stratify species
	$(BIN)/mlprod train --config configs/iris_rf.yaml --train-data outputs/demo/train.csv --out-dir outputs/models/iris_rf
	$(BIN)/mlprod predict --model-dir outputs/models/iris_rf --input outputs/demo/test.csv --output outputs/predictions/iris_test.jsonl --proba
	$(BIN)/mlprod evaluate --predictions outputs/predictions/iris_test.jsonl --truth outputs/demo/test.csv --model-dir outputs/models/iris_rf --output outputs/demo/metrics.json
	$(BIN)/mlprod report evaluate --model-dir outputs/models/iris_rf --data outputs/demo/test.csv --out-dir outputs/reports/iris_rf
	$(BIN)/mlprod lineage outputs/demo/metrics.json
	@echo
	@echo "make demo: done. Everything is under outputs/:"
	@echo "  data         outputs/demo/iris.csv (150 rows, by sql/iris_train.sql; lineage beside it), split into outputs/demo/train.csv and test.csv"
	@echo "  model        outputs/models/iris_rf/<version>/ (the new one is named by \"latest\" in outputs/models/iris_rf/aliases.json)"
	@echo "  predictions  outputs/predictions/iris_test.jsonl (id, prediction, proba_<species>)"
	@echo "  metrics      outputs/demo/metrics.json   (mlprod lineage outputs/demo/metrics.json: the chain back to the SQL)"
	@echo "  report       outputs/reports/iris_rf/report.html"

test: $(STAMP) check pytest

# Tests marked slow (a wheel built and installed alone, a Dask cluster, crafted trees in a forest, 40 kills
# of a parent with workers, the rarer hostile cases: special files and deep JSON through every command, more
# full disks): CI runs them after `make test` (.ci/run); `make test` stays a few minutes on a 2-core machine.
test-slow: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -m slow

check: $(STAMP) ## sync check (mlprod/ is what nbs/ exports), lint, format check, notebook tests
	$(BIN)/mlprod check-sync .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/nbdev-test --n-workers 2

pytest: $(STAMP) ## two workers; a test module stays on one worker (its module-scoped fixtures are built once)
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow"

## Daily ------------------------------------------------------------------------------------------

export: $(STAMP) ## clean the notebooks and export them into mlprod/
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export

lab: $(STAMP) ## JupyterLab on nbs/ with the project's environment as its kernel
	$(UV) pip install --quiet --python $(BIN)/python jupyterlab
	$(BIN)/jupyter lab nbs

bench: $(STAMP)
	$(BIN)/python bench/run.py

# MLflow's pyfunc beside mlprod in bench/bundle_load.py (issue 3). MLflow never enters .venv/ (CI tests from
# it): it goes into its own .venv-mlflow/ (git-ignored), from requirements/bench-mlflow.lock = dev.lock's pins
# plus the `mlflow` extra. Every timed process (plain script, mlprod, MLflow) runs in that interpreter.
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.mlprod-installed
.PHONY: bench-mlflow lock-bench-mlflow

$(MLFLOW_STAMP): $(UV) pyproject.toml requirements/bench-mlflow.lock
	@test -x $(MLFLOW_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(MLFLOW_VENV)
	$(UV) pip sync --quiet --python $(MLFLOW_VENV)/bin/python --require-hashes --compile-bytecode requirements/bench-mlflow.lock
	$(UV) pip install --quiet --python $(MLFLOW_VENV)/bin/python --no-deps --no-build-isolation --editable .
	@touch $(MLFLOW_STAMP)

bench-mlflow: $(STAMP) $(MLFLOW_STAMP) ## bench/bundle_load.py with the MLflow row; rewrites its section of bench/README.md
	$(BIN)/python bench/bundle_load.py --mlflow-python $(MLFLOW_VENV)/bin/python --readme

# Starts from a copy of dev.lock, which uv takes as preferred pins: only what MLflow cannot share moves
# (importlib-metadata, pinned by dask on Python < 3.12 above MLflow's bound). Re-run after `make lock`.
lock-bench-mlflow: $(UV) ## re-pin requirements/bench-mlflow.lock
	cp requirements/dev.lock requirements/bench-mlflow.lock
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --extra report --extra dask --extra serve \
		--extra onnx --extra project --extra mlflow --group dev --generate-hashes --quiet -o requirements/bench-mlflow.lock

wheel-check: $(STAMP) ## build the wheel and install it alone into a clean venv
	$(BIN)/pytest tests/test_wheel.py -m slow

lock: $(UV) ## re-pin requirements/*.lock after editing dependencies in pyproject.toml
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --extra report --extra dask --extra serve --extra onnx \
		--extra project --group dev --generate-hashes --quiet -o requirements/dev.lock
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet \
		-o requirements/runtime.lock
	cp requirements/dev.lock mlprod/templates/project/_shared/requirements.lock  # a new project's lock (mlprod new)

clean-env:
	rm -rf $(VENV) .tools
