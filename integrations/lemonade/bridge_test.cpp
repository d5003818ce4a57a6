// bridge_test.cpp: unit test of the bridge (lemon_pull_download.cpp) against a scripted stand-in
// for the C API, so the mapping is tested without a hub and whatever the library can do yet:
//   - make_request: lemonade's listing and selection -> pinned repositories with exact files;
//   - the options the bridge hands to lemon_resume_pull (struct sizes, flags, pins, token);
//   - progress -> lemonade's DownloadProgress sequence, heartbeats throttled, no complete event;
//   - status -> "Download cancelled" / RegistryNotFoundError / runtime_error, the callback's own
//     exception rethrown after the call, cancel by callback and by the SIGINT flag;
//   - the outcome: active snapshot, kept previous snapshot, size-only verification.
// check.sh builds it: g++ -std=c++17 bridge_test.cpp lemon_pull_download.cpp (lemonade's include
// paths), no liblemon_pull.a. Prints PASS/FAIL lines; exit 1 on any failure.

#include "lemon_pull_download.h"

#include <lemon/model_manager.h>
#include <lemon/model_registry.h>

#include "lemon_pull.h"
typedef lemon_pull_options lemon_pull_bridge_options;
typedef lemon_pull_result lemon_pull_bridge_result;

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using lemon::DownloadProgress;
using lemon::RegistryFile;
using lemon::RegistryRepository;
using lemon::RemoteRegistrySource;
namespace lp = lemon::lemon_pull;

// --- the stand-in library -------------------------------------------------------------------

struct lemon_pull_repos {
    std::vector<std::string> ids, commits, paths;
};

namespace fake {

// One scripted event: a progress struct to send, or a pause before the next one.
struct Step {
    lemon_progress_kind kind{};
    std::string file, message;
    uint32_t file_index = 0, total_files = 0;
    uint64_t done = 0, total = 0, offset = 0, total_bytes = 0;
    int32_t percent = 0;
    int sleep_ms = 0;
};

// What the next lemon_resume_pull does.
struct Script {
    std::vector<Step> steps;
    int32_t status = LEMON_STATUS_OK;
    std::string message;
    std::vector<std::string> repo_ids, commits, paths;  // the result's repositories
    uint32_t from_cache = 0, hash_verified = 1;
};

// What the last lemon_resume_pull was given (copied, since the strings are borrowed).
struct Seen {
    uint32_t struct_size = 0, flags = 0;
    std::string repo_id, revision, commit, token, endpoint, cache_dir;
    bool token_null = true;
    std::vector<std::string> files;
    std::vector<int64_t> sizes;
    std::vector<std::string> sha256, git_sha1;
    size_t repos_len = 0;
    std::vector<std::string> repo_ids, repo_commits, repo_revisions;
    std::vector<size_t> repo_files_len;
    uint32_t registry = 99;
    std::vector<int32_t> callback_returns;
};

Script script;
Seen seen;

std::string s(const char* p) { return p ? p : ""; }

}  // namespace fake

