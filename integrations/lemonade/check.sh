#!/usr/bin/env bash
# integrations/lemonade/check.sh: builds lemon-pull into lemonade's real sources and runs
# lemonade's download scenarios against the mock hub. Called by .ci/run; run it from anywhere.
#
#   integrations/lemonade/check.sh [--compile-only] [--regenerate-fingerprints] [--keep]
#
#   1. copies lemonade (LEMONADE_SRC, default ../shared/lemonade next to the repository) to a
#      temporary folder and applies lemonade-e385039.patch (must apply without fuzz or offset);
#   2. installs with apt-get what the compiles need (apt-get update once, only when missing);
#   3. compiles every lemonade translation unit the patch changes, with lemonade's include paths,
#      and the bridge with -Werror (lemonade's full server is not built: it pins newer dependency
#      versions than Debian 12 ships and fetches others from the internet); runs bridge_test.cpp,
#      the bridge against a scripted stand-in for the C API;
#   4. compiles lemonade's own tree_snapshot_id, regenerates the ModelScope fingerprint vectors and
#      diffs them with tests/fixtures/modelscope_fingerprints.json (--regenerate-fingerprints
#      rewrites the fixture instead);
#   --compile-only stops here;
#   5. builds the driver with CMake through the block the patch adds to lemonade's CMakeLists.txt
#      (LemonPull.cmake: cargo build of the static library, imported target, bridge), measures the
#      size the library adds to a stripped C++ program;
#   6. starts the mock hub (MOCK_HUB, default: built from this repository) and runs the scenarios.
#
# Prints PASS/FAIL lines and ends with "N passed, M failed"; exits 1 on any failure.
# Environment: LEMONADE_SRC, MOCK_HUB, LEMON_PULL_CARGO_PROFILE (`.ci/run` passes dev, which reuses
# the test build; default: dist when Cargo.toml
# defines it, else release).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
root=$PWD
here=integrations/lemonade

compile_only=0
regenerate=0
keep=0
for arg in "$@"; do
    case $arg in
        --compile-only) compile_only=1 ;;
        --regenerate-fingerprints) regenerate=1 ;;
        --keep) keep=1 ;;
        *) echo "usage: $here/check.sh [--compile-only] [--regenerate-fingerprints] [--keep]" >&2; exit 2 ;;
    esac
done

LEMONADE_SRC=${LEMONADE_SRC:-../shared/lemonade}
MOCK_HUB=${MOCK_HUB:-}
FIXTURE=tests/fixtures/modelscope_fingerprints.json
MODEL_BYTES=$((48 << 20))     # each generated GGUF: past one 32 MiB checkpoint, so resume is measurable
CHECKPOINT_BYTES=$((32 << 20)) # the library's checkpoint interval (src/transfer/checkpoint.rs)
CANCEL_AT=$((40 << 20))        # cancel after the first checkpoint
STALL_AT=$((8 << 20))
SLOW_BPS=16000000
APT_PACKAGES=(g++ cmake pkg-config patch curl nlohmann-json3-dev libcpp-httplib-dev libcurl4-openssl-dev)

work=$(mktemp -d "${TMPDIR:-/tmp}/lemonade-check.XXXXXX")
hub_pid=""
passed=0
failed=0
skipped=0

