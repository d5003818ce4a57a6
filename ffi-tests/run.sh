#!/usr/bin/env bash
# Builds liblemon_pull.a and checks the C ABI from the outside:
#  - the committed header matches a fresh cbindgen run (drift), uses only lemon_ names, and
#    compiles on its own and included twice as C99, C11 and C++17 (-Wall -Wextra -Werror -pedantic);
#  - every lemon_* function the static library defines is declared in the header, and vice versa;
#  - test_c.c (C99) and test_cpp.cpp (C++17), built with AddressSanitizer + UBSan, run against the
#    mock hub: argument checks, cancel from the callback and from the flag, resume, result strings,
#    free twice, concurrent pulls, multi-repo components, an options struct cut short;
#  - example.c builds with the documented command and through pkg-config (gen-pc.sh), and runs;
#  - with --valgrind, test_c without sanitizers under Valgrind (leaks, reads past struct_size).
#
#   ffi-tests/run.sh [--release] [--valgrind] [--no-header-drift] [--keep]
#
# Only the C/C++ side is instrumented: the Rust library is the normal static library (no
# -Zsanitizer, no nightly). gcc's ASan intercepts malloc/free process-wide, so leaks and bad frees
# of library-owned memory still show up.
#
# Needs: cargo, gcc, g++ (Debian's gcc/g++ bring libasan and libubsan), binutils (nm), curl,
# pkg-config, and cbindgen 0.29.4 (cargo install cbindgen --version 0.29.4 --locked) unless
# --no-header-drift; valgrind for --valgrind; clang/clang++ are used for the header checks when
# present. Prints PASS/FAIL lines and ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

profile=debug
valgrind=0
header_drift=1
keep=0
for arg in "$@"; do
    case $arg in
        --release) profile=release ;;
        --valgrind) valgrind=1 ;;
        --no-header-drift) header_drift=0 ;;
        --keep) keep=1 ;;
        *) echo "usage: ffi-tests/run.sh [--release] [--valgrind] [--no-header-drift] [--keep]" >&2; exit 2 ;;
    esac
done
profile_flag=()
[ "$profile" = release ] && profile_flag=(--release)

