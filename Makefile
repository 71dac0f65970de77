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
# The torch build's stamp is named after TORCH and TORCH_INDEX, so a different build (a CUDA
# one on an existing CPU .venv) has no stamp yet and is installed. --force-reinstall: pip
# takes an installed 2.13.0+cpu for torch==2.13.0 (a local label satisfies a plain version).
TORCH_SPEC := $(TORCH) $(TORCH_INDEX)
TORCH_STAMP := $(VENV)/.torch-$(shell printf '%s' '$(TORCH_SPEC)' | cksum | cut -d' ' -f1)

.PHONY: help install run test bench report clean

help:
	@echo "make install   set up $(VENV): torch ($(TORCH)), then this package and its test tools"
	@echo "make run       the whole pipeline on config.yaml (CORES=$(CORES)), then results/report.html"
	@echo "make test      the test suite"
	@echo "make bench     every benchmark (python -m benchmarks --help)"
	@echo "make clean     remove results/ and .snakemake/"
	@echo ""
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) CORES=$(CORES)"
	@echo "  TORCH=$(TORCH)"
	@echo "  TORCH_INDEX=$(TORCH_INDEX)"
	@echo "A CUDA build, also on an existing $(VENV) (torch alone is reinstalled):"
	@echo "  make run TORCH=torch==$(TORCH_VERSION) TORCH_INDEX=https://download.pytorch.org/whl/cu128"

install: $(STAMP)

$(TORCH_STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --retries 1 --no-deps --force-reinstall "$(TORCH)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	rm -f $(VENV)/.torch-*
	echo '$(TORCH_SPEC)' > $@

$(STAMP): pyproject.toml $(TORCH_STAMP)
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
