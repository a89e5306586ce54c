# Serves the champion models of an MLflow store (mount it at /data, or set MLFLOW_TRACKING_URI).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CVM_HOME=/data \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY training ./training
COPY service ./service
RUN python -m pip install --no-compile . \
    && useradd --create-home --uid 10001 cvm \
    && mkdir -p /data && chown cvm:cvm /data

USER cvm
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status == 200 else 1)"
CMD ["cvm", "serve", "--host", "0.0.0.0", "--port", "8000"]
