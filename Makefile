# Two entry points: `make demo` (install, then run the main job on the embedded default) and
# `make test` (install, then run the whole test suite). Both create ./.venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first, on its own, so pip never resolves the project's torch range to a CUDA build.
# On a GPU machine, set TORCH_SPEC to the CUDA build you want, e.g. TORCH_SPEC="torch==2.13.0".
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo features-demo test test-fast clean

$(BIN)/.kwslab-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.kwslab-installed

demo: install
	$(BIN)/python -m kwslab.fit --config configs/cnn.yaml

features-demo: install
	$(BIN)/python -m kwslab.demo

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache
