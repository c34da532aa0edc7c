# One command each: set up, run the pipeline, run the tests.
PYTHON := .venv/bin/python
# This clone's code first, for its commands and the processes they start (Beam workers, Airflow
# tasks): the virtualenv is shared by the clones that use the same pins (scripts/setup.sh), and its
# editable install points at whichever clone ran `make setup` last.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: setup setup-airflow setup-kfp run test test-airflow test-kfp benchmark validate predict benchmark-drift versions benchmark-tflite

setup:
	bash scripts/setup.sh

setup-airflow:
	bash scripts/setup.sh airflow

setup-kfp:
	bash scripts/setup.sh kfp

run:
	$(PYTHON) local_runner.py $(ARGS)

# One pytest-xdist worker per CPU (at most 4: each may hold ~2 GiB); worksteal gives each worker a
# contiguous share of the tests, the end-to-end test first (tests/conftest.py), and an idle worker
# takes over the queue of a busy one. The orchestrators' runs need their own virtualenvs and
# minutes each: make test-kfp, test-airflow.
test:
	$(PYTHON) -m pytest -n auto --maxprocesses 4 --dist worksteal --ignore=tests/test_kfp_spec.py --ignore=tests/test_airflow_dag.py --ignore=tests/test_airflow_e2e.py $(ARGS)

test-airflow:
	.venv-airflow/bin/python -m pytest tests/test_airflow_dag.py tests/test_airflow_e2e.py $(ARGS)

# The compiled Kubeflow V2 spec: loaded by the kfp SDK (.venv-kfp) and run task by task here.
test-kfp:
	$(PYTHON) -m pytest tests/test_kfp_spec.py $(ARGS)

benchmark:
	$(PYTHON) -m benchmarks.pipeline_benchmark $(ARGS)

validate:
	$(PYTHON) validate.py $(ARGS)

predict:
	$(PYTHON) predict.py $(ARGS)

# The pushed versions: make versions ARGS="list" (or "show V", "card V", "rollback V").
versions:
	$(PYTHON) versions.py $(ARGS)

benchmark-drift:
	$(PYTHON) -m benchmarks.drift_benchmark $(ARGS)

benchmark-tflite:
	$(PYTHON) -m benchmarks.tflite_benchmark $(ARGS)