extern "C" {

void lemon_pull_options_init(lemon_pull_options* o) {
    if (!o) return;
    std::memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(lemon_pull_options);
    o->max_retries = 10;
}

lemon_status lemon_resume_pull(const lemon_pull_options* base, lemon_pull_result* out) {
    using namespace fake;
    const auto* o = static_cast<const lemon_pull_bridge_options*>(base);
    seen = Seen{};
    seen.struct_size = o->struct_size;
    seen.flags = o->flags;
    seen.repo_id = s(o->repo_id);
    seen.revision = s(o->revision);
    seen.token_null = o->token == nullptr;
    seen.token = s(o->token);
    seen.endpoint = s(o->endpoint);
    seen.cache_dir = s(o->cache_dir);
    seen.commit = s(o->commit);
    for (size_t i = 0; i < o->files_len; ++i) {
        seen.files.push_back(s(o->files[i].path));
        seen.sizes.push_back(o->files[i].size);
        seen.sha256.push_back(s(o->files[i].sha256));
        seen.git_sha1.push_back(s(o->files[i].git_sha1));
    }
    seen.repos_len = o->repos_len;
    for (size_t i = 0; i < o->repos_len; ++i) {
        seen.repo_ids.push_back(s(o->repos[i].repo_id));
        seen.repo_commits.push_back(s(o->repos[i].commit));
        seen.repo_revisions.push_back(s(o->repos[i].revision));
        seen.repo_files_len.push_back(o->repos[i].files_len);
    }
    seen.registry = o->registry;

    auto* r = static_cast<lemon_pull_bridge_result*>(out);
    r->struct_size = sizeof(lemon_pull_bridge_result);
    bool cancelled = false;
    for (const Step& step : script.steps) {
        if (step.sleep_ms) {
            std::this_thread::sleep_for(std::chrono::milliseconds(step.sleep_ms));
            continue;
        }
        lemon_progress p{};
        p.struct_size = sizeof(p);
        p.kind = step.kind;
        p.repo_id = o->repo_id;
        p.file = step.file.c_str();
        p.message = step.message.c_str();
        p.file_index = step.file_index;
        p.total_files = step.total_files;
        p.file_bytes_done = step.done;
        p.file_bytes_total = step.total;
        p.file_bytes_offset = step.offset;
        p.total_bytes = step.total_bytes;
        p.percent = step.percent;
        const int32_t ret = o->progress_cb ? o->progress_cb(o->user_data, &p) : 0;
        seen.callback_returns.push_back(ret);
        if (ret != 0 && static_cast<int32_t>(step.kind) != LEMON_PROGRESS_KIND_COMPLETE) {
            cancelled = true;
            break;
        }
    }
    if (cancelled) {
        r->status = LEMON_STATUS_CANCELLED;
        r->error_message = strdup("Download cancelled");
        return LEMON_STATUS_CANCELLED;
    }
    r->status = script.status;
    r->from_cache = script.from_cache;
    r->files_not_hash_verified = script.hash_verified ? 0 : 1;
    if (script.status != LEMON_STATUS_OK) {
        r->error_message = strdup(script.message.c_str());
        return static_cast<lemon_status>(script.status);
    }
    r->repos = new lemon_pull_repos{script.repo_ids, script.commits, script.paths};
    return LEMON_STATUS_OK;
}

void lemon_pull_result_free(lemon_pull_result* r) {
    if (!r) return;
    std::free(r->error_message);
    std::free(r->snapshot_path);
    std::free(r->commit);
    delete r->repos;
    r->error_message = r->snapshot_path = r->commit = nullptr;
    r->repos = nullptr;
}

size_t lemon_pull_result_repo_count(const lemon_pull_result* r) {
    return r && r->repos ? r->repos->ids.size() : 0;
}
const char* lemon_pull_result_repo_id(const lemon_pull_result* r, size_t i) {
    return r && r->repos && i < r->repos->ids.size() ? r->repos->ids[i].c_str() : nullptr;
}
const char* lemon_pull_result_repo_commit(const lemon_pull_result* r, size_t i) {
    return r && r->repos && i < r->repos->commits.size() ? r->repos->commits[i].c_str() : nullptr;
}
const char* lemon_pull_result_repo_snapshot_path(const lemon_pull_result* r, size_t i) {
    return r && r->repos && i < r->repos->paths.size() ? r->repos->paths[i].c_str() : nullptr;
}
const char* lemon_status_str(int32_t) { return "status"; }
const char* lemon_pull_version(void) { return "0.0.0-fake"; }

}  // extern "C"

// --- the test -------------------------------------------------------------------------------