CBINDGEN_VERSION=0.29.4
MODEL_BYTES=8388608   # each GGUF of the generated demo model: 8 MiB
SLOW_BPS=4000000      # hub rate while a cancel test runs: the GGUF takes about 2 s
WARN_FLAGS=(-Wall -Wextra -Werror -pedantic)
SAN_FLAGS=(-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

work=$(mktemp -d "${TMPDIR:-/tmp}/lemon-ffi-tests.XXXXXX")
bin=$work/bin
mkdir -p "$bin"
hub_pid=""
passed=0
failed=0

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
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
fatal() { fail "$1" "${2:-}"; finish; }

# check NAME CMD...: one check from a command's exit status (its output shown only on failure).
check() {
    local name=$1 log=$work/check.log
    shift
    if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/    /' "$log" | head -n 40; fi
}

# run_program NAME CMD...: runs a test program, counting its PASS/FAIL lines; a crash or a
# sanitizer report without a FAIL line counts as one failure.
run_program() {
    local name=$1 log=$work/program.log status p f
    shift
    "$@" >"$log" 2>&1
    status=$?
    cat "$log"
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then fail "$name" "exited with status $status"; fi
    if [ "$status" -eq 0 ] && [ "$p" -eq 0 ]; then fail "$name" "ran no check"; fi
}

# ---------------------------------------------------------------------------------------------
echo "== build ($profile)"
cargo build -q "${profile_flag[@]}" --lib || fatal "cargo build --lib"
cargo build -q "${profile_flag[@]}" -p mock-hub || fatal "cargo build -p mock-hub"
lib=target/$profile/liblemon_pull.a
[ -f "$lib" ] || fatal "static library" "$lib missing"
# Cargo replays the cached note when nothing changed, so this costs nothing after the first run.
native_libs=$(cargo rustc -q "${profile_flag[@]}" --lib --crate-type staticlib -- --print native-static-libs 2>&1 \
    | sed -n 's/.*native-static-libs: //p' | tail -n 1)
[ -n "$native_libs" ] || fatal "native-static-libs" "rustc printed none"
echo "native libs: $native_libs"
read -r -a native <<<"$native_libs"

# ---------------------------------------------------------------------------------------------
echo "== header"
if [ "$header_drift" = 1 ]; then
    if ! command -v cbindgen >/dev/null; then
        fail "header drift" "cbindgen not found: cargo install cbindgen --version $CBINDGEN_VERSION --locked"
    elif [ "$(cbindgen --version)" != "cbindgen $CBINDGEN_VERSION" ]; then
        fail "header drift" "$(cbindgen --version) found, $CBINDGEN_VERSION needed (formatting differs between versions)"
    elif ! cbindgen --config cbindgen.toml --output "$work/lemon_pull.h" >"$work/cbindgen.log" 2>&1; then
        fail "header drift" "cbindgen failed: $(grep -v '^WARN' "$work/cbindgen.log" | head -n 5)"
    elif diff -u include/lemon_pull.h "$work/lemon_pull.h" >"$work/drift.diff"; then
        pass "header drift: include/lemon_pull.h is what cbindgen generates"
    else
        fail "header drift" "regenerate with: cbindgen --config cbindgen.toml --output include/lemon_pull.h"
        head -n 60 "$work/drift.diff"
    fi
fi

# The header without comments (nothing else expanded): the base of the name checks.
gcc -fpreprocessed -dD -E -P -x c include/lemon_pull.h >"$work/header.i" 2>/dev/null \
    || fatal "strip header comments"
bad_names=$(grep -oE '\b(enum|struct) [A-Za-z_][A-Za-z0-9_]*' "$work/header.i" | awk '$2 !~ /^lemon_/' | sort -u)
bad_names+=$(grep -oE '^\s+[A-Z][A-Z0-9_]* =' "$work/header.i" | awk '$1 !~ /^LEMON_/' | sort -u)
if [ -z "$bad_names" ]; then
    pass "header names: every type and constant is lemon_/LEMON_ prefixed"
else
    fail "header names" "unprefixed: $(echo "$bad_names" | tr '\n' ' ')"
fi

printf '#include "lemon_pull.h"\n' >"$work/one.c"
printf '#include "lemon_pull.h"\n#include "lemon_pull.h"\nint lemon_test_a(void);\nint lemon_test_a(void) { return LEMON_STATUS_OK; }\n' >"$work/a.c"
printf '#include "lemon_pull.h"\n#include "lemon_pull.h"\nint lemon_test_a(void);\nint main(void) { lemon_status s = LEMON_STATUS_CANCELLED; return lemon_test_a() + (int)s - 1; }\n' >"$work/b.c"
cp "$work/one.c" "$work/one.cpp"
cp "$work/a.c" "$work/a.cpp"
cp "$work/b.c" "$work/b.cpp"
header_check() { # COMPILER STD LANG-EXT [EXTRA FLAGS...]
    local cc=$1 std=$2 ext=$3
    shift 3
    check "header alone: $cc -std=$std" "$cc" "-std=$std" "${WARN_FLAGS[@]}" "$@" -Iinclude -c "$work/one.$ext" -o "$work/one.o"
    check "header twice, two units linked: $cc -std=$std" "$cc" "-std=$std" "${WARN_FLAGS[@]}" "$@" -Iinclude \
        "$work/a.$ext" "$work/b.$ext" -o "$work/double"
}
header_check gcc c99 c -Wstrict-prototypes
header_check gcc c11 c -Wstrict-prototypes
header_check g++ c++17 cpp
header_check g++ c++20 cpp
if command -v clang >/dev/null; then header_check clang c99 c -Wstrict-prototypes; fi
if command -v clang++ >/dev/null; then header_check clang++ c++17 cpp; fi

# ---------------------------------------------------------------------------------------------
echo "== symbols"
nm -g --defined-only "$lib" 2>/dev/null | awk '$2 == "T" && $3 ~ /^lemon_/ { print $3 }' | sort -u >"$work/exported"
grep -oE '\blemon_[a-z0-9_]+ *\(' "$work/header.i" | tr -d ' (' | sort -u >"$work/declared"
if [ ! -s "$work/exported" ]; then
    fail "symbols" "no lemon_* function defined in $lib"
elif ! diff <(cat "$work/exported") <(cat "$work/declared") >"$work/symbols.diff"; then
    fail "symbols: exported == declared" "< only in the library, > only in the header"
    cat "$work/symbols.diff"
else
    pass "symbols: the $(wc -l <"$work/exported") lemon_* functions of the library are exactly those of the header"
fi

# ---------------------------------------------------------------------------------------------
echo "== compile test programs"
link=("$lib" "${native[@]}" -pthread)
check "compile test_c.c (C99, ASan+UBSan)" gcc -std=c99 "${WARN_FLAGS[@]}" "${SAN_FLAGS[@]}" -Iinclude \
    ffi-tests/test_c.c "${link[@]}" -o "$bin/test_c"
check "compile test_cpp.cpp (C++17, ASan+UBSan)" g++ -std=c++17 "${WARN_FLAGS[@]}" "${SAN_FLAGS[@]}" -Iinclude \
    ffi-tests/test_cpp.cpp "${link[@]}" -o "$bin/test_cpp"
# The command README.md shows, as is: its hard-coded system libraries are rustc's current list.
check "README's link lines name rustc's native-static-libs" \
    test "$(grep -cF -- "$native_libs -o" README.md)" -ge 2
check "compile example.c with the documented command" cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 \
    -Iinclude ffi-tests/example.c "$lib" "${native[@]}" -o "$bin/example"
[ -x "$bin/test_c" ] && [ -x "$bin/test_cpp" ] || fatal "test programs" "did not build"
check "sanitizers are linked in" sh -c "nm '$bin/test_c' | grep -q __asan_init && nm '$bin/test_cpp' | grep -q __ubsan_handle"

# ---------------------------------------------------------------------------------------------
echo "== mock hub"
"target/$profile/mock-hub" --repo local/demo --generate "$MODEL_BYTES" "$work/model" >"$work/hub.log" 2>&1 &
hub_pid=$!
hub_line=""
for _ in $(seq 1 300); do
    hub_line=$(grep -m1 '^mock-hub listening on' "$work/hub.log")
    [ -n "$hub_line" ] && break
    kill -0 "$hub_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$hub_line" ] || fatal "mock hub start" "$(cat "$work/hub.log")"
