# flowsnap container image: a multi-stage build, a small runtime image, a non-root user, the
# database on a volume, a HEALTHCHECK on /healthz and SIGTERM honoured.
#
#   docker build -t flowsnap .
#   docker run -d --name flowsnap -p 8080:8080 -v flowsnap-data:/var/lib/flowsnap flowsnap
#   docker logs flowsnap          # the first tenant-admin's API key, printed once
#   docker stop flowsnap          # SIGTERM: finishes the requests in flight, exits 0
#
# Settings are FLOWSNAP_* environment variables (config.example.toml lists them all), e.g.
# `docker run -e FLOWSNAP_WORKERS=32 ...`; command-line commands run in the same image:
#   docker exec flowsnap flowsnap check
#   docker exec flowsnap flowsnap backup --out /var/lib/flowsnap/backup-$(date +%F).db

# --- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them: a stub crate with the real
# manifest and lock file.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src target/release/.fingerprint/flowsnap-*
COPY schema.sql ./
COPY docs/openapi.json docs/openapi.json
COPY console console
COPY fixtures/demo.json fixtures/demo.json
COPY src src
RUN cargo build --release --locked \
    && strip target/release/flowsnap \
    && target/release/flowsnap --version

# --- runtime ----------------------------------------------------------------------------------
# debian:bookworm-slim: the same glibc as the build stage; SQLite is compiled into the binary, so
# nothing else is needed (no curl: the HEALTHCHECK is the binary's own `flowsnap healthcheck`).
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 flowsnap \
    && useradd --system --uid 10001 --gid flowsnap --home-dir /var/lib/flowsnap \
       --shell /usr/sbin/nologin flowsnap \
    && mkdir -p /var/lib/flowsnap \
    && chown flowsnap:flowsnap /var/lib/flowsnap \
    && chmod 0750 /var/lib/flowsnap
COPY --from=build /src/target/release/flowsnap /usr/local/bin/flowsnap
COPY config.example.toml /usr/share/doc/flowsnap/config.example.toml

USER flowsnap:flowsnap
WORKDIR /var/lib/flowsnap
# The database, its -wal and -shm files, and backups: keep them on a volume.
VOLUME ["/var/lib/flowsnap"]
ENV FLOWSNAP_DB=/var/lib/flowsnap/flowsnap.db \
    FLOWSNAP_LISTEN=0.0.0.0:8080
EXPOSE 8080
# `flowsnap healthcheck` probes the `listen` setting (0.0.0.0 on loopback): 0 when GET /healthz
# answers 200 {"status": "ok"}, else 1; every step bounded by --timeout.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/flowsnap", "healthcheck", "--timeout", "3"]
# The binary is PID 1 (exec form, no shell): it handles SIGTERM itself (stops accepting,
# finishes the requests in flight, at most 10 s, exits 0). docker stop waits 10 s by default.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/flowsnap"]
CMD ["serve"]
