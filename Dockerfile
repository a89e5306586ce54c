# The scoring service: serves the champion models of an MLflow store.
#   docker build -t cvm .                  (BASE_IMAGE: any image with Python >= 3.11 and pip)
#   docker run -p 8000:8000 -v $PWD/.cvm:/data cvm                 # the store in ./.cvm
#   docker run -p 8000:8000 -e MLFLOW_TRACKING_URI=http://mlflow:5000 cvm   # a tracking server
# Behind a TLS-intercepting proxy, put its CA bundle in the build context as ca-bundle.crt and
# build with --network host; it is used by pip only and removed from the final image.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ca-bundle.cr[t] ./
COPY models ./models
COPY training ./training
COPY service ./service
RUN if [ -f ca-bundle.crt ]; then export PIP_CERT=/src/ca-bundle.crt; fi \
    && python3 -m venv /opt/cvm \
    && /opt/cvm/bin/pip install --no-compile '.[postgres]' \
    && find /opt/cvm -name '__pycache__' -prune -exec rm -rf {} + \
    && find /opt/cvm -name 'tests' -path '*site-packages/*/tests' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
ENV PATH=/opt/cvm/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CVM_HOME=/data \
    CVM_HOST=0.0.0.0 \
    CVM_PORT=8000 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1
COPY --from=build /opt/cvm /opt/cvm
RUN (getent group cvm || groupadd --system --gid 10001 cvm) \
    && (id cvm || useradd --system --uid 10001 --gid cvm --home-dir /data --no-create-home cvm) \
    && mkdir -p /data /mlflow && chown cvm:cvm /data /mlflow
USER 10001:10001
WORKDIR /data
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request as u; sys.exit(0 if u.urlopen(f\"http://127.0.0.1:{os.environ.get('CVM_PORT', '8000')}/health/ready\", timeout=2).status == 200 else 1)"]
CMD ["sh", "-c", "exec cvm serve --host \"$CVM_HOST\" --port \"$CVM_PORT\""]
