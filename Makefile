# The two commands of the README: `make book` builds the HTML book, `make test` runs every test.
# Both create (or reuse) the virtual environment in $(VENV) and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CI has 2 cores; the committed outputs are reproduced with 2 threads here and with 1 in a test.
THREADS ?= 2
# matplotlib's font cache belongs to this environment: a cache shared through ~/.cache with another
# environment (or one deleted since) makes matplotlib warn on stderr, and the notebooks' outputs
# would no longer match.
export MPLCONFIGDIR := $(abspath $(VENV))/matplotlib

.PHONY: all book test lab lint clean venv exercises

all: book

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# JupyterLab's settings overrides for this environment (Binder's postBuild installs the same
# file): no pop-up asking about Jupyter news, no update checks (they would ask the internet).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

$(LAB_OVERRIDES): binder/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp binder/overrides.json $@

venv: $(STAMP) $(LAB_OVERRIDES)

book: venv
	rm -rf _build
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "The book is at _build/html/index.html (open it in a browser)."

# Two pytest-xdist workers: each takes whole files (a notebook's cells run in order in one
# kernel; a module's fixtures are set up once), so one works while the other waits on a
# subprocess, a server or a timeout. WORKERS=0 runs everything in one process.
WORKERS ?= 2

test: venv
	OMP_NUM_THREADS=$(THREADS) MKL_NUM_THREADS=$(THREADS) $(PY) -m pytest -n $(WORKERS) --dist loadfile

lint: venv
	$(VENV)/bin/ruff check .

# Regenerate every exercise set from its source: student and solution notebooks, tests bundle;
# then execute the solutions (they are committed with outputs, like the chapters).
exercises: venv
	$(VENV)/bin/attnlab exercises build exercises/source/*.ipynb
	for nb in solutions/*.ipynb; do \
	  OMP_NUM_THREADS=$(THREADS) $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; \
	done

# JupyterLab serves the whole repository (a chapter's links to its exercises work) and opens
# on chapters/; open the address it prints (http://localhost:PORT/lab/tree/chapters?token=...).
lab: venv
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/chapters

clean:
	rm -rf _build .pytest_cache
