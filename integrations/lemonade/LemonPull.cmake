# LemonPull.cmake: builds lemon-pull's static library with cargo (or imports an installed one) and
# attaches it, with the C++ bridge, to a target of the including project. lemonade's CMakeLists.txt
# includes it (see lemonade-e385039.patch):
#
#   option(LEMONADE_USE_LEMON_PULL "..." ON)
#   set(LEMON_PULL_SOURCE_DIR <lemon-pull checkout> CACHE PATH "...")
#   include(${LEMON_PULL_SOURCE_DIR}/integrations/lemonade/LemonPull.cmake)
#   lemon_pull_attach(lemonade-server-core)
#
# LEMONADE_USE_LEMON_PULL
#   ON  (default): `cargo rustc --locked --profile ${LEMON_PULL_CARGO_PROFILE} --lib
#       --crate-type staticlib` in
#       LEMON_PULL_SOURCE_DIR at build time (cargo decides what is stale; a no-op build is quick),
#       into LEMON_PULL_CARGO_TARGET_DIR; imported as lemon_pull::lemon_pull.
#   OFF: find_package(lemon_pull CONFIG REQUIRED): a prebuilt library of the same version
#       (ffi-tests/gen-pc.sh PREFIX --install writes it; point CMAKE_PREFIX_PATH at PREFIX).
#   Either way the bridge (lemon_pull_download.cpp) is compiled from LEMON_PULL_SOURCE_DIR.
#
# Platforms:
#   Linux     verified here (Debian 12, gcc 12): host target, system libraries from
#             `cargo rustc --lib --crate-type staticlib -- --print native-static-libs`.
#   Windows   MSVC, NOT VERIFIED HERE: built for x86_64/aarch64-pc-windows-msvc with
#             `-C target-feature=+crt-static`, because lemonade links the static CRT
#             (CMAKE_MSVC_RUNTIME_LIBRARY MultiThreaded[Debug]). See README.md, "Windows".
#   macOS     NOT VERIFIED HERE: one cargo build per entry of CMAKE_OSX_ARCHITECTURES, joined with
#             `lipo -create` when there are two (a universal lemond). See README.md, "macOS".
#
# Cache variables: LEMON_PULL_CARGO_PROFILE (dist), LEMON_PULL_CARGO (cargo from PATH),
# LEMON_PULL_CARGO_TARGET_DIR (${CMAKE_BINARY_DIR}/lemon-pull-target), LEMON_PULL_NATIVE_LIBS
# (override the system libraries, a CMake list).

include_guard(GLOBAL)

set(_lemon_pull_here "${CMAKE_CURRENT_LIST_DIR}")
get_filename_component(_lemon_pull_root "${_lemon_pull_here}/../.." ABSOLUTE)

set(LEMON_PULL_CARGO_PROFILE "dist" CACHE STRING
    "cargo profile of lemon-pull's static library (dist: optimised for size, stripped)")
set(LEMON_PULL_CARGO_TARGET_DIR "${CMAKE_BINARY_DIR}/lemon-pull-target" CACHE PATH
    "CARGO_TARGET_DIR of the cargo build (share one with other builds of the same checkout)")
set(LEMON_PULL_NATIVE_LIBS "" CACHE STRING
    "System libraries lemon-pull needs (CMake list); empty = the per-platform default below")

# Verified here (check.sh compares it with rustc's list): x86_64-unknown-linux-gnu, rustc 1.95
# prints -lc -lm -lrt -lpthread (asked for by dependencies) -lgcc_s -lutil -lrt -lpthread -lm
# -ldl -lc (the standard library's); the repeats are rustc's and harmless.
set(_lemon_pull_linux_libs c m rt pthread gcc_s util rt pthread m dl c)

