#!/usr/bin/env bash
# Start time (process start to the first answered ApiVersions) and idle RSS of Runnel
# with an empty data dir and with 1,000 and 10,000 partitions on disk, and of
# librdkafka's mock cluster with as many partitions, in the same run.
#
# usage: bench/run_startup_bench.sh [--runnel PATH] [--bench PATH] [--runs N]
# Data go to a temp dir under /var/tmp (a real disk), removed at exit. ~1-2 min.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runnel="$root/build/runnel"
bench="$root/build/bench/startup_bench"
runs=10
while (($#)); do
  case "$1" in
    --runnel) runnel="$2"; shift 2 ;;
    --bench) bench="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: $0 [--runnel PATH] [--bench PATH] [--runs N]" >&2; exit 2 ;;
  esac
done
[[ -x "$bench" ]] || { echo "run_startup_bench: no startup_bench at $bench (build it first)" >&2; exit 1; }
[[ -x "$runnel" ]] || { echo "run_startup_bench: no broker at $runnel (build it first)" >&2; exit 1; }
echo "startup_bench: $(nproc) cores, runs=$runs, $(date -u +%FT%TZ)"
timeout 900 "$bench" --runnel "$runnel" --runs "$runs"