echo "$hub_line"
endpoint=$(sed -n 's/^mock-hub listening on \([^ ]*\) .*/\1/p' <<<"$hub_line")
commit=$(sed -n 's/.*commit \([0-9a-f]\{40\}\)).*/\1/p' <<<"$hub_line")
commit2=$(curl -fsS -X POST "$endpoint/admin/commit?repo=local/demo2" | sed -n 's/.*"sha":"\([0-9a-f]\{40\}\)".*/\1/p')
[ -n "$endpoint" ] && [ -n "$commit" ] && [ -n "$commit2" ] || fatal "mock hub setup" "endpoint=$endpoint commit=$commit commit2=$commit2"

export LEMON_TEST_ENDPOINT=$endpoint LEMON_TEST_REPO=local/demo LEMON_TEST_REPO2=local/demo2
export LEMON_TEST_COMMIT=$commit LEMON_TEST_COMMIT2=$commit2
export LEMON_TEST_FILE=model-Q4_K_M.gguf LEMON_TEST_FILE_SIZE=$MODEL_BYTES
# Keep the user's Hugging Face settings out of the programs that read the environment.
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_ENDPOINT
export HF_HOME=$work/hf-home HF_TOKEN_PATH=$work/no-token
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

hub_rate() { curl -fsS -o /dev/null -X POST "$endpoint/admin/rate?bps=$1" || fail "hub rate $1"; }

