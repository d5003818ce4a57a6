// lemon_pull_download.cpp: see lemon_pull_download.h.

#include "lemon_pull_download.h"

#include <lemon/model_manager.h>
#include <lemon/model_registry.h>

#include "lemon_pull.h"

typedef lemon_pull_options lemon_pull_bridge_options;
typedef lemon_pull_result lemon_pull_bridge_result;

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <cstddef>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace lemon {
namespace lemon_pull {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A tick arriving this soon after the last event lemonade saw is not forwarded: the library may
// tick beside transfer events, and lemonade's consumers write one SSE/NDJSON line per call.
constexpr auto kTickGap = std::chrono::milliseconds(200);

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool is_hex_commit(const std::string& s) {
    return s.size() == 40 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
               return std::isdigit(c) || (c >= 'a' && c <= 'f');
           });
}

const char* c_str_or_null(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

std::string display_name(RemoteRegistrySource source) {
    return source == RemoteRegistrySource::ModelScope ? "ModelScope" : "Hugging Face";
}

File file_from_listing(const std::string& path, const RegistryFile* listed) {
    File file;
    file.path = path;
    if (listed == nullptr) return file;
    file.size = listed->size;
    // lemonade's listing reports 0 both for an empty file and for a missing size; only a content
    // id makes a 0 trustworthy.
    file.size_known = listed->size > 0 || !listed->hash.empty();
    if (listed->hash_algorithm == "sha256") file.sha256 = lower(listed->hash);
    if (listed->hash_algorithm == "git-sha1") file.git_sha1 = lower(listed->hash);
    return file;
}

Repository repository_from_listing(RemoteRegistrySource source, const RegistryRepository& listed,
                                   const std::vector<std::string>& paths) {
    Repository repo;
    repo.repo_id = listed.repo_id;
    if (source == RemoteRegistrySource::HuggingFace) {
        // lemonade's listing pins downloads to the commit ("sha"); it falls back to the revision
        // name when the API omits it, and then the library resolves the revision itself.
        repo.revision = "main";
        if (is_hex_commit(listed.snapshot_id)) repo.snapshot_id = listed.snapshot_id;
    } else {
        // ModelScope has no commit: the listing revision ("master") goes into the file URLs and
        // the tree fingerprint, which names the snapshot folder.
        repo.revision = listed.revision;
        repo.snapshot_id = listed.snapshot_id;
    }
    std::map<std::string, const RegistryFile*> by_path;
    for (const auto& f : listed.files) {
        if (!f.directory) by_path.emplace(f.path, &f);
    }
    for (const auto& path : paths) {
        auto it = by_path.find(path);
        repo.files.push_back(file_from_listing(path, it == by_path.end() ? nullptr : it->second));
    }
    return repo;
}

// The C view of one repository: strings stay owned by the Request, which outlives the call.
struct CRepo {
    std::vector<lemon_pull_file> files;
    lemon_pull_repo repo{};
};

std::vector<lemon_pull_file> c_files(const Repository& repo) {
    std::vector<lemon_pull_file> out;
    out.reserve(repo.files.size());
    for (const auto& f : repo.files) {
        lemon_pull_file c{};
        c.path = f.path.c_str();
        c.size = f.size_known ? static_cast<int64_t>(f.size) : -1;
        c.sha256 = c_str_or_null(f.sha256);
        c.git_sha1 = c_str_or_null(f.git_sha1);
        out.push_back(c);
    }
    return out;
}

// Turns library events into lemonade's DownloadProgress sequence and keeps C++ exceptions on this
// side of the C boundary.
class Trampoline {
public:
    Trampoline(const Request& request, const DownloadProgressCallback& callback)
        : request_(request), callback_(callback) {
        for (const auto& repo : request.repositories) {
            for (const auto& f : repo.files) {
                ++total_files_;
                total_bytes_ += f.size;
            }
        }
        // Until the first file starts (resolve, lock wait), heartbeats show file 1 at 0 bytes,
        // which is what lemonade's own start event for it says.
        const File* first = request.repositories.empty() || request.repositories[0].files.empty()
                                ? nullptr
                                : &request.repositories[0].files[0];
        last_.file = first ? first->path : std::string();
        last_.file_index = first ? 1 : 0;
        last_.bytes_total = first ? first->size : 0;
        refresh_totals();
    }

    static int32_t call(void* user_data, const lemon_progress* p) noexcept {
        auto* self = static_cast<Trampoline*>(user_data);
        if (self->stopped_) return 1;
        try {
            if (!self->on_event(*p)) self->stopped_ = true;
        } catch (...) {
            self->error_ = std::current_exception();
            self->stopped_ = true;
        }
        return self->stopped_ ? 1 : 0;
    }

    void rethrow_if_thrown() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    bool stop_requested() const {
        return request_.stop != nullptr && request_.stop->load(std::memory_order_relaxed);
    }

    void refresh_totals() {
        last_.total_files = total_files_;
        last_.total_download_size = total_bytes_;
    }

    void log(const std::string& line) const {
        if (request_.log) request_.log(line);
    }

    static std::string str(const char* s) { return s ? std::string(s) : std::string(); }

    bool forward(const DownloadProgress& progress) {
        last_ = progress;
        last_forward_ = Clock::now();
        forwarded_any_ = true;
        if (!callback_) return true;
        return callback_(progress);
    }

    DownloadProgress file_event(const lemon_progress& p) const {
        DownloadProgress d;
        d.file = str(p.file);
        d.file_index = static_cast<int>(p.file_index);
        d.total_files = total_files_;
        d.total_download_size = total_bytes_;
        d.bytes_total = p.file_bytes_total;
        return d;
    }

    bool on_event(const lemon_progress& p) {
        if (stop_requested()) return false;
        if (p.total_files > 0) total_files_ = static_cast<int>(p.total_files);
        if (p.total_bytes > 0) total_bytes_ = p.total_bytes;
        refresh_totals();

        switch (static_cast<int32_t>(p.kind)) {
        case LEMON_PROGRESS_KIND_FILE_START: {
            // lemonade's start event: 0 bytes, whatever is on disk (that shows in the next event).
            DownloadProgress d = file_event(p);
            file_offset_ = p.file_bytes_offset;
            return forward(d);
        }
        case LEMON_PROGRESS_KIND_PROGRESS: {
            DownloadProgress d = file_event(p);
            d.bytes_downloaded = p.file_bytes_done;
            d.bytes_previously_downloaded = p.file_bytes_offset;
            d.percent = p.percent;
            return forward(d);
        }
        case LEMON_PROGRESS_KIND_FILE_DONE: {
            // "reused" is lemonade's "already present" event: the whole file counts as previously
            // downloaded. Otherwise the file's last transfer event, at 100 %.
            DownloadProgress d = file_event(p);
            d.bytes_downloaded = p.file_bytes_total;
            d.bytes_previously_downloaded =
                str(p.message) == "reused" ? p.file_bytes_total : file_offset_;
            d.percent = 100;
            return forward(d);
        }
        case LEMON_PROGRESS_KIND_TICK: {
            if (forwarded_any_ && Clock::now() - last_forward_ < kTickGap) return true;
            DownloadProgress d = last_;
            if (p.file_index > 0 && p.file != nullptr && p.file[0] != '\0') {
                d = file_event(p);
                d.bytes_downloaded = p.file_bytes_done;
                d.bytes_previously_downloaded = p.file_bytes_offset;
                d.percent = p.percent;
            }
            return forward(d);
        }
        case LEMON_PROGRESS_KIND_COMPLETE:
            // lemonade sends its own complete event after writing .lemonade_registry.json.
            return true;
        case LEMON_PROGRESS_KIND_SALVAGE:
            log("lemon-pull: took " + std::to_string(p.event_bytes) + " bytes of " + str(p.file) +
                " from snapshot " + str(p.message));
            return true;
        case LEMON_PROGRESS_KIND_WAITING_FOR_LOCK:
            log("lemon-pull: waiting for another download of " + str(p.repo_id) + " (" +
                str(p.message) + ")");
            return true;
        case LEMON_PROGRESS_KIND_RETRY:
            log("lemon-pull: retry " + std::to_string(p.retry_attempt) + " of " +
                (p.file && p.file[0] ? str(p.file) : std::string("the API call")) + " in " +
                std::to_string(p.retry_delay_ms) + " ms: " + str(p.message));
            return true;
        case LEMON_PROGRESS_KIND_RESTART:
            log("lemon-pull: " + str(p.file) + " restarts from zero: " + str(p.message));
            return true;
        case LEMON_PROGRESS_KIND_RECLAIMED:
            log("lemon-pull: removed orphaned snapshot " + str(p.message) + " (" +
                std::to_string(p.event_bytes) + " bytes)");
            return true;
        case LEMON_PROGRESS_KIND_FROM_CACHE:
            log("lemon-pull: " + display_name(request_.source) +
                " is unreachable; using the cached snapshot (" + str(p.message) + ")");
            return true;
        default:
            // PLAN_FILE, PLAN, RESOLVED and kinds appended later: nothing lemonade shows.
            return true;
        }
    }

    const Request& request_;
    const DownloadProgressCallback& callback_;
    DownloadProgress last_;
    Clock::time_point last_forward_{};
    bool forwarded_any_ = false;
    std::uint64_t file_offset_ = 0;
    int total_files_ = 0;
    std::uint64_t total_bytes_ = 0;
    bool stopped_ = false;
    std::exception_ptr error_;
};

// Frees the library's strings however download() leaves.
class ResultGuard {
public:
    ResultGuard() { r_.struct_size = sizeof(r_); }
    ResultGuard(const ResultGuard&) = delete;
    ResultGuard& operator=(const ResultGuard&) = delete;
    ~ResultGuard() { lemon_pull_result_free(&r_); }
    lemon_pull_bridge_result r_{};
};

[[noreturn]] void throw_for_status(const Request& request, const lemon_pull_bridge_result& r) {
    const std::string message =
        r.error_message ? std::string(r.error_message) : std::string(lemon_status_str(r.status));
    switch (r.status) {
    case LEMON_STATUS_CANCELLED:
        // server.cpp and ollama_api.cpp compare this exact text.
        throw std::runtime_error("Download cancelled");
    case LEMON_STATUS_REPO_NOT_FOUND:
    case LEMON_STATUS_GATED:
    case LEMON_STATUS_UNAUTHORIZED:
        // lemonade's wording, then the library's message, which names the repository (an
        // auxiliary one may be the culprit).
        throw RegistryNotFoundError(display_name(request.source) +
                                    " repository not found or not accessible: " + message);
    default:
        throw std::runtime_error(message);
    }
}

Outcome outcome_from_result(const Request& request, const lemon_pull_bridge_result& r) {
    Outcome out;
    out.bytes_downloaded = r.bytes_downloaded;
    out.bytes_reused = r.bytes_reused;
    out.bytes_salvaged = r.bytes_salvaged;
    out.total_bytes = r.total_bytes;
    // A library older than this header fills less; then the defaults (not from the cache,
    // verified) are what it did.
    if (r.struct_size >= offsetof(lemon_pull_result, from_cache) + sizeof r.from_cache) {
        out.from_cache = r.from_cache != 0;
    }
    if (r.struct_size >=
        offsetof(lemon_pull_result, files_not_hash_verified) + sizeof r.files_not_hash_verified) {
        out.hash_verified = r.files_not_hash_verified == 0;
    }
    const size_t count = lemon_pull_result_repo_count(&r);
    for (size_t i = 0; i < request.repositories.size(); ++i) {
        const Repository& asked = request.repositories[i];
        RepositoryOutcome repo;
        repo.repo_id = asked.repo_id;
        repo.snapshot_id = asked.snapshot_id;
        for (size_t j = 0; j < count; ++j) {
            const char* id = lemon_pull_result_repo_id(&r, j);
            if (id == nullptr || asked.repo_id != id) continue;
            const char* path = lemon_pull_result_repo_snapshot_path(&r, j);
            repo.snapshot_path = path ? path : "";
            if (repo.snapshot_id.empty()) {
                const char* commit = lemon_pull_result_repo_commit(&r, j);
                repo.snapshot_id = commit ? commit : "";
            }
            break;
        }
        repo.active_snapshot_id = fs::u8path(repo.snapshot_path).filename().u8string();
        repo.kept_previous_snapshot =
            !repo.snapshot_id.empty() && repo.active_snapshot_id != repo.snapshot_id;
        if (repo.snapshot_path.empty()) {
            throw std::runtime_error("lemon-pull returned no snapshot for " + asked.repo_id);
        }
        out.repositories.push_back(std::move(repo));
    }
    return out;
}

}  // namespace

