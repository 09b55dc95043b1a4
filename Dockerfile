# edgeaudit as a container image: the wheel with the lab extra, Debian's Chromium for the lab
# controls (EA-PERF-*), a non-root user. Build from the repository's root:
#   docker build -t edgeaudit:$(git rev-parse --short HEAD) .
# and refer to the pushed image by its digest (examples/kubernetes, examples/aws-batch).
#
# The base is pinned by digest so that a rebuild starts from the same bytes; to move it on
# purpose: docker buildx imagetools inspect python:3.12-slim-bookworm, then change PYTHON_IMAGE.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
RUN python -m pip install build==1.3.0 && python -m build --wheel --outdir /wheels

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    EDGEAUDIT_CHROMIUM=/usr/bin/chromium
# Chromium from Debian (Playwright downloads no browser); ca-certificates for the site's TLS; the
# AWS CLI for the S3 copies of examples/aws-batch (the config in, the reports out).
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium ca-certificates awscli \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN wheel=$(ls /wheels/edgeaudit-*.whl) && python -m pip install "${wheel}[lab]" && rm -rf /wheels
# A user of its own: no root at run time. /work holds edgeaudit.toml (mounted) and reports/.
RUN useradd --create-home --uid 10001 --user-group edgeaudit && mkdir /work && chown edgeaudit:edgeaudit /work
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["edgeaudit", "run"]
CMD ["-m", "daily"]
