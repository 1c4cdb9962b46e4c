# kcat, Debian's packaged Kafka client, for the producer and consumer containers of
# integration/container_test.py (integration/container_compose.yml).
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat \
 && rm -rf /var/lib/apt/lists/*