# The system libraries rustc names for the static library (--print native-static-libs).
function(_lemon_pull_native_libs out)
    if(LEMON_PULL_NATIVE_LIBS)
        set(${out} "${LEMON_PULL_NATIVE_LIBS}" PARENT_SCOPE)
    elseif(MSVC)
        # Not verified here. rustc's list for a std staticlib on *-pc-windows-msvc is
        # kernel32 advapi32 ntdll userenv ws2_32 dbghelp (+ /defaultlib:msvcrt, which +crt-static
        # turns into libcmt); rustls' platform verifier and the Windows crates it uses reach
        # crypt32, secur32, ncrypt and bcrypt. Unused import libraries cost nothing with MSVC's
        # linker, so the list is the union. Check with the command in README.md, "Windows".
        set(${out} kernel32 advapi32 ntdll userenv ws2_32 dbghelp bcrypt crypt32 secur32 ncrypt
            PARENT_SCOPE)
    elseif(APPLE)
        # Not verified here: libSystem (c, m, pthread) plus the frameworks of rustls' platform
        # verifier (Security, CoreFoundation).
        set(${out} "-framework Security" "-framework CoreFoundation" System c m PARENT_SCOPE)
    else()
        set(${out} ${_lemon_pull_linux_libs} PARENT_SCOPE)
    endif()
endfunction()

# Rust target triples to build: empty = the host (no --target).
function(_lemon_pull_triples out)
    set(triples "")
    if(MSVC)
        if(CMAKE_GENERATOR_PLATFORM MATCHES "^(ARM64|arm64)$" OR CMAKE_SYSTEM_PROCESSOR MATCHES "^(ARM64|arm64|aarch64)$")
            set(triples aarch64-pc-windows-msvc)
        else()
            set(triples x86_64-pc-windows-msvc)
        endif()
    elseif(APPLE AND CMAKE_OSX_ARCHITECTURES)
        foreach(arch IN LISTS CMAKE_OSX_ARCHITECTURES)
            if(arch STREQUAL "arm64")
                list(APPEND triples aarch64-apple-darwin)
            elseif(arch STREQUAL "x86_64")
                list(APPEND triples x86_64-apple-darwin)
            else()
                message(FATAL_ERROR "lemon-pull: no Rust target for CMAKE_OSX_ARCHITECTURES entry '${arch}'")
            endif()
        endforeach()
    endif()
    set(${out} "${triples}" PARENT_SCOPE)
endfunction()

