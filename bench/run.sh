#!/usr/bin/env bash
# The benchmark of issue 6, one command, one run on this machine:
#
#   bash bench/run.sh [SIZE_MIB] [ROUNDS]      (defaults: 1024 MiB, 3 rounds)
#
# Serves a generated repo (three LFS files of SIZE_MIB each) from the mock hub (release build,
# its own process) with nginx as the CDN its signed redirects point to (a real web server is the
# fairer baseline: it sends with sendfile and leaves the cores to the clients; installed with
# apt-get if missing, the mock's own CDN when that fails or BENCH_NO_NGINX=1), keeps every cache
# on tmpfs, and prints medians over ROUNDS runs and ratios for:
#   1. single-connection throughput of resume-pull (sha256 verified) vs curl, same file;
#   2. resume-pull's peak RSS during that pull;
#   3. no-op pull of the complete multi-GB snapshot (wall time, process start included), minus the
#      API round trip (curl's time_total for the API URL);
#   4. orphan scan: a --dry-run on a cache with 50 in-progress snapshot folders x 200 files, minus
#      the same dry run without them;
#   5. with the CDN capping each connection at 50 MB/s: 8 connections vs 1 (the cap is
#      bench/conn_cap.py's, per connection; nginx's limit_rate restarts with a burst at every
#      request, which short range requests would ride on);
#   6. --max-rate 100M over 8 connections: average rate over the whole pull (>= 10 s at 1 GiB);
# then bench/parallel.sh (issue 16's targets: parallel scaling, auto, memory, threads).
# CPU use (resume-pull's and the CDN's, in % of one core) is printed with each figure: on a
# machine with few cores the client, the mock hub and curl compete for them. Needs about
# 7 x SIZE_MIB of free space in /dev/shm; takes about 3.5 minutes at the defaults, plus
# bench/parallel.sh's 9.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
RATE_CAP=100000000 # target 6, bytes/s
CONN_CAP=50000000  # target 5, bytes/s per connection
for tool in curl bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq curl bc time >/dev/null; }
done
if ! command -v nginx >/dev/null && [ -z "${BENCH_NO_NGINX:-}" ]; then
  { apt-get update -qq && apt-get install -y -qq nginx-light; } >/dev/null 2>&1 ||
    echo "nginx could not be installed: the mock hub serves the CDN too" >&2
fi

