# The watcher daemon, built from this repository.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY watcher ./watcher
RUN pip install --no-cache-dir .
COPY rules ./rules
ENTRYPOINT ["watcher"]
CMD ["--help"]
