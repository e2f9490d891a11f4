# Two commands on a fresh machine:  make book   |   make test   (and, optionally, make lab)
# All create .venv (pinned torch CPU wheel + this package) when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bumpdiff-installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/data/.numba_cache
export PYTHONHASHSEED := 0

# `make lab`: JupyterLab on notebooks/ with the bumpdiff kernel. It listens on 127.0.0.1 only;
# on a remote machine use an SSH tunnel (ssh -L 8888:127.0.0.1:8888 HOST), or LAB_IP=0.0.0.0
# (anyone who can reach the port and has the printed token can run code as you).
LAB_PORT ?= 8888
LAB_IP   ?= 127.0.0.1
LAB_ARGS ?=

.PHONY: book test env clean-book sweep benchmarks lab

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name bumpdiff --display-name "bumpdiff" >/dev/null
	touch $(STAMP)

# train + evaluate the default (quick) configuration set, execute the notebooks, build the book
book: $(STAMP)
	$(BIN)/bumpdiff sweep book-quick --out book
	$(BIN)/jupyter-book build book -W -n --keep-going
	@echo "book: $(CURDIR)/book/_build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# the notebooks run with notebooks/ as working directory: point them at ./data explicitly
lab: export BUMPDIFF_DATA ?= $(CURDIR)/data
lab: $(STAMP)
	@echo "lab: open the http://$(LAB_IP):$(LAB_PORT)/lab?token=... URL printed below; Ctrl-C twice stops it"
	$(BIN)/jupyter-lab --no-browser --ServerApp.root_dir=$(CURDIR)/notebooks \
	  --ServerApp.ip=$(LAB_IP) --ServerApp.port=$(LAB_PORT) --ServerApp.port_retries=0 \
	  --MappingKernelManager.default_kernel_name=bumpdiff $(LAB_ARGS) \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

clean-book:
	rm -rf book/_build book/generated
