# syntax=docker/dockerfile:1
#
# pokemon-bot on an NVIDIA GPU:  docker compose up -d --build   (see README.md)
#
# Stages: base (CUDA + Python) → deps (venv: torch, then the dependencies of pyproject.toml)
# → app (the project's code) → runtime (base + the two, a non-root user, no build tools).
# Layers are ordered so that a code change rebuilds only the small `app` layer: torch (GBs)
# and the other dependencies stay cached until TORCH_* or pyproject.toml change.
#
# The base is CUDA's smallest image: the torch wheel from the cu130 index brings its own CUDA
# and cuDNN libraries (nvidia-* wheels), so a runtime/cudnn base would only hold second copies.
# The host needs an NVIDIA driver for CUDA 13.0 (580 or newer) and the NVIDIA container toolkit.

FROM nvidia/cuda:13.0.0-base-ubuntu24.04 AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
# Ubuntu's archive drops superseded package versions, so pinning them would break rebuilds;
# the base image tag above is what pins the distribution.
# fonts-noto-cjk: /stats charts label Japanese display names and titles.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

FROM base AS deps
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# 1) torch, the CUDA build, explicitly: PyPI's default wheel may not match the base's CUDA.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
# 2) the dependencies listed in pyproject.toml, without the code (so code changes keep this
#    layer), with torch held at the build installed above.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
    && echo "torch==${TORCH_VERSION}" > /tmp/constraints.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt

FROM deps AS app
# 3) the code, installed on its own (no dependencies) into /opt/app with its console script.
COPY pyproject.toml README.md /src/
COPY bot /src/bot
COPY generation /src/generation
COPY storage /src/storage
RUN pip install --no-cache-dir --no-deps --target /opt/app /src

FROM base AS runtime
# A fixed, numeric non-root uid: volume ownership is the same on every host, and runtimes
# that require a non-root user (Kubernetes runAsNonRoot) can verify it.
ARG APP_UID=10001
RUN useradd --create-home --uid "${APP_UID}" --shell /usr/sbin/nologin app \
    && mkdir -p /data/hf /data/db \
    && chown -R app:app /data
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/app /opt/app
# The model cache and the database live on volumes, never in the image. The heartbeat file is
# what `doctor --quick` (the healthcheck) reads; the worker touches it while healthy.
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/app \
    HF_HOME=/data/hf \
    POKEMON_DB=/data/db/pokemon-bot.sqlite3 \
    POKEMON_HEARTBEAT_FILE=/tmp/pokemon-bot.heartbeat
VOLUME ["/data/hf", "/data/db"]
WORKDIR /home/app
USER ${APP_UID}
# Healthy = the generation worker beat within 60 s. The start period covers the first start,
# which downloads the model (several GB) before the worker runs.
HEALTHCHECK --interval=30s --timeout=15s --start-period=15m --retries=3 \
    CMD ["pokemon-bot", "doctor", "--quick"]
# `docker compose run --rm bot doctor` (or invite, backup, generate) uses the same entry point.
ENTRYPOINT ["pokemon-bot"]
CMD ["run"]
