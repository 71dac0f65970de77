# `make run` and `make test` each set up .venv on a fresh clone.
#
# PyTorch: on a machine without nvidia-smi the CPU build is installed (torch==…+cpu
# from the PyTorch CPU index). GPU users override TORCH and TORCH_INDEX, e.g.
#   make run TORCH=torch==2.13.0 TORCH_INDEX=https://download.pytorch.org/whl/cu128
# Only torch itself is looked up in TORCH_INDEX (--no-deps); everything else comes from PyPI.
PYTHON      ?= python3
VENV        ?= .venv
CORES       ?= all
TORCH_VERSION = 2.13.0
ifeq ($(shell command -v nvidia-smi 2>/dev/null),)
TORCH       ?= torch==$(TORCH_VERSION)+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
else
TORCH       ?= torch==$(TORCH_VERSION)
TORCH_INDEX ?=
endif

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench report clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --retries 1 --no-deps "$(TORCH)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores 1 --report results/report.html

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf results .snakemake
