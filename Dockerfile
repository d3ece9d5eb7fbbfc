FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md worker.py ./
COPY src ./src
COPY templates ./templates
RUN pip install --no-cache-dir -e .
ENV DIGEST_TEMPLATES_DIR=/app/templates
USER nobody
CMD ["celery", "-A", "worker", "worker", "--loglevel=INFO"]
