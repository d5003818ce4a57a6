// driver.cpp: runs the patched download path of lemonade against the mock hub, for check.sh.
//
// It does what the patched ModelManager::download_from_registry does, with lemonade's own code
// wherever it can be linked without the whole server:
//   - listing, auth headers, endpoint and the ModelScope tree fingerprint: lemonade's
//     model_registry.cpp (patched), linked as is (transport through lemonade_shims.cpp);
//   - selection: given on the command line (registry_files::select_main_repo_files lives in
//     model_manager.cpp with the backends); auxiliary checkpoints checked as lemonade checks them;
//   - the download: lemon::lemon_pull::make_request + download, called as the patch calls them;
//   - progress: a callback shaped like Server::start_download_job's (mutex, cancel_requested,
//     stop_acknowledged, file_index accounting), cancelled either from inside the callback or by a
//     "UI" thread that sets cancel_requested, as /downloads/control does.
//
// Prints PASS/FAIL lines for what it can judge itself and one "RESULT key=value ..." line for
// check.sh, which judges the disk and the hub. Exit status: 0 when no FAIL line was printed.
//
//   driver --source huggingface|modelscope --cache DIR --repo ORG/NAME --file PATH [--file ...]
//          [--aux ORG/NAME:PATH ...] [--listing-out F | --listing-in F]
//          [--cancel-at-bytes N | --cancel-after N:MS | --throw-at-bytes N]
//          [--expect ok|cancelled|registry-not-found|runtime-error|logic-error]
//          [--expect-message TEXT] [--max-latency-ms N] [--max-seconds N]
//          [--no-keep] [--no-cache-fallback] [--trace]
//
// --trace prints every DownloadProgress lemonade's callback receives to stderr.

#include "lemon_pull_download.h"

#include <lemon/model_manager.h>
#include <lemon/model_registry.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using lemon::DownloadProgress;
using lemon::RegistryFile;
using lemon::RegistryRepository;
using lemon::RemoteRegistrySource;
using nlohmann::json;

int g_failures = 0;

void check(const std::string& name, bool ok, const std::string& detail = "") {
    std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.empty() ? "" : " -- ",
                detail.c_str());
    std::fflush(stdout);
    if (!ok) ++g_failures;
}

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "driver: %s (see the usage comment in driver.cpp)\n", why.c_str());
    std::exit(2);
}

struct Args {
    std::string source = "huggingface";
    std::string cache;
    std::string repo;
    std::vector<std::string> files;
    std::vector<std::string> aux;  // "org/name:path"
    std::string listing_out, listing_in;
    std::optional<std::uint64_t> cancel_at_bytes, throw_at_bytes;
    std::optional<std::pair<std::uint64_t, long>> cancel_after;
    std::string expect = "ok";
    std::string expect_message;
    long max_latency_ms = -1;
    long max_seconds = -1;
    bool keep = true;
    bool cache_fallback = true;
    bool trace = false;
};

Args parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        auto number = [&]() -> std::uint64_t {
            const std::string v = value();
            try {
                return std::stoull(v);
            } catch (...) {
                usage("not a number: " + v);
            }
        };
        if (arg == "--source") a.source = value();
        else if (arg == "--cache") a.cache = value();
        else if (arg == "--repo") a.repo = value();
        else if (arg == "--file") a.files.push_back(value());
        else if (arg == "--aux") a.aux.push_back(value());
        else if (arg == "--listing-out") a.listing_out = value();
        else if (arg == "--listing-in") a.listing_in = value();
        else if (arg == "--cancel-at-bytes") a.cancel_at_bytes = number();
        else if (arg == "--throw-at-bytes") a.throw_at_bytes = number();
        else if (arg == "--cancel-after") {
            const std::string v = value();
            const auto colon = v.find(':');
            if (colon == std::string::npos) usage("--cancel-after wants BYTES:MS");
            a.cancel_after = {std::stoull(v.substr(0, colon)), std::stol(v.substr(colon + 1))};
        } else if (arg == "--expect") a.expect = value();
        else if (arg == "--expect-message") a.expect_message = value();
        else if (arg == "--max-latency-ms") a.max_latency_ms = static_cast<long>(number());
        else if (arg == "--max-seconds") a.max_seconds = static_cast<long>(number());
        else if (arg == "--no-keep") a.keep = false;
        else if (arg == "--no-cache-fallback") a.cache_fallback = false;
        else if (arg == "--trace") a.trace = true;
        else usage("unknown argument " + arg);
    }
    if (a.cache.empty() || a.repo.empty() || a.files.empty()) usage("--cache, --repo and --file are required");
    return a;
}

