# tryon-core: the gateway and its provider plugins, as one image for every role:
#   docker run IMAGE serve [--workers N] [--no-workers]  # the HTTP API (N processes; and, without
#                                                        # --no-workers, async-job workers)
#   docker run IMAGE worker                  # async-job workers only, no HTTP
# Configuration: mount a TOML file at /etc/tryon/tryon.toml (or set TRYON_CONFIG); secrets as
# ${VAR} references in it, given as environment variables. See docs/deploy.md.

# -- build: resolve and install from uv.lock into /app/.venv ---------------------------------
FROM python:3.12-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_FROZEN=1
WORKDIR /app
# dependencies first (a layer that changes only with the lock file)
COPY pyproject.toml uv.lock README.md ./
COPY plugins/tryon-local/pyproject.toml plugins/tryon-local/
COPY plugins/tryon-kling/pyproject.toml plugins/tryon-kling/
COPY plugins/tryon-gemini/pyproject.toml plugins/tryon-gemini/
COPY plugins/tryon-openai/pyproject.toml plugins/tryon-openai/
COPY plugins/tryon-fal/pyproject.toml plugins/tryon-fal/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-dev --group providers --extra otel --extra speed --no-install-workspace --no-editable
# then the project and its plugins themselves
COPY src src
COPY plugins plugins
COPY samples samples
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-dev --group providers --extra otel --extra speed --no-editable

# -- run: the virtual environment only, as an unprivileged user -----------------------------
FROM python:3.12-slim-bookworm
RUN groupadd --system --gid 10001 tryon \
 && useradd --system --uid 10001 --gid tryon --home-dir /var/lib/tryon --create-home tryon
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    TRYON_CONFIG=/etc/tryon/tryon.toml
WORKDIR /var/lib/tryon
USER tryon
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["tryon"]
CMD ["serve"]
