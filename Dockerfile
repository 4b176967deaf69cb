# One image for every diffsvc process: gateway, worker, report server, demo upstreams.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY diffsvc ./diffsvc
COPY workers ./workers
RUN pip install . && useradd --system --uid 10001 diffsvc
COPY docker/diffsvc.yaml /etc/diffsvc/config.yaml
USER diffsvc
EXPOSE 8080 8081
ENTRYPOINT ["diffsvc"]
CMD ["--help"]
