# monitor, the public-opinion (舆情) monitoring daemon, as a container.
#
#   docker build -t monitor .
#   docker run -d --name monitor --restart unless-stopped \
#       -v "$PWD/config:/config:ro" -v monitor-data:/data -e PGPASSWORD monitor
#
# /config holds config.yaml (read-only is fine; edits are picked up live). Point the database at the data volume:
#     database:
#       url: sqlite:////data/monitor.db          # four slashes: an absolute path
# or at PostgreSQL (url: postgresql://monitor:${PGPASSWORD}@db:5432/monitor, with -e PGPASSWORD).
# Other commands run the same way:  docker exec monitor monitor sources   /   docker run --rm ... monitor check

# Stage 1: build monitor's wheel with its compiled cores (monitor/analysis/_dedup_c.c, _cluster_c.c: the
# near-duplicate index and topic clusterer, about 60 % of the replay's time in pure Python). Without a compiler the
# install would still work, on the slower pure-Python path: the check below refuses such a wheel here. The compiler
# stays in this stage.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY . /tmp/src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels /tmp/src \
    && python -c "import glob, sys, zipfile; names = zipfile.ZipFile(glob.glob('/wheels/monitor-*.whl')[0]).namelist(); \
sys.exit(0 if sum('_c.cpython' in n for n in names) == 2 else 'the compiled cores are missing from the wheel')"

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project and its runtime dependencies only (no test extras). Every dependency ships manylinux wheels (lxml,
# psycopg[binary], pydantic-core...); monitor's own wheel comes compiled from the build stage.
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels

# A fixed uid, so a host folder mounted at /data can be chowned to it (chown 10001 ./data).
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin monitor \
    && mkdir -p /config /data \
    && chown monitor:monitor /config /data

USER monitor
WORKDIR /data
VOLUME ["/config", "/data"]
ENV MONITOR_CONFIG=/config/config.yaml

# Healthy = some source was polled (successfully or not: both are recorded) within twice the longest polling
# interval plus 5 minutes. A process check would add nothing: monitor is PID 1, so if it dies the container stops.
# This catches what a process check cannot: a daemon that is alive but no longer polls (a stuck loop or scheduler),
# or every source failing and backing off for an hour (the network or a proxy is down). It asks the database through
# monitor's own config and engine, so it works with SQLite and PostgreSQL alike, and exits 1 when the database cannot
# be read. With no enabled source there is nothing to check. start-period covers the first polls after a start.
HEALTHCHECK --interval=2m --timeout=30s --start-period=2m --retries=3 \
    CMD ["python", "-c", "import os, sys; from datetime import UTC, datetime, timedelta; \
from sqlalchemy import func, select; from monitor.config import load_config; from monitor.db import make_engine; \
from monitor.db.schema import source_runs; c = load_config(os.environ['MONITOR_CONFIG']); \
due = [s.interval for s in c.sources if s.enabled]; engine = make_engine(c.database_url()); \
conn = engine.connect(); last = conn.execute(select(func.max(source_runs.c.finished_at))).scalar(); conn.close(); \
sys.exit(0 if not due or (last is not None and datetime.now(UTC) - last < timedelta(seconds=2 * max(due) + 300)) \
else 1)"]

# Exec form: monitor is PID 1 and gets docker stop's SIGTERM itself; it finishes the write in progress and exits
# well within docker's 10 s grace period.
ENTRYPOINT ["monitor"]
CMD ["run"]
