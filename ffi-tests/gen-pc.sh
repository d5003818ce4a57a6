#!/usr/bin/env bash
# Writes lemon_pull.pc (from lemon_pull.pc.in) for a library installed under PREFIX, with the exact
# system libraries rustc reports for the static library (--print native-static-libs).
#
#   ffi-tests/gen-pc.sh PREFIX [--install]
#
# Writes target/$PROFILE/lemon_pull.pc and prints its path. With --install it also builds the
# static library and copies it, the header and the .pc file to PREFIX/lib, PREFIX/include and
# PREFIX/lib/pkgconfig. PROFILE is release unless LEMON_PROFILE=debug.
# Then: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --static --cflags --libs lemon_pull
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${1:?usage: gen-pc.sh PREFIX [--install]}
install=${2:-}
profile=${LEMON_PROFILE:-release}
case $profile in
    release) profile_flag=(--release) ;;
    debug) profile_flag=() ;;
    *) echo "gen-pc.sh: LEMON_PROFILE must be release or debug" >&2; exit 2 ;;
esac

# Cargo replays the cached note when nothing changed, so this is cheap after the first build.
libs=$(cargo rustc -q "${profile_flag[@]}" --lib --crate-type staticlib -- --print native-static-libs 2>&1 \
    | sed -n 's/.*native-static-libs: //p' | tail -n 1)
if [ -z "$libs" ]; then
    echo "gen-pc.sh: rustc did not report native-static-libs" >&2
    exit 1
fi
version=$(cargo pkgid | sed 's/.*[#@]//')

out=target/$profile/lemon_pull.pc
mkdir -p "target/$profile"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs|" lemon_pull.pc.in > "$out"

if [ "$install" = "--install" ]; then
    cargo build -q "${profile_flag[@]}" --lib
    mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
    cp "target/$profile/liblemon_pull.a" "$prefix/lib/"
    cp include/lemon_pull.h "$prefix/include/"
    cp "$out" "$prefix/lib/pkgconfig/"
elif [ -n "$install" ]; then
    echo "gen-pc.sh: unknown option $install" >&2
    exit 2
fi
echo "$out"