std::string token_from_auth_headers(const std::map<std::string, std::string>& auth_headers) {
    for (const auto& [name, value] : auth_headers) {
        if (lower(name) != "authorization") continue;
        const std::string prefix = "bearer ";
        if (value.size() > prefix.size() && lower(value.substr(0, prefix.size())) == prefix) {
            return value.substr(prefix.size());
        }
    }
    return "";
}

Request make_request(RemoteRegistrySource source,
                     const std::string& cache_dir,
                     const std::string& endpoint,
                     const std::map<std::string, std::string>& auth_headers,
                     const std::string& main_repo_id,
                     const std::map<std::string, RegistryRepository>& repositories,
                     const std::map<std::string, std::vector<std::string>>& files_to_download) {
    Request request;
    request.source = source;
    request.cache_dir = cache_dir;
    request.endpoint = endpoint;
    request.token = token_from_auth_headers(auth_headers);

    auto add = [&](const std::string& repo_id) {
        auto files = files_to_download.find(repo_id);
        auto listed = repositories.find(repo_id);
        if (files == files_to_download.end() || files->second.empty()) return;
        if (listed == repositories.end()) {
            throw std::runtime_error("No listing for repository " + repo_id);
        }
        request.repositories.push_back(repository_from_listing(source, listed->second, files->second));
    };
    // The main repository first; when lemonade selected nothing in it (only auxiliary files), the
    // first other repository leads the call, as lemonade's loop then skipped the main one too.
    // Never an empty file list: to the library that would mean "every file of the repository".
    add(main_repo_id);
    for (const auto& [repo_id, files] : files_to_download) {
        if (repo_id != main_repo_id) add(repo_id);
    }
    if (request.repositories.empty()) {
        throw std::runtime_error("No files selected for download from " + display_name(source) +
                                 " repository " + main_repo_id);
    }
    return request;
}

