# syntax=docker/dockerfile:1
#
# pokemon-bot on an NVIDIA GPU:  docker compose up -d --build   (see README.md)
# Without one (or without the NVIDIA container toolkit), the CPU build:
#   docker compose -f docker-compose.yml -f docker-compose.cpu.yml up -d --build
#
# Stages: base (Python) → deps (venv: torch, then the dependencies of pyproject.toml at the
# versions of requirements.lock) → app (the project's code) → runtime (base + the two, a
# non-root user, no build tools). Layers are ordered so that a code change rebuilds only the
# small `app` layer: torch (GBs) and the other dependencies stay cached until TORCH_*,
# pyproject.toml or requirements.lock change.
#
# The base is the Python that CI tests (3.11), not a CUDA image: the torch wheel from the
# cu130 index brings its own CUDA and cuDNN libraries (nvidia-* wheels), and the NVIDIA
# container toolkit mounts the driver into any image that asks for a GPU. The host needs an
# NVIDIA driver for CUDA 13.0 (580 or newer) and the toolkit; the CPU build needs neither.

FROM python:3.11-slim-bookworm AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# Debian's archive drops superseded package versions, so pinning them would break rebuilds;
# the base image tag above is what pins the distribution.
# fonts-noto-cjk: /stats charts label Japanese display names and titles.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

FROM base AS deps
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# 1) torch, the CUDA build, explicitly: PyPI's default wheel may not match the driver's CUDA.
#    docker-compose.cpu.yml sets TORCH_INDEX_URL to PyTorch's CPU index instead. The version
#    is requirements.lock's (a test keeps them equal).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
# 2) the dependencies listed in pyproject.toml, without the code (so code changes keep this
#    layer), at the versions of requirements.lock, with torch held at the build above.
COPY pyproject.toml requirements.lock /tmp/
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
    && grep -v '^torch==' /tmp/requirements.lock > /tmp/constraints.txt \
    && echo "torch==${TORCH_VERSION}" >> /tmp/constraints.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt

FROM deps AS app
# 3) the code, installed on its own (no dependencies) into /opt/app with its console script.
COPY pyproject.toml README.md LICENSE /src/
COPY bot /src/bot
COPY generation /src/generation
COPY storage /src/storage
RUN pip install --no-cache-dir --no-deps --target /opt/app /src

FROM base AS runtime
# A fixed, numeric non-root uid: volume ownership is the same on every host, and runtimes
# that require a non-root user (Kubernetes runAsNonRoot) can verify it.
ARG APP_UID=10001
RUN useradd --create-home --uid "${APP_UID}" --shell /usr/sbin/nologin app \
    && mkdir -p /data/hf /data/db /data/compile \
    && chown -R app:app /data
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/app /opt/app
# The model cache, the database and torch.compile's artefacts live on volumes, never in the image. The heartbeat file is
# what `doctor --quick` (the healthcheck) reads; the worker touches it while healthy.
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/app \
    HF_HOME=/data/hf \
    POKEMON_DB=/data/db/pokemon-bot.sqlite3 \
    POKEMON_COMPILE_CACHE=/data/compile \
    POKEMON_HEARTBEAT_FILE=/tmp/pokemon-bot.heartbeat
VOLUME ["/data/hf", "/data/db", "/data/compile"]
WORKDIR /home/app
USER ${APP_UID}
# Healthy = the generation worker beat within 60 s. The start period covers the first start,
# which downloads the model (several GB) before the worker runs.
HEALTHCHECK --interval=30s --timeout=15s --start-period=15m --retries=3 \
    CMD ["pokemon-bot", "doctor", "--quick"]
# `docker compose run --rm bot doctor` (or invite, backup, generate) uses the same entry point.
ENTRYPOINT ["pokemon-bot"]
CMD ["run"]