function(_lemon_pull_build_with_cargo)
    if(TARGET lemon_pull::lemon_pull)
        return()
    endif()
    find_program(LEMON_PULL_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin")
    if(NOT LEMON_PULL_CARGO)
        message(FATAL_ERROR "lemon-pull: cargo not found (install Rust, or configure with "
                            "-DLEMONADE_USE_LEMON_PULL=OFF and a prebuilt lemon_pull package)")
    endif()
    if(NOT EXISTS "${_lemon_pull_root}/Cargo.toml")
        message(FATAL_ERROR "lemon-pull: no Cargo.toml in ${_lemon_pull_root}")
    endif()

    set(profile "${LEMON_PULL_CARGO_PROFILE}")
    # `cargo rustc --crate-type staticlib` rather than `cargo build`: the crate is also an rlib,
    # and Cargo skips LTO when it builds both, which costs the dist profile its size gain. The
    # build log shows rustc's list of system libraries ("native-static-libs: ..."; Cargo replays
    # it on no-op builds) to compare with _lemon_pull_native_libs on a new platform.
    # cargo's output folder is named after the profile, except for its two built-in ones.
    if(profile STREQUAL "dev")
        set(profile_dir debug)
    else()
        set(profile_dir "${profile}")
    endif()
    set(target_dir "${LEMON_PULL_CARGO_TARGET_DIR}")
    if(MSVC)
        set(lib_name lemon_pull.lib)
    else()
        set(lib_name liblemon_pull.a)
    endif()

    _lemon_pull_triples(triples)
    set(env "CARGO_TARGET_DIR=${target_dir}")
    if(APPLE AND CMAKE_OSX_DEPLOYMENT_TARGET)
        list(APPEND env "MACOSX_DEPLOYMENT_TARGET=${CMAKE_OSX_DEPLOYMENT_TARGET}")
    endif()
    set(commands "")
    set(outputs "")
    if(NOT triples)
        list(APPEND commands COMMAND ${CMAKE_COMMAND} -E env ${env}
             "${LEMON_PULL_CARGO}" rustc --locked --profile "${profile}" --lib --crate-type staticlib
             --manifest-path "${_lemon_pull_root}/Cargo.toml" -- --print=native-static-libs)
        list(APPEND outputs "${target_dir}/${profile_dir}/${lib_name}")
    endif()
    foreach(triple IN LISTS triples)
        set(triple_env ${env})
        if(triple MATCHES "windows-msvc$")
            # lemonade links the static CRT; the Rust side (std and the C code of ring, built by
            # the cc crate, which follows crt-static) must too. Per target, so build scripts and
            # proc macros (host code) keep their defaults.
            string(TOUPPER "${triple}" triple_upper)
            string(REPLACE "-" "_" triple_upper "${triple_upper}")
            list(APPEND triple_env "CARGO_TARGET_${triple_upper}_RUSTFLAGS=-Ctarget-feature=+crt-static")
        endif()
        list(APPEND commands COMMAND ${CMAKE_COMMAND} -E env ${triple_env}
             "${LEMON_PULL_CARGO}" rustc --locked --profile "${profile}" --lib --crate-type staticlib
             --target "${triple}" --manifest-path "${_lemon_pull_root}/Cargo.toml"
             -- --print=native-static-libs)
        list(APPEND outputs "${target_dir}/${triple}/${profile_dir}/${lib_name}")
    endforeach()

    list(LENGTH outputs count)
    if(count GREATER 1)
        # A universal macOS library: one archive holding both slices.
        set(library "${target_dir}/universal/${profile_dir}/${lib_name}")
        list(APPEND commands
             COMMAND ${CMAKE_COMMAND} -E make_directory "${target_dir}/universal/${profile_dir}"
             COMMAND lipo -create -output "${library}" ${outputs})
    else()
        set(library "${outputs}")
    endif()

    # Always run: cargo knows what changed (sources, Cargo.lock, profile) and returns at once when
    # nothing did, as Corrosion's build targets do.
    add_custom_target(lemon_pull_cargo ALL ${commands}
        BYPRODUCTS "${library}"
        WORKING_DIRECTORY "${_lemon_pull_root}"
        COMMENT "cargo build lemon-pull (${profile})"
        VERBATIM)

    _lemon_pull_native_libs(native)
    add_library(lemon_pull::lemon_pull STATIC IMPORTED GLOBAL)
    set_target_properties(lemon_pull::lemon_pull PROPERTIES
        IMPORTED_LOCATION "${library}"
        INTERFACE_INCLUDE_DIRECTORIES "${_lemon_pull_root}/include"
        INTERFACE_LINK_LIBRARIES "${native}")
    if(MSVC)
        # The Rust objects ask for libcmt (release static CRT); a Debug build of lemonade links
        # libcmtd. Let the debug CRT win instead of warning LNK4098 about both. Not verified here.
        set_property(TARGET lemon_pull::lemon_pull APPEND PROPERTY
            INTERFACE_LINK_OPTIONS "$<$<CONFIG:Debug>:/NODEFAULTLIB:libcmt.lib>")
    endif()
    add_dependencies(lemon_pull::lemon_pull lemon_pull_cargo)
endfunction()

# Compiles the bridge into `target` and links lemon_pull::lemon_pull to it (PUBLIC, so an OBJECT
# library such as lemonade-server-core hands it to the executables that link it).
function(lemon_pull_attach target)
    if(LEMONADE_USE_LEMON_PULL OR NOT DEFINED LEMONADE_USE_LEMON_PULL)
        _lemon_pull_build_with_cargo()
    else()
        find_package(lemon_pull CONFIG REQUIRED)
    endif()
    target_sources(${target} PRIVATE "${_lemon_pull_here}/lemon_pull_download.cpp")
    target_include_directories(${target} PRIVATE "${_lemon_pull_here}")
    target_link_libraries(${target} PUBLIC lemon_pull::lemon_pull)
endfunction()
