# The one image of Vigil: the backend (`vigil serve`) and the sidecar (`python -m sidecar run`)
# run from it as two containers of one pod, with different commands (helm/vigil).
#
#   docker build -t vigil:0.1.0 .
#   docker run --rm -p 8000:8000 -e VIGIL_MODE=dev vigil:0.1.0 up --host 0.0.0.0

# Build: install the distribution and its dependencies into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY sidecar ./sidecar
COPY dashboards ./dashboards
COPY alerts ./alerts
RUN python -m venv /opt/vigil \
 && /opt/vigil/bin/pip install /src

# Run: the virtual environment and a non-root user, nothing else.
FROM python:3.11-slim
# uid/gid 10001: helm/vigil/values.yaml runs both containers as this user (podSecurityContext);
# the sidecar reads the backend's /proc only because both share it.
RUN groupadd --gid 10001 vigil \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin vigil \
 && install -d -o 10001 -g 10001 /var/lib/vigil /var/lib/vigil-sidecar
COPY --from=build /opt/vigil /opt/vigil
ENV PATH=/opt/vigil/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    VIGIL_DATABASE_URL=sqlite+aiosqlite:////var/lib/vigil/vigil.db
WORKDIR /var/lib/vigil
USER 10001:10001
EXPOSE 8000 9100
ENTRYPOINT ["vigil"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
