#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of lemon-pull's parsers (fuzz/README.md): installs cargo-fuzz if
# missing, seeds the corpora, builds every target once, runs each for SECONDS_PER_TARGET (default
# 30; lowered so that all targets together fuzz at most 8 minutes), two at a time on a machine
# with two cores or more, and prints one line per target:
# executions, corpus size, findings. Exits non-zero when any target crashed (panic, failed
# property, sanitizer report, timeout or out-of-memory); the input is kept under
# fuzz/artifacts/<target>/ and printed with the command that replays it.
#
#   fuzz/run.sh [--build-only] [SECONDS_PER_TARGET]
#
# --build-only builds the targets and stops (`.ci/run` builds them beside the chaos run).
set -euo pipefail
cd "$(dirname "$0")"

build_only=0
if [ "${1:-}" = --build-only ]; then
  build_only=1
  shift
fi
seconds=${1:-30}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: fuzz/run.sh [--build-only] [SECONDS_PER_TARGET]" >&2
  exit 2
fi
BUDGET=480 # seconds of fuzzing for all targets together
# A unit slower than this is a finding (a hang); far above any parse of a few kilobytes.
UNIT_TIMEOUT=10

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz/run.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi

mapfile -t targets < <(cargo +nightly fuzz list)
max=$((BUDGET / ${#targets[@]}))
if ((seconds > max)); then
  echo "note: ${#targets[@]} targets x ${seconds} s is over $((BUDGET / 60)) minutes; ${max} s each"
  seconds=$max
fi

./seed.sh >/dev/null
# Release with debug assertions and overflow checks, AddressSanitizer: cargo-fuzz's defaults,
# spelled out so that `run` below reuses this build.
build=(--sanitizer address --debug-assertions)
cargo +nightly fuzz build "${build[@]}"
if ((build_only)); then exit 0; fi

scratch=$(mktemp -d "${TMPDIR_FUZZ:-/dev/shm}/lemon-pull-fuzz.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export LEMON_PULL_FUZZ_SCRATCH="$scratch"

# One target's run; its table line goes to $scratch/$t.line, its report (on a crash) to
# $scratch/$t.report. Targets run side by side, one per core, each on its own corpus.
run_target() {
  local t=$1 log="$scratch/$1.log" status=0 before execs corpus new findings
  mkdir -p "artifacts/$t" "corpus/$t"
  before=$(find "artifacts/$t" -type f | sort)
  cargo +nightly fuzz run "${build[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout="$UNIT_TIMEOUT" -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus=$(find "corpus/$t" -type f | wc -l)
  new=$(comm -13 <(echo "$before") <(find "artifacts/$t" -type f | sort) | sed '/^$/d')
  findings=$(printf '%s' "$new" | grep -c . || true)
  if ((status != 0)) && ((findings == 0)); then findings=1; fi
  printf '%-18s %12s %8s %9s\n' "$t" "${execs:-?}" "$corpus" "$findings" >"$scratch/$t.line"
  if ((status != 0)); then
    {
      grep -E -m 5 "panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY" "$log" | sed 's/^/    /' || true
      for f in $new; do echo "    input: fuzz/$f  (replay: cargo +nightly fuzz run $t fuzz/$f)"; done
      cp "$log" "artifacts/$t/last-run.log"
      echo "    log: fuzz/artifacts/$t/last-run.log"
    } >"$scratch/$t.report"
  fi
}

jobs_max=$(nproc 2>/dev/null || echo 1)
((jobs_max > 2)) && jobs_max=2
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
  run_target "$t" &
done
wait

printf '%-18s %12s %8s %9s\n' target executions corpus findings
failed=()
for t in "${targets[@]}"; do
  cat "$scratch/$t.line"
  if [ -f "$scratch/$t.report" ]; then
    failed+=("$t")
    cat "$scratch/$t.report"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no crash"