namespace {

int g_failures = 0;

void check(const std::string& name, bool ok, const std::string& detail = "") {
    std::printf("%s bridge: %s%s%s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.empty() ? "" : " -- ",
                detail.c_str());
    if (!ok) ++g_failures;
}

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kAuxCommit = "89abcdef0123456789abcdef0123456789abcdef";
const std::string kPrevious = "fedcba9876543210fedcba9876543210fedcba98";
const std::string kSha = std::string(64, 'a');

RegistryFile listed(const std::string& path, uint64_t size, const std::string& alg, const std::string& hash,
                    bool dir = false) {
    RegistryFile f;
    f.path = path;
    f.size = size;
    f.hash_algorithm = alg;
    f.hash = hash;
    f.directory = dir;
    return f;
}

RegistryRepository repo(const std::string& id, const std::string& snapshot, const std::string& revision,
                        std::vector<RegistryFile> files) {
    RegistryRepository r;
    r.repo_id = id;
    r.snapshot_id = snapshot;
    r.revision = revision;
    r.files = std::move(files);
    return r;
}

// lemonade's view of one HF model: main repo with a variant + config, an aux file elsewhere.
lp::Request hf_request(const std::string& cache) {
    std::map<std::string, RegistryRepository> repos;
    repos.emplace("org/model", repo("org/model", kCommit, kCommit,
                                    {listed("model-Q4_K_M.gguf", 1000, "sha256", kSha),
                                     listed("config.json", 0, "", ""),
                                     listed("empty.txt", 0, "git-sha1", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
                                     listed("README.md", 10, "git-sha1", std::string(40, 'b'))}));
    repos.emplace("aaa/aux", repo("aaa/aux", kAuxCommit, kAuxCommit, {listed("vae.safetensors", 50, "sha256", kSha)}));
    std::map<std::string, std::vector<std::string>> files = {
        {"org/model", {"model-Q4_K_M.gguf", "config.json", "empty.txt"}},
        {"aaa/aux", {"vae.safetensors"}},
    };
    return lp::make_request(RemoteRegistrySource::HuggingFace, cache, "http://hub.invalid",
                            {{"authorization", "Bearer hf_secret"}}, "org/model", repos, files);
}

struct Recorder {
    std::vector<DownloadProgress> events;
    std::function<bool(const DownloadProgress&)> decide = [](const DownloadProgress&) { return true; };
    lemon::DownloadProgressCallback callback() {
        return [this](const DownloadProgress& p) {
            events.push_back(p);
            return decide(p);
        };
    }
};

fake::Step ev(int32_t kind, const std::string& file, uint32_t index, uint64_t done, uint64_t total,
              uint64_t offset = 0, const std::string& message = "") {
    fake::Step st;
    st.kind = static_cast<lemon_progress_kind>(kind);  // TICK may not be in the enum yet
    st.file = file;
    st.message = message;
    st.file_index = index;
    st.total_files = 4;
    st.done = done;
    st.total = total;
    st.offset = offset;
    st.total_bytes = 1000 + 0 + 0 + 50;
    st.percent = total ? static_cast<int32_t>(done * 100 / total) : 0;
    return st;
}

fake::Step pause(int ms) {
    fake::Step st;
    st.sleep_ms = ms;
    return st;
}

void test_make_request() {
    const lp::Request r = hf_request("/cache");
    check("main repository first, then the others", r.repositories.size() == 2 &&
                                                        r.repositories[0].repo_id == "org/model" &&
                                                        r.repositories[1].repo_id == "aaa/aux");
    const auto& m = r.repositories[0];
    check("HF: pinned to the listed commit, ref main", m.snapshot_id == kCommit && m.revision == "main");
    check("exact selected files only, in lemonade's order",
          m.files.size() == 3 && m.files[0].path == "model-Q4_K_M.gguf" && m.files[1].path == "config.json" &&
              m.files[2].path == "empty.txt");
    check("sha256 and size passed", m.files[0].sha256 == kSha && m.files[0].size_known && m.files[0].size == 1000);
    check("size 0 without content id is unknown", !m.files[1].size_known);
    check("size 0 with a git blob id is known (empty file)", m.files[2].size_known && m.files[2].size == 0 &&
                                                                 m.files[2].git_sha1.size() == 40);
    check("token taken from the Authorization header (any case)", r.token == "hf_secret");
    check("endpoint and cache passed through", r.endpoint == "http://hub.invalid" && r.cache_dir == "/cache");

    std::map<std::string, RegistryRepository> no_sha;
    no_sha.emplace("org/model", repo("org/model", "main", "main", {listed("a.gguf", 1, "sha256", kSha)}));
    const lp::Request r2 = lp::make_request(RemoteRegistrySource::HuggingFace, "/c", "", {}, "org/model", no_sha,
                                            {{"org/model", {"a.gguf"}}});
    check("HF listing without a commit: the library resolves main", r2.repositories[0].snapshot_id.empty() &&
                                                                      r2.token.empty());

    std::map<std::string, RegistryRepository> ms;
    ms.emplace("org/model", repo("org/model", "modelscope-master-0123456789abcdef", "master",
                                 {listed("sub", 0, "", "", true), listed("sub/a.gguf", 5, "sha256", kSha)}));
    const lp::Request r3 = lp::make_request(RemoteRegistrySource::ModelScope, "/c", "https://ms.invalid",
                                            {{"Authorization", "Bearer ms_tok"}, {"Cookie", "m_session_id=ms_tok"}},
                                            "org/model", ms, {{"org/model", {"sub/a.gguf"}}});
    check("ModelScope: pinned to the tree fingerprint, listing revision kept",
          r3.repositories[0].snapshot_id == "modelscope-master-0123456789abcdef" &&
              r3.repositories[0].revision == "master" && r3.token == "ms_tok");

    std::map<std::string, RegistryRepository> aux_only = {
        {"org/model", repo("org/model", kCommit, kCommit, {})},
        {"aaa/aux", repo("aaa/aux", kAuxCommit, kAuxCommit, {listed("v.bin", 3, "sha256", kSha)})}};
    const lp::Request r4 = lp::make_request(RemoteRegistrySource::HuggingFace, "/c", "", {}, "org/model", aux_only,
                                            {{"aaa/aux", {"v.bin"}}});
    check("nothing selected in the main repository: the auxiliary one leads (never an empty list)",
          r4.repositories.size() == 1 && r4.repositories[0].repo_id == "aaa/aux");
    bool threw = false;
    try {
        lp::make_request(RemoteRegistrySource::HuggingFace, "/c", "", {}, "org/model", aux_only, {});
    } catch (const std::runtime_error& e) {
        threw = std::string(e.what()).find("No files selected") == 0;
    }
    check("nothing selected at all: lemonade's 'No files selected' error", threw);
}

void test_success(const fs::path& tmp) {
    const fs::path cache = tmp / "hf";
    const std::string main_snap = (cache / "models--org--model" / "snapshots" / kCommit).u8string();
    const std::string aux_snap = (cache / "models--aaa--aux" / "snapshots" / kAuxCommit).u8string();
    fake::script = fake::Script{};
    fake::script.steps = {
        ev(LEMON_PROGRESS_KIND_PLAN_FILE, "model-Q4_K_M.gguf", 0, 0, 0, 0, "download"),
        ev(LEMON_PROGRESS_KIND_PLAN, "", 0, 0, 0),
        ev(LEMON_PROGRESS_KIND_FILE_START, "model-Q4_K_M.gguf", 1, 400, 1000, 400),
        ev(LEMON_PROGRESS_KIND_PROGRESS, "model-Q4_K_M.gguf", 1, 700, 1000, 400),
        ev(LEMON_PROGRESS_KIND_TICK, "model-Q4_K_M.gguf", 1, 700, 1000, 400, "transfer"),  // too soon: dropped
        ev(LEMON_PROGRESS_KIND_FILE_DONE, "model-Q4_K_M.gguf", 1, 1000, 1000, 400, "downloaded"),
        ev(LEMON_PROGRESS_KIND_FILE_START, "config.json", 2, 0, 20),
        ev(LEMON_PROGRESS_KIND_FILE_DONE, "config.json", 2, 20, 20, 20, "reused"),
        pause(300),
        ev(LEMON_PROGRESS_KIND_TICK, "", 0, 0, 0, 0, "commit"),  // idle: forwarded, last state repeated
        ev(LEMON_PROGRESS_KIND_SALVAGE, "config.json", 2, 0, 20, 0, "deadbeef"),
        ev(LEMON_PROGRESS_KIND_COMPLETE, "", 4, 0, 0),
    };
    fake::script.repo_ids = {"org/model", "aaa/aux"};
    fake::script.commits = {kCommit, kAuxCommit};
    fake::script.paths = {main_snap, aux_snap};
    fake::script.hash_verified = 1;

    lp::Request request = hf_request(cache.u8string());
    request.keep_unchanged_snapshot = true;
    std::vector<std::string> log;
    request.log = [&](const std::string& line) { log.push_back(line); };
    Recorder rec;
    const lp::Outcome out = lp::download(request, rec.callback());

    const auto& s = fake::seen;
    check("options: struct_size covers the appended fields", s.struct_size == sizeof(lemon_pull_bridge_options));
    check("options: KEEP_UNCHANGED_SNAPSHOT set, READ_ENVIRONMENT not", s.flags == LEMON_PULL_FLAG_KEEP_UNCHANGED_SNAPSHOT);
    check("options: main repo pinned with its exact files",
          s.repo_id == "org/model" && s.revision == "main" && s.commit == kCommit && s.files.size() == 3 &&
              s.sizes[0] == 1000 && s.sizes[1] == -1 && s.sizes[2] == 0 && s.sha256[0] == kSha &&
              s.git_sha1[2].size() == 40);
    check("options: the auxiliary repository as a pinned lemon_pull_repo",
          s.repos_len == 1 && s.repo_ids[0] == "aaa/aux" && s.repo_commits[0] == kAuxCommit &&
              s.repo_revisions[0] == "main" &&
              s.repo_files_len[0] == 1);
    check("options: explicit token, registry, endpoint, cache",
          !s.token_null && s.token == "hf_secret" && s.registry == LEMON_PULL_REGISTRY_HUGGING_FACE &&
              s.endpoint == "http://hub.invalid" && s.cache_dir == cache.u8string());

    const auto& e = rec.events;
    const bool shape =
        e.size() == 6 &&
        // lemonade's start event: 0 bytes even when resuming
        e[0].file == "model-Q4_K_M.gguf" && e[0].file_index == 1 && e[0].bytes_downloaded == 0 &&
        e[0].bytes_total == 1000 && e[0].percent == 0 && e[0].total_files == 4 && e[0].total_download_size == 1050 &&
        // transfer: includes the resume offset, offset as previously downloaded
        e[1].bytes_downloaded == 700 && e[1].bytes_previously_downloaded == 400 && e[1].percent == 70 &&
        // done: 100 %
        e[2].bytes_downloaded == 1000 && e[2].percent == 100 && e[2].bytes_previously_downloaded == 400 &&
        // start + "already present" of a reused file
        e[3].file == "config.json" && e[3].file_index == 2 && e[3].bytes_downloaded == 0 &&
        e[4].bytes_downloaded == 20 && e[4].bytes_previously_downloaded == 20 && e[4].percent == 100 &&
        // the idle heartbeat repeats the last state
        e[5].file == "config.json" && e[5].bytes_downloaded == 20 && !e[5].complete;
    check("progress: lemonade's event sequence (start, transfer, done, already present, heartbeat)", shape,
          std::to_string(e.size()) + " events");
    bool any_complete = false;
    for (const auto& p : e) any_complete = any_complete || p.complete;
    check("progress: the library's COMPLETE is not forwarded (lemonade sends its own)", !any_complete);
    check("log: salvage reported", !log.empty() && log[0].find("from snapshot deadbeef") != std::string::npos);
    check("outcome: active snapshots per repository, nothing kept",
          out.repositories.size() == 2 && out.repositories[0].active_snapshot_id == kCommit &&
              out.repositories[0].snapshot_path == main_snap && !out.repositories[0].kept_previous_snapshot &&
              out.repositories[1].active_snapshot_id == kAuxCommit);
    check("outcome: no refs written by the bridge for Hugging Face",
          !fs::exists(cache / "models--org--model" / "refs"));
}

void test_kept_previous(const fs::path& tmp) {
    fake::script = fake::Script{};
    const std::string prev = (tmp / "models--org--model" / "snapshots" / kPrevious).u8string();
    fake::script.repo_ids = {"org/model", "aaa/aux"};
    fake::script.commits = {kCommit, kAuxCommit};
    fake::script.paths = {prev, (tmp / "models--aaa--aux" / "snapshots" / kAuxCommit).u8string()};
    Recorder rec;
    const lp::Outcome out = lp::download(hf_request(tmp.u8string()), rec.callback());
    check("kept previous snapshot: active = previous, flagged",
          out.repositories[0].active_snapshot_id == kPrevious && out.repositories[0].kept_previous_snapshot &&
              out.repositories[0].snapshot_id == kCommit && !out.repositories[1].kept_previous_snapshot);
}

// Runs download() expecting an exception of type E; returns its message (or "<none>").
template <class E>
std::string expect_throw(const lp::Request& request, const lemon::DownloadProgressCallback& cb) {
    try {
        lp::download(request, cb);
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<other: ") + e.what() + ">";
    }
    return "<none>";
}

void test_failures(const fs::path& tmp) {
    const auto transfer = std::vector<fake::Step>{
        ev(LEMON_PROGRESS_KIND_FILE_START, "model-Q4_K_M.gguf", 1, 0, 1000),
        ev(LEMON_PROGRESS_KIND_PROGRESS, "model-Q4_K_M.gguf", 1, 300, 1000),
        ev(LEMON_PROGRESS_KIND_PROGRESS, "model-Q4_K_M.gguf", 1, 600, 1000),
        ev(LEMON_PROGRESS_KIND_PROGRESS, "model-Q4_K_M.gguf", 1, 900, 1000),
    };
    const lp::Request request = hf_request(tmp.u8string());

    fake::script = fake::Script{};
    fake::script.steps = transfer;
    Recorder rec;
    rec.decide = [](const DownloadProgress& p) { return p.bytes_downloaded < 600; };
    std::string m = expect_throw<std::runtime_error>(request, rec.callback());
    check("callback returns false: runtime_error(\"Download cancelled\")", m == "Download cancelled", m);
    check("callback returns false: the library was told to cancel, lemonade not asked again",
          fake::seen.callback_returns.back() == 1 && rec.events.size() == 3);

    fake::script.steps = transfer;
    Recorder thrower;
    thrower.decide = [](const DownloadProgress& p) -> bool {
        if (p.bytes_downloaded >= 300) throw std::logic_error("job lock broken");
        return true;
    };
    m = expect_throw<std::logic_error>(request, thrower.callback());
    check("callback throws: cancel returned to the library, the exception rethrown after the call",
          m == "job lock broken" && fake::seen.callback_returns.back() == 1, m);

    fake::script.steps = transfer;
    std::atomic<bool> sigint{true};
    lp::Request stopped = request;
    stopped.stop = &sigint;
    Recorder quiet;
    m = expect_throw<std::runtime_error>(stopped, quiet.callback());
    check("SIGINT flag: cancelled at the first event, lemonade's callback not needed",
          m == "Download cancelled" && quiet.events.empty(), m);

    const std::pair<int32_t, const char*> not_found[] = {{LEMON_STATUS_REPO_NOT_FOUND, "REPO_NOT_FOUND"},
                                                         {LEMON_STATUS_GATED, "GATED"},
                                                         {LEMON_STATUS_UNAUTHORIZED, "UNAUTHORIZED"}};
    for (const auto& [status, name] : not_found) {
        fake::script = fake::Script{};
        fake::script.status = status;
        fake::script.message = "aaa/aux: access to this repository is restricted";
        m = expect_throw<lemon::RegistryNotFoundError>(request, nullptr);
        check(std::string(name) + ": RegistryNotFoundError with lemonade's prefix and the library's text",
              m.rfind("Hugging Face repository not found or not accessible: ", 0) == 0 &&
                  m.find("access to this repository is restricted") != std::string::npos,
              m);
    }
    fake::script = fake::Script{};
    fake::script.status = LEMON_STATUS_NETWORK;
    fake::script.message = "could not reach hub.invalid: connection refused";
    m = expect_throw<std::runtime_error>(request, nullptr);
    check("NETWORK: runtime_error with the library's message", m == fake::script.message, m);
    bool plain = true;
    try {
        lp::download(request, nullptr);
    } catch (const lemon::RegistryNotFoundError&) {
        plain = false;
    } catch (...) {
    }
    check("NETWORK is not a RegistryNotFoundError", plain);
}

void test_modelscope_refs(const fs::path& tmp) {
    const std::string id = "modelscope-master-0123456789abcdef";
    const fs::path repo_dir = tmp / "modelscope--models--org--model";
    std::map<std::string, RegistryRepository> ms;
    ms.emplace("org/model", repo("org/model", id, "master", {listed("a.gguf", 5, "sha256", kSha)}));
    lp::Request request = lp::make_request(RemoteRegistrySource::ModelScope, tmp.u8string(), "", {}, "org/model", ms,
                                           {{"org/model", {"a.gguf"}}});
    fake::script = fake::Script{};
    fake::script.repo_ids = {"org/model"};
    fake::script.commits = {id};
    fake::script.paths = {(repo_dir / "snapshots" / id).u8string()};
    fake::script.hash_verified = 0;
    const lp::Outcome out = lp::download(request, nullptr);
    check("ModelScope: registry and revision passed",
          fake::seen.registry == LEMON_PULL_REGISTRY_MODELSCOPE && fake::seen.revision == "master" &&
              fake::seen.commit == id && fake::seen.flags == 0);
    check("ModelScope: size-only verification reported", !out.hash_verified);
}

}  // namespace

int main() {
    const fs::path tmp = fs::temp_directory_path() /
                         ("lemon-bridge-test-" +
                          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    test_make_request();
    test_success(tmp / "success");
    test_kept_previous(tmp / "kept");
    test_failures(tmp / "failures");
    test_modelscope_refs(tmp / "ms");
    fs::remove_all(tmp);
    return g_failures == 0 ? 0 : 1;
}
