# syncd as a container: `docker build -t syncd .`
#
#   docker run -d --name syncd \
#     -v syncd-journal:/var/lib/syncd \
#     -v "$PWD/config/syncd.yaml:/etc/syncd/syncd.yaml:ro" -v "$PWD/mappings:/etc/syncd/mappings:ro" \
#     -e SF_PASSWORD --stop-timeout 45 -p 127.0.0.1:9464:9464 syncd
#
# In the mounted syncd.yaml: `journal: /var/lib/syncd/syncd.db` (the volume) and
# `metrics: {listen: "0.0.0.0:9464"}` so Prometheus can reach /metrics from outside the container.
# Secrets come in at run time (environment, or files mounted under /run/secrets); none is baked in.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncd ./syncd
COPY connectors ./connectors
COPY mappings ./mappings
RUN python -m venv /opt/syncd \
    && /opt/syncd/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/syncd --shell /usr/sbin/nologin syncd \
    && install -d -o syncd -g syncd -m 0700 /var/lib/syncd \
    && install -d -m 0755 /etc/syncd
COPY --from=build /opt/syncd /opt/syncd
ENV PATH=/opt/syncd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SYNCD_CONFIG=/etc/syncd/syncd.yaml
USER syncd
WORKDIR /var/lib/syncd
VOLUME ["/var/lib/syncd"]
EXPOSE 9464
# /healthz answers 200 while the scheduler loop goes round; urlopen raises (exit 1) on anything else.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
# SIGTERM lets running passes finish their batch (service.grace_seconds, default 30 s): stop with -t 45.
STOPSIGNAL SIGTERM
ENTRYPOINT ["syncd", "--log-format", "json"]
CMD ["run"]