# ---------------------------------------------------------------------------------------------
suite() { # PROGRAM PHASES...: every phase with a fresh cache; cancel phases on a slowed hub.
    local program=$1 phase cache
    shift
    for phase in "$@"; do
        echo "== $program $phase"
        case $phase in
            args) run_program "$program args" "$bin/$program" args ;;
            cancel-cb | cancel-flag)
                cache=$work/cache-$program-$phase
                hub_rate "$SLOW_BPS"
                run_program "$program $phase" "$bin/$program" "$phase" "$cache"
                hub_rate 0
                echo "== $program resume after $phase"
                run_program "$program resume after $phase" "$bin/$program" resume "$cache"
                ;;
            *) run_program "$program $phase" "$bin/$program" "$phase" "$work/cache-$program-$phase" ;;
        esac
    done
}
suite test_c args errors cancel-cb cancel-flag concurrent components oldstruct

# Cancel from the callback alone while the call waits: a silent stall, a Retry-After wait, a lock.
hub_fault() { curl -fsS -o /dev/null -X POST "$endpoint/admin/fault?$1" || fail "hub fault $1"; }
echo "== test_c stall-cancel"
hub_fault "target=anyfile&kind=stall&bytes=1048576&ms=30000"
run_program "test_c stall-cancel" "$bin/test_c" stall-cancel "$work/cache-test_c-stall-cancel"
echo "== test_c backoff-cancel"
curl -fsS -o /dev/null -X POST "$endpoint/admin/reset" || fail "hub reset"
hub_fault "target=api&kind=status&code=429&retry_after=30"
run_program "test_c backoff-cancel" "$bin/test_c" backoff-cancel "$work/cache-test_c-backoff-cancel"
curl -fsS -o /dev/null -X POST "$endpoint/admin/reset" || fail "hub reset"
echo "== test_c unreachable"
run_program "test_c unreachable" "$bin/test_c" unreachable "$work/cache-test_c-unreachable"
echo "== test_c lock-cancel"
run_program "test_c lock-cancel" "$bin/test_c" lock-cancel "$work/cache-test_c-lock-cancel"

# Hermetic calls: what the hub received decides whether HF_TOKEN was sent.
hub_tokens() { curl -fsS "$endpoint/admin/requests" | grep -o '"authorization":"[^"]*"' | sort -u; }
curl -fsS -o /dev/null -X POST "$endpoint/admin/reset" || fail "hub reset"
echo "== test_c hermetic"
run_program "test_c hermetic" "$bin/test_c" hermetic "$work/cache-test_c-hermetic"
check "without the flag no request carried HF_TOKEN" test -z "$(hub_tokens)"
curl -fsS -o /dev/null -X POST "$endpoint/admin/reset" || fail "hub reset"
echo "== test_c environment"
run_program "test_c environment" "$bin/test_c" environment "$work/cache-test_c-environment"
check "with the flag the API calls carried HF_TOKEN" \
    test "$(hub_tokens)" = '"authorization":"Bearer hf_from_the_environment"'
suite test_cpp args cancel-cb cancel-flag concurrent