cleanup() {
    if [ -n "$hub_pid" ]; then
        kill "$hub_pid" 2>/dev/null
        wait "$hub_pid" 2>/dev/null
    fi
    if [ "$keep" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+ -- $2}"; failed=$((failed + 1)); }
finish() {
    if [ "$skipped" -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
    [ "$failed" -eq 0 ]
    exit
}
fatal() { fail "$1" "${2:-}"; finish; }
check() { # NAME CMD...: one check from a command's exit status (output shown on failure)
    local name=$1 log=$work/check.log
    shift
    if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/    /' "$log" | head -n 40; fi
}
expect_eq() { # NAME ACTUAL EXPECTED
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', expected '$3'"; fi
}
# run_program NAME CMD...: runs a test program, counting its PASS/FAIL lines; a crash or a
# sanitizer report without a FAIL line counts as one failure.
run_program() {
    local name=$1 log=$work/program.log status p f
    shift
    "$@" >"$log" 2>&1
    status=$?
    sed 's/^/   /' "$log"
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then fail "$name" "exited with status $status"; fi
    if [ "$status" -eq 0 ] && [ "$p" -eq 0 ]; then fail "$name" "ran no check"; fi
}
expect_le() { # NAME ACTUAL LIMIT
    if [ -n "$2" ] && [ "$2" -le "$3" ]; then pass "$1 ($2 <= $3)"; else fail "$1" "got '$2', limit $3"; fi
}

# ---------------------------------------------------------------------------------------------
echo "== packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "apt-get install ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
        >"$work/apt.log" 2>&1 || fatal "apt-get install ${missing[*]}" "$(tail -n 5 "$work/apt.log")"
fi
pass "packages: ${APT_PACKAGES[*]}"

# ---------------------------------------------------------------------------------------------
echo "== lemonade sources"
[ -f "$LEMONADE_SRC/src/cpp/server/model_manager.cpp" ] || fatal "lemonade sources" "none at $LEMONADE_SRC"
orig=$work/lemonade-orig
lemonade=$work/lemonade
cp -r "$LEMONADE_SRC" "$orig" && chmod -R u+w "$orig" && cp -r "$orig" "$lemonade" || fatal "copy lemonade"
patch_file=$root/$here/lemonade-e385039.patch
if (cd "$lemonade" && patch -p1 --batch --forward --no-backup-if-mismatch <"$patch_file") >"$work/patch.log" 2>&1; then
    if grep -qiE 'offset|fuzz|hunk' "$work/patch.log"; then
        fail "patch applies cleanly" "$(grep -iE 'offset|fuzz|hunk' "$work/patch.log" | head -n 5)"
    else
        pass "lemonade-e385039.patch applies with patch -p1, no fuzz or offset"
    fi
else
    fatal "lemonade-e385039.patch applies" "$(tail -n 10 "$work/patch.log")"
fi
added=$(grep -cE '^\+([^+]|$)' "$patch_file")
removed=$(grep -cE '^-([^-]|$)' "$patch_file")
echo "patch: $(grep -c '^diff ' "$patch_file") files, +$added -$removed lines"
dead=$(grep -nE 'download_from_manifest|write_hf_ref_main|remove_unused_hf_snapshot' \
    "$lemonade/src/cpp/server/model_manager.cpp" "$lemonade/src/cpp/include/lemon/model_manager.h")
expect_eq "the patched lemonade no longer has download_from_manifest, write_hf_ref_main, remove_unused_hf_snapshot" "$dead" ""
check "the patched download_from_registry calls the bridge" \
    grep -q 'lemon_pull::download(request, progress_callback)' "$lemonade/src/cpp/server/model_manager.cpp"

# ---------------------------------------------------------------------------------------------
echo "== compile lemonade's changed translation units"
includes=(-I"$lemonade/src/cpp/include" -I"$root/$here" -I"$root/include")
mapfile -t changed < <(sed -n 's|^+++ [^/]*/\(.*\.cpp\)$|\1|p' "$patch_file")
[ "${#changed[@]}" -gt 0 ] || fail "changed translation units" "none found in the patch"
for tu in "${changed[@]}"; do
    check "compiles: $tu (g++ -std=c++17, lemonade's include paths)" \
        g++ -std=c++17 -fsyntax-only "${includes[@]}" "$lemonade/$tu"
done
check "compiles: $here/lemon_pull_download.cpp (-Wall -Wextra -Werror -pedantic)" \
    g++ -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only "${includes[@]}" "$here/lemon_pull_download.cpp"
# The bridge's mapping against a scripted stand-in for the C API (no library, no hub needed).
if check "compile bridge_test.cpp + the bridge (ASan+UBSan)" \
    g++ -std=c++17 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer "${includes[@]}" "$here/bridge_test.cpp" "$here/lemon_pull_download.cpp" \
    -o "$work/bridge_test"; then
    run_program "bridge_test" "$work/bridge_test"
fi

# ---------------------------------------------------------------------------------------------
echo "== ModelScope fingerprints from lemonade's own code"
fp=$work/fingerprint
mkdir -p "$fp"
registry_cpp=$orig/src/cpp/server/model_registry.cpp
# The definition of a function at column 0, through its closing brace, as lemonade wrote it.
extract() {
    awk -v name="$1" '!found && $0 ~ ("^[A-Za-z0-9_:]+( [A-Za-z0-9_:]+)* " name "\\(") { found = 1 }
        found { print } found && /^}/ { exit }' "$registry_cpp"
}
extract_ok=1
for fn in fnv1a64 safe_revision_component tree_snapshot_id registry_tree_snapshot_id remote_registry_source_name; do
    n=$(grep -cE "^[A-Za-z0-9_:]+( [A-Za-z0-9_:]+)* $fn\(" "$registry_cpp")
    [ "$n" = 1 ] || { fail "extract $fn from model_registry.cpp" "$n definitions found"; extract_ok=0; }
done
if [ "$extract_ok" = 1 ]; then
    for fn in fnv1a64 safe_revision_component tree_snapshot_id registry_tree_snapshot_id; do extract "$fn"; done \
        >"$fp/lemonade_fingerprint.inc"
    extract remote_registry_source_name >"$fp/lemonade_source_name.inc"
    if check "compile fingerprint_vectors.cpp with lemonade's tree_snapshot_id" \
        g++ -std=c++17 -Wall -Wextra -O1 -I"$orig/src/cpp/include" -I"$fp" "$here/fingerprint_vectors.cpp" \
        -o "$fp/fingerprint_vectors"; then
        "$fp/fingerprint_vectors" >"$fp/vectors.json" || fail "run fingerprint_vectors"
        if [ "$regenerate" = 1 ]; then
            mkdir -p "$(dirname "$FIXTURE")" && cp "$fp/vectors.json" "$FIXTURE"
            pass "regenerated $FIXTURE ($(grep -c '"snapshot_id"' "$FIXTURE") vectors)"
        else
            check "$FIXTURE equals the vectors lemonade's code computes" diff -u "$FIXTURE" "$fp/vectors.json"
        fi
    fi
fi

[ "$compile_only" = 1 ] && finish

# ---------------------------------------------------------------------------------------------
echo "== build the driver through the patched CMake block"
profile=${LEMON_PULL_CARGO_PROFILE:-}
if [ -z "$profile" ]; then
    if grep -q '^\[profile\.dist\]' Cargo.toml; then profile=dist; else profile=release; fi
fi
# cargo's output folder is named after the profile, except for the built-in "dev".
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
snippet=$work/lemon_pull_snippet.cmake
sed -n '/^# Model downloads: lemon-pull/,/^lemon_pull_attach(lemonade-server-core)$/p' \
    "$lemonade/CMakeLists.txt" >"$snippet"
grep -q '^lemon_pull_attach(lemonade-server-core)$' "$snippet" \
    || fatal "the patch's CMake block" "not found in the patched CMakeLists.txt"
build=$work/driver-build
if ! cmake -S "$here/driver" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DLEMONADE_DIR="$lemonade" -DLEMON_PULL_SOURCE_DIR="$root" -DLEMON_PULL_SNIPPET="$snippet" \
    -DLEMON_PULL_CARGO_PROFILE="$profile" -DLEMON_PULL_CARGO_TARGET_DIR="$root/target" \
    >"$work/cmake.log" 2>&1; then
    fatal "cmake configure (driver + LemonPull.cmake)" "$(tail -n 20 "$work/cmake.log")"
fi
if cmake --build "$build" -j 2 >>"$work/cmake.log" 2>&1; then
    pass "driver built: lemonade's model_registry.cpp + bridge + liblemon_pull.a ($profile) via LemonPull.cmake"
else
    fatal "cmake --build driver" "$(grep -E 'error|Error' "$work/cmake.log" | head -n 20)"
fi
driver=$build/driver
lib=$root/target/$profile_dir/liblemon_pull.a

# The size the library adds to a C++ program: the same program with and without a real call.
cat >"$work/size_probe.cpp" <<'EOF'
#include "lemon_pull.h"
#include <cstdio>
int main(int argc, char** argv) {
#ifdef WITH_LEMON_PULL
    lemon_pull_options o;
    lemon_pull_options_init(&o);
    o.repo_id = argc > 1 ? argv[1] : "org/name";
    lemon_pull_result r{};
    int status = lemon_resume_pull(&o, &r);
    lemon_pull_result_free(&r);
    return status;
#else
    std::printf("%d %s\n", argc, argv[0]);
    return 0;
#endif
}
EOF
# LemonPull.cmake's cargo command prints rustc's list of system libraries into the build log.
native_libs=$(sed -n 's/.*native-static-libs: //p' "$work/cmake.log" | tail -n 1)
read -r -a native <<<"$native_libs"
cmake_libs=$(sed -n 's/^set(_lemon_pull_linux_libs \(.*\))$/\1/p' "$here/LemonPull.cmake")
expect_eq "LemonPull.cmake's Linux libraries are rustc's native-static-libs" \
    "$(sed 's/-l//g' <<<"$native_libs")" "$cmake_libs"
if g++ -std=c++17 -O2 -I include "$work/size_probe.cpp" -o "$work/probe-without" \
    && g++ -std=c++17 -O2 -DWITH_LEMON_PULL -I include "$work/size_probe.cpp" "$lib" "${native[@]}" -o "$work/probe-with" \
    && strip "$work/probe-without" "$work/probe-with"; then
    size_with=$(stat -c %s "$work/probe-with")
    size_without=$(stat -c %s "$work/probe-without")
    echo "size: a stripped C++ program grows by $((size_with - size_without)) bytes with lemon_pull ($profile profile)"
else
    fail "size probe" "could not link the size probe"
fi

# ---------------------------------------------------------------------------------------------
echo "== mock hub"
if [ -z "$MOCK_HUB" ]; then
    if cargo build -q --locked --profile "$profile" -p mock-hub >"$work/mock-build.log" 2>&1; then
        MOCK_HUB=target/$profile_dir/mock-hub
    else
        fatal "build the mock hub" "$(tail -n 10 "$work/mock-build.log")"
    fi
fi
model=$work/model
"$MOCK_HUB" --repo local/demo --generate "$MODEL_BYTES" "$model" >"$work/hub.log" 2>&1 &
hub_pid=$!
hub_line=""
for _ in $(seq 1 600); do
    hub_line=$(grep -m1 '^mock-hub listening on' "$work/hub.log")
    [ -n "$hub_line" ] && break
    kill -0 "$hub_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$hub_line" ] || fatal "mock hub start" "$(cat "$work/hub.log")"
