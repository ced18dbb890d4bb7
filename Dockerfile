# molpre on a slim Python 3.11 image, CPU-only torch, run as a non-root user.
#   docker build -t molpre .
#   docker run --rm -v "$PWD:/work" molpre demo
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1

# libxrender/libxext are needed by RDKit's drawing code; libgomp by PySCF.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libxrender1 libxext6 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/molpre
# CPU torch first (an unpinned torch would pull a multi-GB CUDA build), then molpre.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY molpre ./molpre
COPY pipelines ./pipelines
RUN pip install .

RUN useradd --create-home --uid 1000 molpre
USER molpre
WORKDIR /work

ENTRYPOINT ["molpre"]
CMD ["--help"]