Outcome download(const Request& request, const DownloadProgressCallback& progress) {
    if (request.repositories.empty() || request.repositories.front().files.empty()) {
        throw std::runtime_error("lemon-pull: nothing to download");
    }
    const Repository& main = request.repositories.front();

    std::vector<CRepo> extra(request.repositories.size() - 1);
    std::vector<lemon_pull_repo> c_repos;
    for (size_t i = 1; i < request.repositories.size(); ++i) {
        const Repository& repo = request.repositories[i];
        CRepo& c = extra[i - 1];
        c.files = c_files(repo);
        c.repo.repo_id = repo.repo_id.c_str();
        c.repo.revision = c_str_or_null(repo.revision);
        c.repo.commit = c_str_or_null(repo.snapshot_id);
        c.repo.files = c.files.data();
        c.repo.files_len = c.files.size();
        c_repos.push_back(c.repo);
    }
    const std::vector<lemon_pull_file> main_files = c_files(main);

    Trampoline trampoline(request, progress);

    lemon_pull_bridge_options o{};
    lemon_pull_options_init(&o);
    o.struct_size = sizeof(o);
    o.repo_id = main.repo_id.c_str();
    o.revision = c_str_or_null(main.revision);
    o.cache_dir = request.cache_dir.c_str();
    o.endpoint = c_str_or_null(request.endpoint);
    // Explicit even when empty: "" is anonymous, and without READ_ENVIRONMENT the library reads no
    // token variable or file either way.
    o.token = request.token.c_str();
    o.ca_bundle = c_str_or_null(request.ca_bundle);
    o.progress_cb = &Trampoline::call;
    o.user_data = &trampoline;
    o.connections = request.connections;
    o.max_bytes_per_sec = request.max_bytes_per_sec;
    o.flags = (request.keep_unchanged_snapshot ? LEMON_PULL_FLAG_KEEP_UNCHANGED_SNAPSHOT : 0u) |
              (request.cache_fallback ? 0u : LEMON_PULL_FLAG_NO_CACHE_FALLBACK);
    o.commit = c_str_or_null(main.snapshot_id);
    o.files = main_files.data();
    o.files_len = main_files.size();
    o.repos = c_repos.empty() ? nullptr : c_repos.data();
    o.repos_len = c_repos.size();
    o.registry = request.source == RemoteRegistrySource::ModelScope ? LEMON_PULL_REGISTRY_MODELSCOPE
                                                                     : LEMON_PULL_REGISTRY_HUGGING_FACE;
    o.proxy = c_str_or_null(request.proxy);

    ResultGuard result;
    const lemon_status status = lemon_resume_pull(&o, &result.r_);

    // An exception of lemonade's callback wins over the CANCELLED it caused.
    trampoline.rethrow_if_thrown();
    if (status != LEMON_STATUS_OK) throw_for_status(request, result.r_);

    // refs/main is the library's: it names the active snapshot for both registries (ModelScope's
    // default revision "master" is recorded in refs/main, as lemonade reads it).
    return outcome_from_result(request, result.r_);
}

}  // namespace lemon_pull
}  // namespace lemon
