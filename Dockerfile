# The gitops daemon's image: `docker build -t gitops:0.1.0 .` (the tag the manifests in deploy/ use).
# Two stages: the first builds the wheels (gitops and its dependencies); the final one is a slim
# Python with git (the daemon fetches repositories with it), those wheels installed, no compiler,
# no build tools, and a non-root user.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops ./gitops
COPY deploy ./deploy
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --home-dir /home/gitops --create-home --shell /usr/sbin/nologin gitops \
    && install -d -o 10001 -g 10001 /var/cache/gitops
COPY --from=build /wheels /tmp/wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /tmp/wheels gitops \
    && rm -rf /tmp/wheels
ENV HOME=/home/gitops \
    GITOPS_CACHE_DIR=/var/cache/gitops \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/gitops
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["gitops"]
CMD ["daemon", "--help"]