cargo build --release --locked --quiet -p resume-pull -p mock-hub
work=$(mktemp -d /dev/shm/lemon-pull-bench.XXXXXX)
hub_pid= nginx_pid= proxy_pid=
cleanup() {
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# ---- set-up: repo, hub ------------------------------------------------------------------------
mkdir -p "$work/repo"
for f in model.gguf part-2.gguf part-3.gguf; do
  head -c $((SIZE_MIB << 20)) /dev/urandom >"$work/repo/$f"
done
# nginx serves each file as /cdn/<sha256> (a hardlink), as fast as it can; bench/conn_cap.py in
# front of it caps each connection at CONN_CAP (target 5). Its host name (localhost) differs from
# the hub's (127.0.0.1), as the Hub's CDN does.
cdn_fast= cdn_capped=
if command -v nginx >/dev/null && command -v python3 >/dev/null && [ -z "${BENCH_NO_NGINX:-}" ]; then
  mkdir -p "$work/nginx/cdn"
  for f in "$work"/repo/*; do
    ln "$f" "$work/nginx/cdn/$(sha256sum "$f" | cut -d' ' -f1)"
  done
  fast_port=$(free_port) capped_port=$(free_port)
  if start_nginx "$work" "$fast_port"; then
    python3 bench/conn_cap.py "$fast_port" "$capped_port=$CONN_CAP" >"$work/conn_cap.log" 2>&1 &
    proxy_pid=$!
    for _ in $(seq 1 50); do grep -q ready "$work/conn_cap.log" && break; sleep 0.1; done
    cdn_fast="http://localhost:$fast_port" cdn_capped="http://localhost:$capped_port"
  else
    echo "nginx did not start ($(tail -n 1 "$work/nginx/error.log")): the mock hub serves the CDN too" >&2
    nginx_pid=
  fi
fi
./target/release/mock-hub --repo bench/model ${cdn_fast:+--cdn-base "$cdn_fast"} "$work/repo" >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 1 600); do grep -q listening "$work/hub.log" && break; sleep 0.1; done
endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/hub.log" | head -n 1)
[ -n "$endpoint" ] || { cat "$work/hub.log"; exit 1; }
url="$endpoint/bench/model/resolve/main/model.gguf"
api="$endpoint/api/models/bench/model/revision/main?blobs=true"
bytes=$((SIZE_MIB << 20))
ticks=$(getconf CLK_TCK)

now() { date +%s.%N; }
# CPU seconds the CDN (nginx or the mock hub) has used so far.
cdn_cpu() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/${nginx_pid:-$hub_pid}/stat"; }
# Runs resume-pull with the given arguments against the bench repo; sets $wall, $cpu (% of one
# core) and $rss (KiB).
pull() {
  local t0 t1
  t0=$(now)
  /usr/bin/time -f '%U %S %M' -o "$work/time.out" ./target/release/resume-pull --quiet --token "" \
    --endpoint "$endpoint" "$@" bench/model >/dev/null
  t1=$(now)
  wall=$(calc "$t1 - $t0")
  read -r user sys rss <"$work/time.out"
  cpu=$(calc "($user + $sys) * 100 / $wall")
}
rate_mib() { calc "$1 / $2 / 1048576"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $SIZE_MIB MiB per file, 3 files; rounds: $ROUNDS; caches and curl output on tmpfs"
if [ -n "$cdn_fast" ]; then
  echo "CDN: nginx $(nginx -v 2>&1 | cut -d/ -f2) at $cdn_fast (capped per connection: $cdn_capped)"
else
  echo "CDN: the mock hub itself"
fi
echo

# ---- 1 + 2: single connection vs curl, peak RSS -----------------------------------------------
# One unmeasured round first: right after generating the repo the page cache and tmpfs are still
# settling, which made the first curl runs up to 3x slower than the later ones.
curl -sfL -o "$work/curl.out" "$url"
rm -f "$work/curl.out"
pull --cache-dir "$work/cache1" --include model.gguf
rm -rf "$work/cache1"
curl_t=() one_t=() one_cpu=() one_rss=()
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$work/curl.out"
  t0=$(now); curl -sfL -o "$work/curl.out" "$url"; t1=$(now)
  curl_t+=("$(calc "$t1 - $t0")")
  rm -f "$work/curl.out"
  rm -rf "$work/cache1"
  pull --cache-dir "$work/cache1" --include model.gguf
  one_t+=("$wall") one_cpu+=("$cpu") one_rss+=("$rss")
  printf '  round %d: curl %.3f s, resume-pull %.3f s (%.0f%% CPU), peak RSS %d KiB\n' \
    "$round" "${curl_t[-1]}" "$wall" "$cpu" "$rss"
done
c=$(printf '%s\n' "${curl_t[@]}" | median)
o=$(printf '%s\n' "${one_t[@]}" | median)
c_best=$(printf '%s\n' "${curl_t[@]}" | sort -n | head -n 1)
printf '1. single connection: curl %.3f s = %.0f MiB/s; resume-pull %.3f s = %.0f MiB/s (%.0f%% CPU); ratio %.2f (target >= 0.90); against curl'"'"'s best round %.2f\n' \
  "$c" "$(rate_mib "$bytes" "$c")" "$o" "$(rate_mib "$bytes" "$o")" \
  "$(printf '%s\n' "${one_cpu[@]}" | median)" "$(calc "$c / $o")" "$(calc "$c_best / $o")"
printf '2. peak RSS of that pull: median %d KiB (target <= 32768)\n' "$(printf '%s\n' "${one_rss[@]}" | median)"

# ---- 3: no-op pull of a complete multi-GB snapshot --------------------------------------------
rm -rf "$work/cache1"
pull --cache-dir "$work/full"
printf '   (first full pull of the %d MiB snapshot: %.3f s)\n' $((3 * SIZE_MIB)) "$wall"
noop_t=() api_t=()
for _ in $(seq 1 "$ROUNDS"); do
  # The API round trip alone, without curl's own start-up.
  api_t+=("$(curl -sf -o /dev/null -w '%{time_total}' "$api")")
  pull --cache-dir "$work/full"
  noop_t+=("$wall")
done
n=$(printf '%s\n' "${noop_t[@]}" | median)
a=$(printf '%s\n' "${api_t[@]}" | median)
printf '3. no-op pull of %d MiB: %.1f ms; API round trip (curl time_total) %.1f ms; difference %.1f ms (target <= 50; includes process start)\n' \
  $((3 * SIZE_MIB)) "$(calc "$n * 1000")" "$(calc "$a * 1000")" "$(calc "($n - $a) * 1000")"

# ---- 4: orphan scan, 50 folders x 200 files ----------------------------------------------------
# A copy of the complete cache (hardlinks: same files, same verified stamps) plus 50 in-progress
# snapshot folders of another model version, each with a manifest and 200 files (10 partials).
cp -al "$work/full" "$work/orphans"
snaps="$work/orphans/models--bench--model/snapshots"
for s in $(seq 1 50); do
  dir="$snaps/$(printf '%040x' "$s")"
  mkdir -p "$dir/shards"
  {
    printf '{"repo_id":"bench/model","commit_hash":"%040x","download_path":"%s","files_count":200,"files":[' "$s" "$dir"
    for f in $(seq 1 200); do
      [ "$f" -gt 1 ] && printf ','
      printf '{"name":"shards/f%03d.bin","size":4096,"hash":{"algorithm":"sha256","value":"%064x"}}' "$f" $((s * 1000 + f))
    done
    printf ']}'
  } >"$dir/.download_manifest.json"
  for f in $(seq 1 190); do printf 'x' >"$dir/shards/f$(printf %03d "$f").bin"; done
  for f in $(seq 191 200); do printf 'x' >"$dir/shards/f$(printf %03d "$f").bin.partial"; done
done
with_t=() without_t=()
for _ in $(seq 1 "$ROUNDS"); do
  pull --cache-dir "$work/full" --dry-run
  without_t+=("$wall")
  pull --cache-dir "$work/orphans" --dry-run
  with_t+=("$wall")
done
w=$(printf '%s\n' "${with_t[@]}" | median)
wo=$(printf '%s\n' "${without_t[@]}" | median)
printf '4. orphan scan of 50 x 200 files: dry run %.1f ms with the orphans, %.1f ms without; scan %.1f ms (target <= 100)\n' \
  "$(calc "$w * 1000")" "$(calc "$wo * 1000")" "$(calc "($w - $wo) * 1000")"
rm -rf "$work/orphans" "$work/full"

# ---- 5: 8 connections vs 1 with every connection capped at 50 MB/s -----------------------------
if [ -n "$cdn_capped" ]; then
  curl -sf -X POST "$endpoint/admin/cdn?base=$cdn_capped" >/dev/null
else
  curl -sf -X POST "$endpoint/admin/rate?bps=$CONN_CAP" >/dev/null
fi
p1_t=() p8_t=() p8_cpu=() p8_cdn=() p8_rss=()
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$work/cache5"
  pull --cache-dir "$work/cache5" --include model.gguf --connections 1
  p1_t+=("$wall")
  rm -rf "$work/cache5"
  h0=$(cdn_cpu)
  pull --cache-dir "$work/cache5" --include model.gguf --connections 8
  h1=$(cdn_cpu)
  p8_t+=("$wall") p8_cpu+=("$cpu") p8_rss+=("$rss")
  p8_cdn+=("$(calc "($h1 - $h0) * 100 / $wall")")
  printf '  round %d: 1 connection %.3f s, 8 connections %.3f s (resume-pull %.0f%% CPU, CDN %.0f%% CPU, RSS %d KiB)\n' \
    "$round" "${p1_t[-1]}" "$wall" "$cpu" "${p8_cdn[-1]}" "$rss"
done
rm -rf "$work/cache5"
curl -sf -X POST "$endpoint/admin/rate?bps=0" >/dev/null
curl -sf -X POST "$endpoint/admin/cdn?base=$cdn_fast" >/dev/null
t1=$(printf '%s\n' "${p1_t[@]}" | median)
t8=$(printf '%s\n' "${p8_t[@]}" | median)
printf '5. per-connection cap 50 MB/s (%s): 1 connection %.3f s = %.1f MB/s; 8 connections %.3f s = %.1f MB/s; ratio %.2f (target >= 6); CPU during 8: resume-pull %.0f%%, CDN %.0f%% of one core (of %d)\n' \
  "$([ -n "$cdn_capped" ] && echo "bench/conn_cap.py" || echo "mock hub")" "$t1" "$(calc "$bytes / $t1 / 1000000")" "$t8" "$(calc "$bytes / $t8 / 1000000")" "$(calc "$t1 / $t8")" \
  "$(printf '%s\n' "${p8_cpu[@]}" | median)" "$(printf '%s\n' "${p8_cdn[@]}" | median)" "$(nproc)"

# ---- 6: --max-rate over all connections ---------------------------------------------------------
rate_t=()
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$work/cache6"
  pull --cache-dir "$work/cache6" --include model.gguf --connections 8 --max-rate "$RATE_CAP"
  rate_t+=("$wall")
  printf '  round %d: %.3f s = %.1f MB/s\n' "$round" "$wall" "$(calc "$bytes / $wall / 1000000")"
done
rm -rf "$work/cache6"
r=$(printf '%s\n' "${rate_t[@]}" | median)
got=$(calc "$bytes / $r")
printf '6. --max-rate %d MB/s, 8 connections, %.1f s window: average %.1f MB/s, %+.1f%% off (target within 10%%)\n' \
  $((RATE_CAP / 1000000)) "$r" "$(calc "$got / 1000000")" "$(calc "($got - $RATE_CAP) * 100 / $RATE_CAP")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- issue 16: parallel downloads -----------------------------------------------------------------
echo
cleanup
trap - EXIT
bash bench/parallel.sh "$SIZE_MIB" "$ROUNDS"
