#!/usr/bin/env bash
# Runs the standard load set against a freshly started Runnel broker and
# against librdkafka's in-process mock cluster, then prints a table.
#
# usage: bench/run_bench.sh [--runnel PATH] [--load PATH] [--mock-only]
#   --runnel  broker binary (default: build/runnel)
#   --load    runnel_load binary (default: build/bench/runnel_load)
#   --mock-only  skip Runnel (for checking the tool itself)
#
# Runnel listens on an ephemeral 127.0.0.1 port with a temp data dir, both
# removed at exit. Each run is bounded by `timeout`; a full run takes ~2 min.
# The mock keeps at most 5 MB per partition, so the consume run spreads its
# 64 MB over 16 partitions to be readable from offset 0 on both targets.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runnel="$root/build/runnel"
[[ -x "$runnel" ]] || [[ ! -x "$root/build/broker/runnel" ]] || runnel="$root/build/broker/runnel"
load="$root/build/bench/runnel_load"
mock_only=0
while (($#)); do
  case "$1" in
    --runnel) runnel="$2"; shift 2 ;;
    --load) load="$2"; shift 2 ;;
    --mock-only) mock_only=1; shift ;;
    *) echo "usage: $0 [--runnel PATH] [--load PATH] [--mock-only]" >&2; exit 2 ;;
  esac
done
[[ -x "$load" ]] || { echo "run_bench: no runnel_load at $load (build it first)" >&2; exit 1; }

work="$(mktemp -d /tmp/runnel-bench.XXXXXX)"
broker_pid=""
cleanup() {
  if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Starts Runnel and sets $runnel_addr from its "Listening on" line.
start_runnel() {
  [[ -x "$runnel" ]] || { echo "run_bench: no broker at $runnel (or use --mock-only)" >&2; exit 1; }
  mkdir -p "$work/data"
  "$runnel" --override listeners=PLAINTEXT://127.0.0.1:0 \
    --override "log.dirs=$work/data" \
    --override auto.create.topics.enable=true >"$work/runnel.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 300); do
    runnel_addr="$(sed -n 's/.*Listening on PLAINTEXT:\/\/\([^ ]*\).*/\1/p' "$work/runnel.log" | head -1)"
    [[ -n "$runnel_addr" ]] && return 0
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run_bench: runnel did not start; its output:" >&2
  cat "$work/runnel.log" >&2
  exit 1
}

results="$work/results.txt"
: >"$results"

# run TARGET_LABEL TARGET_ARGS... -- LOAD_ARGS...
run() {
  local label="$1"; shift
  local target=()
  while [[ "$1" != "--" ]]; do target+=("$1"); shift; done
  shift
  local line
  if line="$(timeout 90 "$load" "${target[@]}" --target "$label" --timeout 60 "$@" 2>"$work/err.txt")"; then
    echo "$line" | tee -a "$results"
  else
    echo "$line" | tee -a "$results"
    echo "run_bench: FAILED: runnel_load ${target[*]} $*" >&2
    tail -5 "$work/err.txt" >&2
    echo "failed target=$label args=$*" >>"$results"
  fi
}

standard_set() {
  local label="$1"; shift
  local n=0
  local topic
  for size_msgs in "100 1500000" "1000 500000"; do
    read -r size msgs <<<"$size_msgs"
    for acks in 1 all; do
      n=$((n + 1))
      topic="bench-produce-$n-$$"
      run "$label" "$@" -- --mode produce --topic "$topic" --create-topic --partitions 3 \
        --messages "$msgs" --size "$size" --acks "$acks" --linger-ms 5
    done
  done
  run "$label" "$@" -- --mode consume --topic "bench-consume-$$" --create-topic --partitions 16 \
    --prefill --messages 64000 --size 1000 --acks 1
  run "$label" "$@" -- --mode latency --topic "bench-latency-$$" --create-topic --partitions 3 \
    --rate 10000 --duration 10 --size 100 --acks 1 --linger-ms 0
}

# The client allocates a buffer per fetch response; with glibc's default mmap
# threshold every one costs fresh page faults, which made the client, not the broker,
# the bottleneck. Applies to both targets alike (the mock runs in the client).
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=134217728:glibc.malloc.trim_threshold=536870912

if ((!mock_only)); then
  start_runnel
  echo "# runnel at $runnel_addr (data in $work/data)"
  standard_set runnel --bootstrap "$runnel_addr"
  # A large read the mock cannot hold (5 MB per partition): 1 GB from 3 partitions.
  run runnel --bootstrap "$runnel_addr" -- --mode consume --topic "bench-consume-1g-$$" \
    --create-topic --partitions 3 --prefill --messages 1000000 --size 1000 --acks 1
fi
echo "# librdkafka mock cluster"
standard_set mock --mock

# Table: one row per figure, one column per target.
echo
awk '
  function field(k,   i, kv) {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] }
    return ""
  }
  $1 == "produce" || $1 == "consume" || $1 == "latency" {
    t = field("target")
    if (!(t in seen)) { seen[t] = 1; targets[++nt] = t }
    if ($1 == "latency") {
      row = sprintf("latency %dB acks=%s @%s/s", field("size"), field("acks"), field("rate_msgs_s"))
      val = sprintf("p50=%s p99=%s p999=%s max=%s ms", field("p50_ms"), field("p99_ms"),
                    field("p999_ms"), field("max_ms"))
    } else {
      row = sprintf("%s %dB acks=%s", $1, field("size"), field("acks"))
      if ($1 == "consume") row = sprintf("consume %dB x%d", field("size"), field("msgs"))
      val = sprintf("%s msgs/s %s MB/s", field("rate_msgs_s"), field("rate_mb_s"))
    }
    if (!(row in rowseen)) { rowseen[row] = 1; rows[++nr] = row }
    cell[row, t] = val
  }
  $1 == "failed" { failed = 1 }
  END {
    printf "%-28s", "figure"
    for (j = 1; j <= nt; j++) printf " | %-46s", targets[j]
    printf "\n"
    for (i = 1; i <= nr; i++) {
      printf "%-28s", rows[i]
      for (j = 1; j <= nt; j++) printf " | %-46s", ((rows[i], targets[j]) in cell ? cell[rows[i], targets[j]] : "-")
      printf "\n"
    }
    if (failed) exit 1
  }
' "$results"
