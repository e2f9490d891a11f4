# Two commands on a fresh machine:  make book   |   make test
# Both create .venv (pinned torch CPU wheel + this package) when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bumpdiff-installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/data/.numba_cache
export PYTHONHASHSEED := 0

.PHONY: book test env clean-book sweep benchmarks

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

clean-book:
	rm -rf book/_build book/generated
