# The city center's sync server, built from this repository.
#   docker build -t sync-server .
#   docker run -d -p 8443:8443 -v city:/var/lib/sync-server \
#     -v /etc/sync-server:/etc/sync-server:ro sync-server
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sync-server -p field-cli

FROM debian:bookworm-slim
# pg_dump/pg_restore for backups of a PostgreSQL city; CA roots for S3.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/sync-server --shell /usr/sbin/nologin sync-server \
 && install -d -o sync-server -g sync-server -m 0700 /var/lib/sync-server /var/backups/sync-server
COPY --from=build /src/target/release/sync-server /src/target/release/field /usr/local/bin/
USER sync-server
ENV SYNC_SERVER_DATA=/var/lib/sync-server \
    SYNC_SERVER_LISTEN=0.0.0.0:8443 \
    SYNC_SERVER_LOG_FORMAT=json
VOLUME ["/var/lib/sync-server", "/var/backups/sync-server"]
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=5s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8443"]
ENTRYPOINT ["/usr/local/bin/sync-server"]