# ---------------------------------------------------------------------------------------------
echo "== example"
example_run() { # NAME BINARY CACHE [TEXT EXPECTED ON STDERR]
    local out
    if out=$(HF_ENDPOINT=$endpoint HF_HUB_CACHE=$3 "$2" local/demo Q8_0 2>"$work/example.err") \
        && [ -f "$out/model-Q8_0.gguf" ] && [ ! -e "$out/model-Q4_K_M.gguf" ] \
        && grep -qF "${4:-}" "$work/example.err"; then
        pass "$1"
    else
        fail "$1" "printed '$out'; $(tail -n 3 "$work/example.err")"
    fi
}
example_run "example pulls a variant" "$bin/example" "$work/cache-example"
# The example in the README is example.c, verbatim.
check "README.md has a 'Using from C/C++' section" grep -q '^## Using from C/C++' README.md
awk '/^### A minimal program/ { section = 1 } section && /^```c$/ { code = 1; next }
     code && /^```$/ { exit } code { print }' README.md >"$work/doc-example.c"
check "README.md shows ffi-tests/example.c verbatim" diff -u ffi-tests/example.c "$work/doc-example.c"
prefix=$work/prefix
if LEMON_PROFILE=$profile ffi-tests/gen-pc.sh "$prefix" --install >"$work/gen-pc.log" 2>&1; then
    pass "gen-pc.sh installs header, library and lemon_pull.pc"
    pc_flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --static --cflags --libs lemon_pull)
    echo "pkg-config --static --cflags --libs lemon_pull: $pc_flags"
    read -r -a pc <<<"$pc_flags"
    check "lemon_pull.pc Libs.private are rustc's native-static-libs" \
        grep -qxF "Libs.private: $native_libs" "$prefix/lib/pkgconfig/lemon_pull.pc"
    check "compile example.c through pkg-config" cc -std=c99 "${WARN_FLAGS[@]}" ffi-tests/example.c "${pc[@]}" \
        -o "$bin/example-pc"
    [ -x "$bin/example-pc" ] && example_run "example (pkg-config build) reuses the pulled files" \
        "$bin/example-pc" "$work/cache-example" " 0 bytes downloaded"
    if command -v cmake >/dev/null; then
        check "build example.c through the CMake package (find_package(lemon_pull))" sh -c \
            "cmake -S ffi-tests/cmake -B '$work/cmake-build' -DCMAKE_PREFIX_PATH='$prefix' >'$work/cmake.log' 2>&1 \
             && cmake --build '$work/cmake-build' >>'$work/cmake.log' 2>&1"
        [ -x "$work/cmake-build/example" ] && example_run "example (CMake build) reuses the pulled files" \
            "$work/cmake-build/example" "$work/cache-example" " 0 bytes downloaded"
    else
        fail "CMake package" "cmake is not installed (apt-get install cmake)"
    fi
else
    fail "gen-pc.sh" "$(tail -n 5 "$work/gen-pc.log")"
fi

# ---------------------------------------------------------------------------------------------
if [ "$valgrind" = 1 ]; then
    echo "== valgrind"
    if ! command -v valgrind >/dev/null; then
        fail "valgrind" "not installed (apt-get install valgrind)"
    elif check "compile test_c.c without sanitizers" gcc -std=c99 "${WARN_FLAGS[@]}" -g -O0 -Iinclude \
        ffi-tests/test_c.c "${link[@]}" -o "$bin/test_c_plain"; then
        vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible --quiet
            --suppressions=ffi-tests/valgrind.supp)
        for phase in args oldstruct components; do
            run_program "valgrind test_c $phase" "${vg[@]}" "$bin/test_c_plain" "$phase" "$work/cache-valgrind-$phase"
        done
    fi
fi

echo "== test_c modelscope"
run_program "test_c modelscope" "$bin/test_c" modelscope "$work/cache-test_c-modelscope"

# Last, as it moves local/demo's main: a pinned pull still gets the commit it asked for.
echo "== test_c pinned"
curl -fsS -o /dev/null -X POST "$endpoint/admin/commit?repo=local/demo" || fail "move main"
run_program "test_c pinned" "$bin/test_c" pinned "$work/cache-test_c-pinned"
echo "== test_c keep"
run_program "test_c keep" "$bin/test_c" keep "$work/cache-test_c-pinned"

finish
