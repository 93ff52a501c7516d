# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are built in a throwaway stage; the runtime image
# holds only the virtual environment, the app, its migrations and the model artifacts,
# and runs as an unprivileged user (uid/gid 10001, fixed so that Kubernetes'
# runAsUser/runAsGroup and compose's `user:` can name it). By default migrations run
# before uvicorn starts; deploy/compose.yaml and deploy/kubernetes/ run the migration as a
# step of its own (`triage db upgrade`) and start the API with `triage serve` alone.
# NOTE: no Docker engine was available where this was written; it has not been built.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
RUN pip install -c constraints.txt .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRIAGE_ENVIRONMENT=production \
    TRIAGE_HOME=/srv
RUN groupadd --system --gid 10001 triage \
    && useradd --system --uid 10001 --gid triage --home-dir /srv --no-create-home \
       --shell /usr/sbin/nologin triage
WORKDIR /srv
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
COPY models ./models
COPY openapi ./openapi
# Nothing under /srv is writable: the service writes nothing to disk with PostgreSQL, so the
# root filesystem can be mounted read-only (give it a writable /tmp).
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2).status == 200 else 1)"]
# Exec form through `sh -c` so that uvicorn (exec'd) receives SIGTERM directly and
# drains in-flight requests (graceful shutdown, at most 20 s).
CMD ["sh", "-c", "triage db upgrade && exec triage serve --host 0.0.0.0 --port 8000"]
