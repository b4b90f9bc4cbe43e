# gitops-ml: the template repository's own tasks. `make demo` and `make test` are all a new
# machine needs; both install what is missing first (scripts/setup.sh).

.PHONY: help setup demo test lint lock schema sample-data bench bench-deploy load-test fuzz

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup:  ## the Python environment (.venv)
	scripts/setup.sh

demo: setup  ## generate a model repo in a temp folder and run its lifecycle locally
	.venv/bin/python scripts/demo.py

test:  ## everything the tests need (Docker engine, base image, .venv), then the whole suite
	scripts/setup.sh --test
	.venv/bin/pytest $(PYTEST_ARGS)

lint:  ## ruff, actionlint and zizmor over the template repo and its workflows
	.venv/bin/ruff check actions tests scripts hooks benchmarks
	.venv/bin/actionlint .github/workflows/*.yml
	.venv/bin/zizmor --offline .github/workflows actions

lock:  ## re-resolve requirements-dev.txt and the generated repo's locks
	uv pip compile requirements-dev.in --universal -p 3.11 -q --no-header -o requirements-dev.txt
	scripts/lock-template.sh

schema: setup  ## regenerate schema/gitops-ml.schema.json from the contract's pydantic model
	.venv/bin/gitops-ml contract schema > schema/gitops-ml.schema.json

sample-data:  ## regenerate the bundled sample datasets
	.venv/bin/python scripts/make-sample-data.py

bench: setup  ## serving benchmark: our app vs mlflow models serve (prints the table in docs/serving.md)
	.venv/bin/python benchmarks/serve.py $(BENCH_ARGS)

bench-image:  ## serving image: MB above the base image, time to ready, compiled vs scikit-learn (docs/shipping.md)
	.venv/bin/python benchmarks/image.py --sklearn $(BENCH_ARGS)

bench-deploy:  ## deploys under load through HAProxy: requests served, failed, longest pause (docs/shipping.md)
	scripts/setup.sh --test
	.venv/bin/python benchmarks/deploy.py $(BENCH_ARGS)

load-test: setup  ## the long load test: 64 connections for 30 s, zero errors, flat memory
	GITOPS_ML_LOAD_SECONDS=30 .venv/bin/pytest tests/template/test_serving_reliability.py -k connections

fuzz: setup  ## the long fuzz run: schemathesis with 2,000 examples per operation
	GITOPS_ML_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/template/test_serving_reliability.py -k schemathesis
