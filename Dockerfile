# syntax=docker/dockerfile:1
# complaintflow's image. One image plays every part of the scaled mode (docker-compose.yml): the
# web processes (gunicorn, the default command), `complaintflow worker`, `complaintflow
# scheduler`, and the one-shot `complaintflow init`. It has no HEALTHCHECK of its own for that
# reason: each part's check is in docker-compose.yml.

# bpmn-js for the in-browser diagram editor, at the version package-lock.json pins. Only its
# ready-built dist/ folder goes into the image.
FROM node:22-bookworm-slim AS modeler
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The package and its dependencies, at the versions constraints.txt pins and without the test
# extras. The source is mounted for the build only, so the image holds the installed package
# and not a second copy of it.
RUN --mount=type=bind,target=/src,rw \
    --mount=type=cache,target=/root/.cache/pip \
    pip install -c /src/constraints.txt /src

# What the installed package reads beside itself: the bundled diagrams with their forms and
# deadline defaults (COMPLAINTFLOW_BPMN_DIR), and bpmn-js, which complaintflow looks for under
# node_modules/ next to its package (config.REPO_ROOT; see complaintflow/owner/modeler.py).
# The build fails if the editor's files are not where the app looks for them.
WORKDIR /app
COPY bpmn ./bpmn
COPY --from=modeler /build/node_modules/bpmn-js/dist ./node_modules/bpmn-js/dist
RUN python -c "from complaintflow.config import REPO_ROOT; \
(REPO_ROOT / 'node_modules').symlink_to('/app/node_modules')" \
 && python -c "from complaintflow.owner.modeler import ASSETS, SCRIPT; \
assert (ASSETS / SCRIPT).is_file(), ASSETS"

# Everything runs as an unprivileged user. /data (COMPLAINTFLOW_HOME: attachments) is the only
# place it writes; its home directory stays out of /data, which web replicas share (gunicorn
# 25.1+ keeps its control socket under $HOME).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin complaintflow \
 && mkdir /data && chown complaintflow:complaintflow /data
ENV COMPLAINTFLOW_HOME=/data \
    COMPLAINTFLOW_BPMN_DIR=/app/bpmn \
    WEB_CONCURRENCY=2
USER complaintflow
EXPOSE 8000

# gunicorn's settings are the package's (complaintflow/gunicorn_conf.py: threads, access log,
# heartbeat on tmpfs), the number of processes WEB_CONCURRENCY. GUNICORN_CMD_ARGS adds options.
CMD ["gunicorn", "--config", "python:complaintflow.gunicorn_conf", "--bind", "0.0.0.0:8000", \
     "complaintflow.wsgi:app"]
