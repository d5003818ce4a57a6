// lemon_pull_download.h: the bridge between lemonade's ModelManager::download_from_registry and
// the lemon_pull C API (include/lemon_pull.h). Part of lemon-pull (integrations/lemonade/), compiled
// into lemonade's server; C++17, depends only on lemonade's public headers and the C API.
//
// lemonade keeps listing the repositories and selecting the files (its rules depend on the backend
// recipe). It hands the result here: the registry, the cache root, the token from its auth headers,
// and per repository the snapshot it listed and the exact files with their sizes and content ids.
// One call to lemon_resume_pull then downloads, resumes, salvages across snapshot folders, verifies
// and writes refs/main; lemonade writes .lemonade_registry.json and its final "complete" event.
//
// Threading: download() blocks on the calling thread; lemonade's callback is called on that thread
// only, serially, and never after download() returns (the library's guarantee, passed through).

#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <lemon/model_registry.h>

namespace lemon {

struct DownloadProgress;  // lemon/model_manager.h
using DownloadProgressCallback = std::function<bool(const DownloadProgress&)>;

namespace lemon_pull {

// One exact repository file. Sizes and content ids are what lemonade's listing reported; the
// library still verifies every byte against them.
struct File {
    std::string path;          // repo-relative, UTF-8, no glob meaning
    std::uint64_t size = 0;
    bool size_known = false;   // false: the library lists the size itself
    std::string sha256;        // 64 hex or ""
    std::string git_sha1;      // 40 hex git blob id or ""
};

struct Repository {
    std::string repo_id;       // "org/name"
    std::string revision;      // ref lemonade reads afterwards ("main"); "" = registry default
    std::string snapshot_id;   // pin: HF commit / ModelScope tree fingerprint; "" = resolve revision
    std::vector<File> files;   // non-empty
};

struct Request {
    RemoteRegistrySource source = RemoteRegistrySource::HuggingFace;
    std::string cache_dir;     // lemonade's get_hf_cache_dir(); the library reads no HF_* variable
    std::string endpoint;      // "" = https://huggingface.co or https://modelscope.cn
    std::string token;         // "" = anonymous (never read from the environment by the library)
    std::string proxy;         // "" = direct
    std::string ca_bundle;     // "" = the operating system's trust store
    std::vector<Repository> repositories;  // [0] is the main repository
    // lemonade's HF behaviour (#2066): when every selected file is unchanged at the new commit,
    // refs/main stays on the previous complete snapshot and no new folder is made.
    bool keep_unchanged_snapshot = false;
    // An unreachable hub answers from a complete cached snapshot instead of failing.
    bool cache_fallback = true;
    std::uint32_t connections = 0;          // per file; 0 = auto (the C default), 1 = one stream
    std::uint64_t max_bytes_per_sec = 0;    // 0 = unlimited
    // Polled on every library event (at least every 250 ms): lemonade's SIGINT flag
    // (utils::g_download_cancelled). May be null.
    const std::atomic<bool>* stop = nullptr;
    // Receives one line per notable library event (retry, salvage, lock wait, cache answer...).
    std::function<void(const std::string&)> log;
};

struct RepositoryOutcome {
    std::string repo_id;
    std::string snapshot_id;         // the snapshot that was asked for (lemonade's listing)
    std::string active_snapshot_id;  // what refs/main names now (the previous one when kept)
    std::string snapshot_path;       // <cache>/<repo dir>/snapshots/<active_snapshot_id>
    bool kept_previous_snapshot = false;
};

struct Outcome {
    std::vector<RepositoryOutcome> repositories;  // same order as Request::repositories
    bool from_cache = false;     // the hub was unreachable; a complete cached snapshot answered
    bool hash_verified = true;   // false: some file had no content id and was only size-checked
    std::uint64_t bytes_downloaded = 0;
    std::uint64_t bytes_reused = 0;
    std::uint64_t bytes_salvaged = 0;
    std::uint64_t total_bytes = 0;
};

// Builds the request exactly as download_from_registry does after its selection: the main
// repository first, then the other repositories in lemonade's (std::map) order, each with at least
// one selected file (none at all: runtime_error "No files selected ..."), each pinned to the
// snapshot lemonade listed, with the selected files' sizes and hashes. `auth_headers` is
// registry.auth_headers(): the token is the "Authorization: Bearer" value.
Request make_request(RemoteRegistrySource source,
                     const std::string& cache_dir,
                     const std::string& endpoint,
                     const std::map<std::string, std::string>& auth_headers,
                     const std::string& main_repo_id,
                     const std::map<std::string, RegistryRepository>& repositories,
                     const std::map<std::string, std::vector<std::string>>& files_to_download);

// The bearer token of lemonade's auth headers, or "" (header names compared case-insensitively).
std::string token_from_auth_headers(const std::map<std::string, std::string>& auth_headers);

// Pulls every repository of `request`. Progress reaches `progress` as lemonade's DownloadProgress
// (per-file start, transfer and "already present" events, plus heartbeats while idle; never the
// final complete event, which stays lemonade's). Returning false from it cancels.
//
// Throws:
//  - std::runtime_error("Download cancelled") when the callback or `stop` cancelled;
//  - whatever the callback threw, rethrown unchanged after the library returned;
//  - RegistryNotFoundError when the repository is missing, gated or the token is rejected;
//  - std::runtime_error with the library's message for every other failure.
Outcome download(const Request& request, const DownloadProgressCallback& progress);

}  // namespace lemon_pull
}  // namespace lemon
