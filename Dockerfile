# syntax=docker/dockerfile:1
# One image for userd, orderd, slacksink and loadgen: docker-compose.yml and deploy/ choose the
# command. Health checks are defined there too, because each service is probed differently.

# Both stages must use the same base: the venv built in the first is copied into the second and
# keeps absolute paths to that interpreter.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# constraints.txt is the lock CI installs from, so the image runs the versions the tests ran.
COPY pyproject.toml constraints.txt README.md ./
COPY services/ services/
COPY loadgen/ loadgen/
# A regular (not editable) install: the runtime stage needs the venv only, not /src.
RUN /opt/venv/bin/pip install -c constraints.txt .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="grpc-observability-demo" \
      org.opencontainers.image.description="userd, orderd, slacksink and loadgen; the command picks one"
# pip compiled the bytecode at install time; the root filesystem may be read-only at run time.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it without resolving a name.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
CMD ["userd"]
