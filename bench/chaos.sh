#!/usr/bin/env bash
# The chaos run of issue 15 (item 5), one command:
#
#   bash bench/chaos.sh [SEED] [-- EXTRA ARGS FOR examples/chaos/]
#
# Builds resume-pull and the chaos example (debug profile, as `cargo test` does) and runs at least
# 160 pulls of three small repos (one with a 17-20 MiB file, so `--connections` > 1 goes
# parallel) against the in-process mock hub, with random faults, commit moves mid-pull, SIGKILL
# and SIGINT of resume-pull, callback cancels, concurrent pulls of one or two revisions and
# `gc --apply` beside a pull. Every step is followed by the invariant checks described at the top
# of examples/chaos/main.rs; the summary prints pulls, outcomes by status, faults by kind, bytes
# served/downloaded/salvaged, violations and wall time. Exits non-zero on any violation.
#
# SEED (or CHAOS_SEED) replays one run of 80 pulls; without one, two runs of 80 pulls each: seed 1
# (fixed) and a random seed, printed first. Each stops at 80 pulls or after 135 s, whichever comes
# first (together about 2.5 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

seed=${1:-${CHAOS_SEED:-}}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift

cargo build --locked --quiet --bin resume-pull --example chaos
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo target)
args=(--resume-pull "$target_dir/debug/resume-pull" --pulls 80 --deadline 135)
if [ -n "$seed" ]; then
  exec "$target_dir/debug/examples/chaos" "${args[@]}" --seed "$seed" "$@"
fi
# A fixed seed (the same decisions every run) and a random one (new paths; printed for replay).
"$target_dir/debug/examples/chaos" "${args[@]}" --seed 1 "$@"
random=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
exec "$target_dir/debug/examples/chaos" "${args[@]}" --seed "$random" "$@"