echo "$hub_line"
endpoint=$(sed -n 's/^mock-hub listening on \([^ ]*\) .*/\1/p' <<<"$hub_line")
commit1=$(sed -n 's/.*commit \([0-9a-f]\{40\}\)).*/\1/p' <<<"$hub_line")
admin() { curl -fsS -X POST "$endpoint/admin/$1"; }
commit_of() { sed -n 's/.*"sha":"\([0-9a-f]\{40\}\)".*/\1/p'; }
aux_commit=$(admin "commit?repo=local/aux" | commit_of)
[ -n "$endpoint" ] && [ -n "$commit1" ] && [ -n "$aux_commit" ] \
    || fatal "mock hub setup" "endpoint=$endpoint commit=$commit1 aux=$aux_commit"
served() { curl -fsS "$endpoint/admin/stats" | sed -n 's/.*"bytes_served_total":\([0-9]*\).*/\1/p'; }

# lemonade reads these (its listing code runs in the driver); the library reads none of them.
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_CACHE HF_HOME MODELSCOPE_API_TOKEN MODELSCOPE_ACCESS_TOKEN
export HF_ENDPOINT=$endpoint MODELSCOPE_ENDPOINT=$endpoint
closed=http://127.0.0.1:9   # discard port: nothing listens there

hf_dir() { echo "$1/models--local--${2:-demo}"; }
ms_dir() { echo "$1/modelscope--models--local--${2:-demo}"; }
refs_main() { cat "$1/refs/main" 2>/dev/null; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
# bytes of the wanted files already in one snapshot folder (complete files and partials)
bytes_on_disk() {
    local dir=$1 f total=0
    shift
    for f in "$@"; do
        if [ -f "$dir/$f" ]; then total=$((total + $(size_of "$dir/$f")))
        elif [ -f "$dir/$f.partial" ]; then total=$((total + $(size_of "$dir/$f.partial"))); fi
    done
    echo "$total"
}
result=""
driver_ok=0
# run_driver NAME ARGS...: runs the driver, counts its PASS/FAIL lines, keeps its RESULT line and
# whether the call ended as expected (driver_ok).
run_driver() {
    local name=$1 log=$work/driver.log status p f
    shift
    echo "-- $name"
    "$driver" "$@" >"$log" 2>"$work/driver.err"
    status=$?
    if grep -q '^PASS outcome is ' "$log" && ! grep -q '^FAIL message contains ' "$log"; then
        driver_ok=1
    else
        driver_ok=0
    fi
    sed 's/^/   /' "$log"
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then fail "$name" "driver exited with $status: $(tail -n 3 "$work/driver.err")"; fi
    result=$(grep -m1 '^RESULT ' "$log")
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
# on_ok CHECK NAME ARGS...: a check of what the last driver run left behind; skipped (and counted
# as such) when that run did not end as expected, since its failure is already counted and the
# disk would say nothing.
on_ok() {
    if [ "$driver_ok" = 1 ]; then
        "$@"
    else
        echo "SKIP $2 (the driver's call did not end as expected)"
        skipped=$((skipped + 1))
    fi
}
files=(model-Q4_K_M.gguf config.json tokenizer.json)
file_args=(--file model-Q4_K_M.gguf --file config.json --file tokenizer.json)
selected_bytes=$(( $(size_of "$model/model-Q4_K_M.gguf") + $(size_of "$model/config.json") + $(size_of "$model/tokenizer.json") ))

# ---------------------------------------------------------------------------------------------
echo "== 1. fresh pull: a GGUF variant + a component file from a second repository"
c1=$work/cache-fresh
admin reset >/dev/null
run_driver "fresh pull" --source huggingface --cache "$c1" --repo local/demo "${file_args[@]}" \
    --aux local/aux:config.json --listing-out "$work/listing-fresh.json" --expect ok
on_ok expect_eq "fresh: refs/main names the listed commit" "$(refs_main "$(hf_dir "$c1")")" "$commit1"
on_ok expect_eq "fresh: the component's refs/main names its commit" "$(refs_main "$(hf_dir "$c1" aux)")" "$aux_commit"
on_ok expect_eq "fresh: the GGUF is complete" "$(size_of "$(hf_dir "$c1")/snapshots/$commit1/model-Q4_K_M.gguf")" "$MODEL_BYTES"
on_ok check "fresh: the component landed in its own repository folder" test -f "$(hf_dir "$c1" aux)/snapshots/$aux_commit/config.json"
on_ok check "fresh: no manifest and no partial left" sh -c "! find '$c1' -name '*.partial' -o -name .download_manifest.json | grep -q ."
aux_bytes=$(size_of "$model/config.json")
on_ok expect_eq "fresh: the hub served exactly the selected bytes" "$(served)" "$((selected_bytes + aux_bytes))"

echo "== 2a. cancel from the callback mid-transfer"
c2=$work/cache-cancel
admin "rate?bps=$SLOW_BPS" >/dev/null
run_driver "cancel from the callback" --source huggingface --cache "$c2" --repo local/demo "${file_args[@]}" \
    --cancel-at-bytes "$CANCEL_AT" --expect cancelled --max-latency-ms 1000
admin "rate?bps=0" >/dev/null
snap2=$(hf_dir "$c2")/snapshots/$commit1
on_ok check "cancel: the partial is kept" test -s "$snap2/model-Q4_K_M.gguf.partial"
on_ok check "cancel: the manifest is kept" test -f "$snap2/.download_manifest.json"
on_ok expect_eq "cancel: no refs/main" "$(refs_main "$(hf_dir "$c2")")" ""

echo "== 2b. an exception thrown in the callback"
c2t=$work/cache-throw
admin "rate?bps=$SLOW_BPS" >/dev/null
run_driver "callback throws" --source huggingface --cache "$c2t" --repo local/demo "${file_args[@]}" \
    --throw-at-bytes "$STALL_AT" --expect logic-error --expect-message "callback failure" --max-seconds 10
admin "rate?bps=0" >/dev/null
on_ok check "throw: the partial is kept" test -s "$(hf_dir "$c2t")/snapshots/$commit1/model-Q4_K_M.gguf.partial"

echo "== 2c. cancel 2 s into a 30 s stall"
c3=$work/cache-stall
admin "fault?target=cdn:model-Q4_K_M.gguf&kind=stall&bytes=$STALL_AT&ms=30000" >/dev/null
run_driver "cancel during a stall" --source huggingface --cache "$c3" --repo local/demo "${file_args[@]}" \
    --cancel-after "$((STALL_AT / 2)):2000" --expect cancelled --max-latency-ms 1000 --max-seconds 15
admin reset >/dev/null
on_ok expect_le "stall: lemonade's callback was called at least every second while idle" "$(field max_gap_ms)" 1000
on_ok check "stall: the partial is kept" test -s "$(hf_dir "$c3")/snapshots/$commit1/model-Q4_K_M.gguf.partial"
on_ok check "stall: the manifest is kept" test -f "$(hf_dir "$c3")/snapshots/$commit1/.download_manifest.json"
on_ok expect_eq "stall: no refs/main" "$(refs_main "$(hf_dir "$c3")")" ""

echo "== 3. the commit moves while paused, then resume"
on_disk=$(bytes_on_disk "$snap2" "${files[@]}")
printf 'readme %s\n' "$(date +%s%N)" >"$model/README.md"
commit2=$(admin "commit?repo=local/demo" | commit_of)
[ -n "$commit2" ] && [ "$commit2" != "$commit1" ] || fail "hub: a new commit" "got '$commit2'"
admin reset >/dev/null
run_driver "resume across a commit change" --source huggingface --cache "$c2" --repo local/demo "${file_args[@]}" --expect ok
on_ok expect_le "resume: bytes served <= missing bytes + one checkpoint" "$(served)" \
    "$((selected_bytes - on_disk + CHECKPOINT_BYTES))"
on_ok expect_eq "resume: refs/main names the new commit" "$(refs_main "$(hf_dir "$c2")")" "$commit2"
on_ok expect_eq "resume: the new snapshot is complete" \
    "$(size_of "$(hf_dir "$c2")/snapshots/$commit2/model-Q4_K_M.gguf")" "$MODEL_BYTES"
on_ok check "resume: the old in-progress folder is gone" test ! -e "$snap2"

echo "== 4. keep the previous snapshot when only an unselected file changed"
printf 'readme %s\n' "$(date +%s%N)" >"$model/README.md"
commit3=$(admin "commit?repo=local/demo" | commit_of)
[ -n "$commit3" ] && [ "$commit3" != "$commit2" ] || fail "hub: a third commit" "got '$commit3'"
admin reset >/dev/null
run_driver "keep the previous snapshot" --source huggingface --cache "$c2" --repo local/demo "${file_args[@]}" --expect ok
on_ok expect_eq "keep: refs/main unchanged" "$(refs_main "$(hf_dir "$c2")")" "$commit2"
on_ok check "keep: no folder for the new commit" test ! -e "$(hf_dir "$c2")/snapshots/$commit3"
on_ok expect_eq "keep: the bridge reports the kept snapshot" "$(field kept)" "1"
on_ok expect_eq "keep: 0 bytes served" "$(served)" "0"

echo "== 5. ModelScope"
c5=$work/cache-modelscope
admin reset >/dev/null
run_driver "ModelScope pull" --source modelscope --cache "$c5" --repo local/demo "${file_args[@]}" \
    --listing-out "$work/listing-modelscope.json" --expect ok
ms_id=$(field active)
listed_id=$(sed -n 's/.*"snapshot_id": "\(.*\)".*/\1/p' "$work/listing-modelscope.json" 2>/dev/null | head -n 1)
on_ok expect_eq "modelscope: the folder is the one lemonade's listing named" "$ms_id" "$listed_id"
ms_named() {
    case $ms_id in
        modelscope-master-????????????????) pass "$1 ($ms_id)" ;;
        *) fail "$1" "got '$ms_id'" ;;
    esac
}
on_ok ms_named "modelscope: the snapshot is named by lemonade's fingerprint of the listing"
on_ok expect_eq "modelscope: refs/main names it" "$(refs_main "$(ms_dir "$c5")")" "$ms_id"
on_ok expect_eq "modelscope: the GGUF is complete" "$(size_of "$(ms_dir "$c5")/snapshots/$ms_id/model-Q4_K_M.gguf")" "$MODEL_BYTES"

