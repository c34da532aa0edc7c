# One command each: set up, run the pipeline, run the tests.
PYTHON := .venv/bin/python
export TF_USE_LEGACY_KERAS := 1

.PHONY: setup run test test-e2e benchmark

setup:
	bash scripts/setup.sh

run:
	$(PYTHON) local_runner.py $(ARGS)

test:
	$(PYTHON) -m pytest $(ARGS)

benchmark:
	$(PYTHON) benchmarks/pipeline_benchmark.py $(ARGS)
