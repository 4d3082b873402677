# syntax=docker/dockerfile:1
#
# One image with both entry points:
#   operator: docker run IMAGE operator run
#   gateway:  docker run IMAGE gateway --config /etc/sluicegate/config --host 0.0.0.0 --port 8080
#
# The builder stage turns the project and every dependency into wheels. The runtime stage
# installs only those wheels, offline, so no compiler or build tool reaches the final image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Must match the version in pyproject.toml; a test checks it.
ARG SLUICEGATE_VERSION=0.1.0

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sluicegate ./sluicegate
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ARG SLUICEGATE_VERSION
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric user, so that Kubernetes can check runAsNonRoot without a passwd lookup.
# The Helm chart runs the pods with the same UID and GID.
RUN groupadd --system --gid 10001 sluicegate \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sluicegate \
        --create-home --shell /usr/sbin/nologin sluicegate

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels "sluicegate==${SLUICEGATE_VERSION}" \
    && python -m pip uninstall --yes pip setuptools wheel

LABEL org.opencontainers.image.title="sluicegate" \
      org.opencontainers.image.description="Kubernetes operator and OpenAI-compatible LLM gateway with per-namespace cost ceilings" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${SLUICEGATE_VERSION}"

# Standalone runs keep their SQLite ledger here; mount a volume to keep it.
WORKDIR /var/lib/sluicegate
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["sluicegate"]
CMD ["--help"]