echo "== 6. error paths"
run_driver "404: unknown repository" --source huggingface --cache "$work/cache-404" --repo local/missing \
    --file model.gguf --expect registry-not-found --expect-message "not found or not accessible"
admin "fault?target=resolve:model-Q4_K_M.gguf&kind=status&code=401&count=20" >/dev/null
run_driver "401: gated file" --source huggingface --cache "$work/cache-401" --repo local/demo "${file_args[@]}" \
    --expect registry-not-found --max-seconds 30
admin reset >/dev/null
HF_ENDPOINT=$closed run_driver "hub down, nothing cached" --source huggingface --cache "$work/cache-down" \
    --repo local/demo "${file_args[@]}" --listing-in "$work/listing-fresh.json" --expect runtime-error \
    --expect-message "127.0.0.1:9" --max-seconds 30
on_ok expect_eq "hub down: no refs/main" "$(refs_main "$(hf_dir "$work/cache-down")")" ""
HF_ENDPOINT=$closed run_driver "hub down, complete snapshot cached" --source huggingface --cache "$c1" \
    --repo local/demo "${file_args[@]}" --listing-in "$work/listing-fresh.json" --expect ok --max-seconds 5
on_ok expect_eq "hub down + cache: nothing downloaded" "$(field bytes_downloaded)" "0"
on_ok expect_eq "hub down + cache: refs/main unchanged" "$(refs_main "$(hf_dir "$c1")")" "$commit1"

finish
