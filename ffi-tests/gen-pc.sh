#!/usr/bin/env bash
# Writes lemon_pull.pc and lemon_pull-config.cmake (from packaging/*.in) for a library installed
# under PREFIX, with the exact system libraries rustc reports (--print native-static-libs).
#
#   ffi-tests/gen-pc.sh PREFIX [--install]
#
# Writes target/$PROFILE/lemon_pull.pc and lemon_pull-config.cmake and prints the .pc path. With
# --install it also builds the static library and copies it, the header and both files to
# PREFIX/lib, PREFIX/include, PREFIX/lib/pkgconfig and PREFIX/lib/cmake/lemon_pull. PROFILE is
# release unless LEMON_PROFILE=debug.
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
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs|" packaging/lemon_pull.pc.in > "$out"
# CMake wants the libraries as a list of names: "-lgcc_s -lutil" -> "gcc_s;util".
cmake_libs=$(echo "$libs" | sed -e 's/-l//g' -e 's/  */;/g')
cmake_out=target/$profile/lemon_pull-config.cmake
sed -e "s|@VERSION@|$version|" -e "s|@CMAKE_LIBS@|$cmake_libs|" packaging/lemon_pull-config.cmake.in > "$cmake_out"

if [ "$install" = "--install" ]; then
    cargo build -q "${profile_flag[@]}" --lib
    mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/lemon_pull" "$prefix/include"
    cp "target/$profile/liblemon_pull.a" "$prefix/lib/"
    cp include/lemon_pull.h "$prefix/include/"
    cp "$out" "$prefix/lib/pkgconfig/"
    cp "$cmake_out" "$prefix/lib/cmake/lemon_pull/"
elif [ -n "$install" ]; then
    echo "gen-pc.sh: unknown option $install" >&2
    exit 2
fi
echo "$out"
