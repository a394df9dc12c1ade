# syntax=docker/dockerfile:1
# regassist production image: release build with the locked dependency set, small non-root runtime.
#   docker build -t regassist:latest .
# The binary is the entrypoint: `docker run regassist:latest migrate`, `... check database`, etc.

# ---- build ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# The cache mounts keep the cargo registry and the target directory between builds (BuildKit), so
# a source change recompiles only this crate. The binary is copied out of the cached target dir
# because cache mounts are not part of the image.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked \
    && install -m 0755 target/release/regassist /usr/local/bin/regassist

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to api.fda.gov; curl: the health check below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 regassist \
    && useradd --system --uid 10001 --gid regassist --home-dir /app --shell /usr/sbin/nologin regassist \
    && mkdir -p /app/data /var/lib/regassist \
    && chown -R regassist:regassist /app /var/lib/regassist

COPY --from=builder /usr/local/bin/regassist /usr/local/bin/regassist
# Public-domain FDA 510(k) files, imported on a first start whose mirror is empty.
COPY --from=builder /build/data-fda/510k /app/data-fda/510k

WORKDIR /app
USER regassist:regassist

# The embedded (SQLite) default keeps its database under /app/data; production sets DATABASE_URL.
# The signed audit checkpoint lives outside the database, in a volume (docker-compose.prod.yml).
ENV PORT=8000 \
    REGASSIST_AUDIT_CHECKPOINT_FILE=/var/lib/regassist/audit-checkpoint.json \
    LOG_FORMAT=json \
    RUST_LOG=info

EXPOSE 8000

# Liveness only (no I/O in the service): a replica whose database is down stays up and reports it
# on /health/ready (the compose health check, which gates nginx's start).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS --max-time 2 "http://127.0.0.1:${PORT}/health/live" >/dev/null || exit 1

# The service drains on SIGTERM (/health/ready answers 503, in-flight requests finish), then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["regassist"]
CMD ["serve"]
