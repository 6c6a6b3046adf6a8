# airlock: one binary in a small runtime image.
#
#   docker build -t airlock .
#   docker run --rm -p 8480:8480 -p 15432:15432 \
#     -e AIRLOCK_MASTER_KEY -e AIRLOCK_ADMIN_TOKEN \
#     -v $PWD/airlock.yaml:/etc/airlock/airlock.yaml:ro airlock
#
# Stage 1 builds the release binary (libclang for the SQL parser's
# bindings); stage 2 is distroless (glibc and libgcc only, no shell, no
# package manager) running as the unprivileged `nonroot` user (65532).

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p airlock \
 && install -D -m 0755 target/release/airlock /out/airlock \
 && install -d -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/airlock /usr/local/bin/airlock
# The data dir (journal, generated TLS certificate; with `store: sqlite`
# the store itself) belongs to the runtime user; mount a volume here.
COPY --from=build --chown=65532:65532 /out/data /var/lib/airlock
USER 65532:65532
WORKDIR /var/lib/airlock
# Admin API (/healthz, /readyz, /metrics), PostgreSQL, MySQL, HTTP.
EXPOSE 8480 15432 13306 18080
# `airlock status` exits non-zero unless /readyz says ready (store
# answers, recording admits commands).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/airlock", "status", "--url", "http://127.0.0.1:8480"]
ENTRYPOINT ["/usr/local/bin/airlock"]
CMD ["serve", "--config", "/etc/airlock/airlock.yaml", "--data-dir", "/var/lib/airlock"]
