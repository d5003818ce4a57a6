#!/usr/bin/env bash
# Throughput and memory of `resume-pull` against curl, same file, same mock hub, same run.
#
#   bash bench/run.sh [SIZE_MIB] [ROUNDS]      (defaults: 1024 MiB, 3 rounds)
#
# Serves one generated LFS file from the mock hub (release build), then alternates curl and
# resume-pull (fresh cache on tmpfs each time, sha256 verification on) and prints medians, the
# throughput ratio and resume-pull's peak RSS (from /usr/bin/time -v).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
for tool in curl bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq curl bc time >/dev/null; }
done

cargo build --release --locked --quiet --bin resume-pull --example mock-hub
work=$(mktemp -d /dev/shm/lemon-pull-bench.XXXXXX)
hub_pid=
cleanup() {
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/repo"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$work/repo/model.gguf"
./target/release/examples/mock-hub --repo bench/model "$work/repo" >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 1 600); do grep -q listening "$work/hub.log" && break; sleep 0.1; done
endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/hub.log" | head -n 1)
[ -n "$endpoint" ] || { cat "$work/hub.log"; exit 1; }
url="$endpoint/bench/model/resolve/main/model.gguf"
bytes=$((SIZE_MIB << 20))

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

curl_times=() ours_times=() rss=()
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$work/curl.out"
  t0=$(now); curl -sfL -o "$work/curl.out" "$url"; t1=$(now)
  curl_times+=("$(echo "$t1 - $t0" | bc -l)")
  rm -f "$work/curl.out"

  rm -rf "$work/cache"
  t0=$(now)
  /usr/bin/time -v ./target/release/resume-pull --quiet --token "" --endpoint "$endpoint" \
    --cache-dir "$work/cache" bench/model 2>"$work/time.log" >/dev/null
  t1=$(now)
  ours_times+=("$(echo "$t1 - $t0" | bc -l)")
  rss+=("$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$work/time.log")")
  echo "round $round: curl ${curl_times[-1]} s, resume-pull ${ours_times[-1]} s, peak RSS ${rss[-1]} KiB"
done

c=$(printf '%s\n' "${curl_times[@]}" | median)
o=$(printf '%s\n' "${ours_times[@]}" | median)
r=$(printf '%s\n' "${rss[@]}" | median)
printf 'file: %d MiB, rounds: %d, cache on tmpfs, sha256 verified by resume-pull only\n' "$SIZE_MIB" "$ROUNDS"
printf 'curl:        median %.3f s = %.0f MiB/s\n' "$c" "$(echo "$bytes / $c / 1048576" | bc -l)"
printf 'resume-pull: median %.3f s = %.0f MiB/s\n' "$o" "$(echo "$bytes / $o / 1048576" | bc -l)"
printf 'throughput ratio resume-pull / curl: %.2f\n' "$(echo "$c / $o" | bc -l)"
printf 'resume-pull peak RSS: median %d KiB\n' "$r"
