# Two stages: the first builds the wheel (the release a user installs, templates inside the
# package); the second installs the pinned, hashed runtime dependencies, then that wheel,
# with no source tree and no editable install.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir "build>=1.0"
COPY pyproject.toml README.md worker.py ./
COPY src ./src
COPY templates ./templates
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
WORKDIR /app
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements-runtime.lock
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/*.whl && rm -r /tmp/dist
# Celery's -A worker finds the app here.
COPY worker.py ./
# Sends not yet recorded in the database; a volume, so they survive the container (see
# DIGEST_JOURNAL_DIR in the README). Made here so that a new named volume is nobody's too.
ENV DIGEST_JOURNAL_DIR=/var/lib/digest/journal
RUN mkdir -p /var/lib/digest/journal && chown -R nobody /var/lib/digest
USER nobody
CMD ["celery", "-A", "worker", "worker", "--loglevel=INFO"]
