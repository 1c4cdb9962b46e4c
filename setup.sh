#!/usr/bin/env bash
# Installs everything Runnel's build, tests and benchmarks need on Debian 12 (run as root).
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config python3 clang libclang-rt-14-dev
  # broker libraries
  libasio-dev libabsl-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev libisal-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev librdkafka-dev kcat
  python3-kafka python3-confluent-kafka jq strace
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Containers: podman, podman-compose and a local debian:bookworm-slim base image, for
# docker/Dockerfile and integration/container_test.py. RUNNEL_SETUP_PODMAN=0 skips this.
if [[ "${RUNNEL_SETUP_PODMAN:-1}" != 0 ]]; then
  "$(dirname "${BASH_SOURCE[0]}")/docker/podman_setup.sh"
fi