// --- listings: lemonade's fetch_repository, or a saved copy of it (a hub that went away) ------

json listing_to_json(const std::map<std::string, RegistryRepository>& repos) {
    json out = json::object();
    for (const auto& [id, repo] : repos) {
        json files = json::array();
        for (const auto& f : repo.files) {
            files.push_back({{"path", f.path}, {"size", f.size}, {"hash_algorithm", f.hash_algorithm},
                             {"hash", f.hash}, {"directory", f.directory}});
        }
        out[id] = {{"revision", repo.revision}, {"snapshot_id", repo.snapshot_id}, {"files", files}};
    }
    return out;
}

std::map<std::string, RegistryRepository> listing_from_json(const json& in) {
    std::map<std::string, RegistryRepository> repos;
    for (const auto& [id, value] : in.items()) {
        RegistryRepository repo;
        repo.repo_id = id;
        repo.revision = value.at("revision").get<std::string>();
        repo.snapshot_id = value.at("snapshot_id").get<std::string>();
        for (const auto& f : value.at("files")) {
            RegistryFile file;
            file.path = f.at("path").get<std::string>();
            file.size = f.at("size").get<std::uint64_t>();
            file.hash_algorithm = f.at("hash_algorithm").get<std::string>();
            file.hash = f.at("hash").get<std::string>();
            file.directory = f.at("directory").get<bool>();
            repo.files.push_back(file);
        }
        repos.emplace(id, std::move(repo));
    }
    return repos;
}

// The part of download_from_registry before the bridge: listing, selection, aux checks.
struct Selection {
    std::map<std::string, RegistryRepository> repositories;
    std::map<std::string, std::vector<std::string>> files_to_download;
};

Selection list_and_select(const Args& a, RemoteRegistrySource source) {
    const auto& registry = lemon::model_registry(source);
    const std::string display = lemon::remote_registry_display_name(source);
    Selection s;
    std::map<std::string, std::vector<std::string>> aux_by_repo;
    for (const auto& entry : a.aux) {
        const auto colon = entry.find(':');
        if (colon == std::string::npos) {
            throw std::runtime_error("Additional checkpoints must contain an exact repository variant");
        }
        aux_by_repo[entry.substr(0, colon)].push_back(entry.substr(colon + 1));
    }
    if (!a.listing_in.empty()) {
        std::ifstream in(a.listing_in);
        s.repositories = listing_from_json(json::parse(in));
    } else {
        s.repositories.emplace(a.repo, registry.fetch_repository(a.repo));
        for (const auto& [repo_id, paths] : aux_by_repo) {
            if (!s.repositories.count(repo_id)) {
                s.repositories.emplace(repo_id, registry.fetch_repository(repo_id));
            }
        }
    }
    auto exists = [&](const std::string& repo_id, const std::string& path) {
        const auto& files = s.repositories.at(repo_id).files;
        return std::any_of(files.begin(), files.end(),
                           [&](const RegistryFile& f) { return !f.directory && f.path == path; });
    };
    for (const auto& path : a.files) {
        if (!exists(a.repo, path)) {
            throw std::runtime_error("Model file not found in repository " + a.repo + ": " + path);
        }
        s.files_to_download[a.repo].push_back(path);
    }
    for (const auto& [repo_id, paths] : aux_by_repo) {
        for (const auto& path : paths) {
            if (!exists(repo_id, path)) {
                throw std::runtime_error("Additional checkpoint file not found on " + display + ": " +
                                         repo_id + ":" + path);
            }
            s.files_to_download[repo_id].push_back(path);
        }
    }
    if (!a.listing_out.empty()) {
        std::ofstream out(a.listing_out);
        out << listing_to_json(s.repositories).dump(2);
    }
    return s;
}

// --- the job: Server::start_download_job's callback, plus what the checks need to see -----------

