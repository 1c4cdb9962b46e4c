#!/usr/bin/env bash
# Runs storage_bench, then has dd write the same number of bytes in 16 KB blocks to the
# same directory (into the page cache, and with oflag=dsync: a sync per block), and prints
# a table: Runnel's append rate beside dd's and their ratio for both modes, then the read,
# lookup and recovery figures.
#
# usage: bench/run_storage_bench.sh [--bench PATH] [--dir DIR] [-- STORAGE_BENCH_FLAGS...]
#   --bench  storage_bench binary (default: build/bench/storage_bench)
#   --dir    where the data go (default: the bench binary's directory, i.e. the build
#            directory's disk; not /tmp, which may be a tmpfs)
#   flags after -- go to storage_bench, e.g. --append_mb=256 --fsync_mb=8 --records=200000
# MB is 10^6 bytes throughout, as dd prints it. Needs jq. Everything written is removed at
# exit; the largest amount on disk at once is about 2 GB with the defaults.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bench="$root/build/bench/storage_bench"
dir=""
extra=()
while (($#)); do
  case "$1" in
    --bench) bench="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 [--bench PATH] [--dir DIR] [-- STORAGE_BENCH_FLAGS...]" >&2; exit 2 ;;
  esac
done
[[ -x "$bench" ]] || { echo "run_storage_bench: no storage_bench at $bench (build it)" >&2; exit 1; }
command -v jq >/dev/null || { echo "run_storage_bench: needs jq" >&2; exit 1; }
[[ -n "$dir" ]] || dir="$(dirname "$bench")"
mkdir -p "$dir"
work="$(mktemp -d "$dir/runnel-storage-bench-sh.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "# data in $work ($(df -h --output=source,fstype,size,avail "$work" | tail -1 | tr -s ' '))"

json="$work/bench.json"
RUNNEL_BENCH_DIR="$work" "$bench" --benchmark_out="$json" --benchmark_out_format=json \
  ${extra[@]+"${extra[@]}"}

# field RUN_NAME_PREFIX AGGREGATE KEY: a number from the JSON; AGGREGATE "" for a plain run.
field() {
  jq -r --arg p "$1" --arg a "$2" --arg k "$3" '
    [.benchmarks[] | select((.run_name // .name) | startswith($p))
                   | select(if $a == "" then (.run_type // "iteration") == "iteration"
                            else .aggregate_name == $a end)][0][$k] // empty' "$json"
}

# dd_rate BYTES [OFLAG]: writes ceil(BYTES/16384) blocks of 16 KB to a fresh file after a
# sync, prints "bytes seconds".
dd_rate() {
  local count=$((($1 + 16383) / 16384))
  local flags=()
  [[ -n "${2:-}" ]] && flags=("oflag=$2")
  rm -f "$work/dd.out"
  sync
  local out
  out="$(LC_ALL=C dd if=/dev/zero of="$work/dd.out" bs=16k count="$count" ${flags[@]+"${flags[@]}"} 2>&1)"
  rm -f "$work/dd.out"
  # "16777216 bytes (17 MB, 16 MiB) copied, 0.0123 s, 1.4 GB/s"
  echo "$out" | sed -n 's/^\([0-9]*\) bytes .* copied, \([0-9.e+-]*\) s,.*/\1 \2/p'
}

median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

pc_bytes="$(field BM_AppendPageCache median total_bytes)"
pc_rate="$(field BM_AppendPageCache median bytes_per_second)"
fs_bytes="$(field BM_AppendFsyncPerBatch "" total_bytes)"
fs_rate="$(field BM_AppendFsyncPerBatch "" bytes_per_second)"
[[ -n "$pc_bytes" && -n "$fs_bytes" ]] || { echo "run_storage_bench: no append figures" >&2; exit 1; }
pc_bytes="${pc_bytes%.*}"
fs_bytes="${fs_bytes%.*}"

# Page cache: the median of three dd runs, as storage_bench's figure is of three.
rates=()
for _ in 1 2 3; do
  read -r b s <<<"$(dd_rate "$pc_bytes")"
  rates+=("$(awk -v b="$b" -v s="$s" 'BEGIN { printf "%.0f", b / s }')")
done
dd_pc_rate="$(median3 "${rates[@]}")"
read -r b s <<<"$(dd_rate "$fs_bytes" dsync)"
dd_fs_rate="$(awk -v b="$b" -v s="$s" 'BEGIN { printf "%.0f", b / s }')"

mbs() { awk -v r="$1" 'BEGIN { printf "%.1f", r / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
printf '%-44s | %14s | %14s | %6s\n' "append, 16 KB batches of 16 x 1 KB records" \
  "runnel MB/s" "dd bs=16k MB/s" "ratio"
printf '%-44s | %14s | %14s | %6s\n' \
  "page cache ($(mbs "$pc_bytes") MB)" "$(mbs "$pc_rate")" "$(mbs "$dd_pc_rate")" \
  "$(ratio "$pc_rate" "$dd_pc_rate")"
printf '%-44s | %14s | %14s | %6s\n' \
  "fsync per batch / dd oflag=dsync ($(mbs "$fs_bytes") MB)" "$(mbs "$fs_rate")" \
  "$(mbs "$dd_fs_rate")" "$(ratio "$fs_rate" "$dd_fs_rate")"
fs_batches="$(field BM_AppendFsyncPerBatch "" batches)"
fs_ms="$(field BM_AppendFsyncPerBatch "" real_time)"
echo "  fsync per batch: $(awk -v t="$fs_ms" -v n="$fs_batches" 'BEGIN { printf "%.2f", t / n }') ms a batch;" \
  "dd dsync: $(awk -v b="$b" -v s="$s" 'BEGIN { printf "%.2f", s * 1000 / (b / 16384) }') ms a block"

echo
printf '%-44s | %s\n' "figure" "value"
records="$(field BM_OffsetLookup "" records)"
printf '%-44s | %s MB/s\n' "read, sequential, page cache hot" "$(mbs "$(field BM_Read/hot "" bytes_per_second)")"
printf '%-44s | %s MB/s\n' "read, sequential, cold (fadvise DONTNEED)" "$(mbs "$(field BM_Read/cold "" bytes_per_second)")"
printf '%-44s | %.0f ns\n' "offset lookup, ${records%.*} records" "$(field BM_OffsetLookup "" real_time)"
printf '%-44s | %.0f ns\n' "timestamp lookup, ${records%.*} records" "$(field BM_TimestampLookup "" real_time)"
for mode in hot cold; do
  rate="$(field "BM_Recovery/$mode" "" bytes_per_second)"
  printf '%-44s | %s MB/s = %s s per GB\n' "recovery (Open, full scan), page cache $mode" \
    "$(mbs "$rate")" "$(awk -v r="$rate" 'BEGIN { printf "%.2f", 1e9 / r }')"
done