struct Job {
    std::mutex mutex;
    std::condition_variable reached_cv;
    bool cancel_requested = false;
    bool stop_acknowledged = false;
    int current_file_index = -1;
    std::uint64_t completed_files_bytes = 0;
    std::uint64_t current_file_bytes_total = 0;
    // for the checks
    Clock::time_point start = Clock::now();
    bool reached = false;  // --cancel-after's byte mark was seen
    std::optional<Clock::time_point> decision;
    std::optional<Clock::time_point> last_event;
    long max_gap_ms = 0;
    long events = 0;
    long complete_events = 0;
    bool file_index_went_back = false;
    int last_file_index = 0;
    std::uint64_t last_bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse_args(argc, argv);
    const RemoteRegistrySource source = lemon::parse_remote_registry_source(a.source);
    std::atomic<bool> sigint_flag{false};  // stands in for utils::g_download_cancelled

    Job job;
    lemon::DownloadProgressCallback progress_cb = [&](const DownloadProgress& p) -> bool {
        std::lock_guard<std::mutex> lock(job.mutex);
        const auto now = Clock::now();
        if (job.last_event) {
            const long gap = static_cast<long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(now - *job.last_event).count());
            job.max_gap_ms = std::max(job.max_gap_ms, gap);
        }
        job.last_event = now;
        ++job.events;
        if (a.trace) {
            std::fprintf(stderr, "event +%lldms file=%s index=%d/%d bytes=%zu/%zu prev=%zu total=%zu %d%%%s\n",
                         static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    now - job.start).count()),
                         p.file.c_str(), p.file_index, p.total_files, p.bytes_downloaded, p.bytes_total,
                         p.bytes_previously_downloaded, p.total_download_size, p.percent,
                         p.complete ? " complete" : "");
        }
        if (p.complete) ++job.complete_events;
        if (p.file_index < job.last_file_index) job.file_index_went_back = true;
        job.last_file_index = p.file_index;
        job.last_bytes = p.bytes_downloaded;

        // start_download_job: completion wins over a late cancel.
        if (job.cancel_requested && !p.complete) {
            job.stop_acknowledged = true;
            return false;
        }
        if (job.current_file_index != p.file_index) {
            if (job.current_file_index >= 0 && p.file_index > job.current_file_index) {
                job.completed_files_bytes += job.current_file_bytes_total;
            }
            job.current_file_index = p.file_index;
            job.current_file_bytes_total = 0;
        }
        if (p.bytes_total > 0) {
            job.current_file_bytes_total = std::max<std::uint64_t>(job.current_file_bytes_total, p.bytes_total);
        }

        if (a.throw_at_bytes && p.bytes_downloaded >= *a.throw_at_bytes) {
            throw std::logic_error("callback failure at " + std::to_string(p.bytes_downloaded) + " bytes");
        }
        if (a.cancel_at_bytes && p.bytes_downloaded >= *a.cancel_at_bytes) {
            job.cancel_requested = true;
            job.stop_acknowledged = true;
            job.decision = now;
            return false;
        }
        if (a.cancel_after && !job.reached && p.bytes_downloaded >= a.cancel_after->first) {
            job.reached = true;
            job.reached_cv.notify_all();
        }
        return true;
    };

    // The "UI": sets cancel_requested some time after the byte mark, like /downloads/control.
    std::atomic<bool> done{false};
    std::thread ui;
    if (a.cancel_after) {
        ui = std::thread([&] {
            std::unique_lock<std::mutex> lock(job.mutex);
            job.reached_cv.wait(lock, [&] { return job.reached || done.load(); });
            if (done) return;
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::milliseconds(a.cancel_after->second));
            lock.lock();
            if (done) return;
            job.cancel_requested = true;
            job.decision = Clock::now();
        });
    }

    std::string outcome_kind = "ok";
    std::string message;
    lemon::lemon_pull::Outcome outcome;
    const auto start = Clock::now();
    std::optional<Clock::time_point> end;
    long bridge_complete_events = -1;  // read before lemonade's own final event
    bool bridge_index_went_back = false;
    try {
        const Selection sel = list_and_select(a, source);
        const auto& registry = lemon::model_registry(source);
        // As in the patched download_from_registry:
        lemon::lemon_pull::Request request = lemon::lemon_pull::make_request(
            source, a.cache, lemon::registry_endpoint(source), registry.auth_headers(), a.repo,
            sel.repositories, sel.files_to_download);
        request.keep_unchanged_snapshot = a.keep && source == RemoteRegistrySource::HuggingFace;
        request.cache_fallback = a.cache_fallback;
        request.stop = &sigint_flag;
        request.log = [](const std::string& line) { std::fprintf(stderr, "log: %s\n", line.c_str()); };
        outcome = lemon::lemon_pull::download(request, progress_cb);
        end = Clock::now();
        // lemonade's final event, sent after .lemonade_registry.json is written.
        int total_files = 0;
        for (const auto& r : request.repositories) total_files += static_cast<int>(r.files.size());
        DownloadProgress final_event;
        final_event.complete = true;
        final_event.file_index = total_files;
        final_event.total_files = total_files;
        final_event.percent = 100;
        {
            std::lock_guard<std::mutex> lock(job.mutex);
            bridge_complete_events = job.complete_events;
            bridge_index_went_back = job.file_index_went_back;
        }
        (void)progress_cb(final_event);
    } catch (const lemon::RegistryNotFoundError& e) {
        end = Clock::now();
        outcome_kind = "registry-not-found";
        message = e.what();
    } catch (const std::logic_error& e) {
        end = Clock::now();
        outcome_kind = "logic-error";
        message = e.what();
    } catch (const std::runtime_error& e) {
        end = Clock::now();
        message = e.what();
        outcome_kind = message == "Download cancelled" ? "cancelled" : "runtime-error";
    } catch (const std::exception& e) {
        end = Clock::now();
        outcome_kind = "other-exception";
        message = e.what();
    }
    done = true;
    job.reached_cv.notify_all();
    if (ui.joinable()) ui.join();

    const long elapsed_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(*end - start).count());
    long latency_ms = -1;
    if (job.decision) {
        latency_ms = static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(*end - *job.decision).count());
    }

    check("outcome is " + a.expect, outcome_kind == a.expect, outcome_kind + ": " + message);
    if (!a.expect_message.empty()) {
        check("message contains '" + a.expect_message + "'",
              message.find(a.expect_message) != std::string::npos, message);
    }
    if (a.max_latency_ms >= 0) {
        check("cancel took effect within " + std::to_string(a.max_latency_ms) + " ms of the decision",
              latency_ms >= 0 && latency_ms <= a.max_latency_ms,
              "latency " + std::to_string(latency_ms) + " ms");
    }
    if (a.max_seconds >= 0) {
        check("call returned within " + std::to_string(a.max_seconds) + " s",
              elapsed_ms <= a.max_seconds * 1000, std::to_string(elapsed_ms) + " ms");
    }
    if (bridge_complete_events < 0) {
        bridge_complete_events = job.complete_events;
        bridge_index_went_back = job.file_index_went_back;
    }
    check("the bridge never forwarded a complete event (lemonade sends its own)",
          bridge_complete_events == 0, std::to_string(bridge_complete_events));
    check("file_index never went back", !bridge_index_went_back);

    std::string snapshots, active, kept;
    for (const auto& r : outcome.repositories) {
        snapshots += (snapshots.empty() ? "" : ",") + r.repo_id + "=" + r.snapshot_path;
        active += (active.empty() ? "" : ",") + r.active_snapshot_id;
        kept += (kept.empty() ? "" : ",") + std::string(r.kept_previous_snapshot ? "1" : "0");
    }
    std::printf(
        "RESULT outcome=%s elapsed_ms=%ld latency_ms=%ld events=%ld max_gap_ms=%ld "
        "bytes_downloaded=%llu bytes_reused=%llu bytes_salvaged=%llu from_cache=%d hash_verified=%d "
        "active=%s kept=%s snapshots=%s\n",
        outcome_kind.c_str(), elapsed_ms, latency_ms, job.events, job.max_gap_ms,
        static_cast<unsigned long long>(outcome.bytes_downloaded),
        static_cast<unsigned long long>(outcome.bytes_reused),
        static_cast<unsigned long long>(outcome.bytes_salvaged), outcome.from_cache ? 1 : 0,
        outcome.hash_verified ? 1 : 0, active.c_str(), kept.c_str(), snapshots.c_str());
    if (!message.empty()) std::printf("MESSAGE %s\n", message.c_str());
    return g_failures == 0 ? 0 : 1;
}
