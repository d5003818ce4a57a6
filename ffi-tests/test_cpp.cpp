// C++17 consumer test of the lemon_pull C API, written the way the lemonade server would use it:
// an RAII owner for the result, a captureless lambda as the progress callback, std::atomic as the
// cancel flag, and a status -> exception mapping that keeps the literal "Download cancelled".
//
// Usage: test_cpp PHASE [CACHE_DIR]; phases: args, cancel-cb, cancel-flag, resume, concurrent.
// Environment and output as for test_c.c (driven by ffi-tests/run.sh).

#include "lemon_pull.h"
#include "lemon_pull.h"  // twice on purpose: the include guard must hold

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

namespace {

int g_failed = 0;
std::string g_phase = "?";

void check(const std::string &name, bool ok, const std::string &detail = {}) {
    if (ok) {
        std::printf("PASS c++/%s: %s\n", g_phase.c_str(), name.c_str());
    } else {
        std::printf("FAIL c++/%s: %s%s%s\n", g_phase.c_str(), name.c_str(), detail.empty() ? "" : " -- ",
                    detail.c_str());
        g_failed = 1;
    }
    std::fflush(stdout);
}

std::string env(const char *name) {
    const char *v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        std::fprintf(stderr, "test_cpp: %s is not set\n", name);
        std::exit(2);
    }
    return v;
}

std::string str(const char *s) { return s ? s : "(null)"; }

bool exists(const std::string &path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// Owns a lemon_pull_result: frees it once, on destruction or reset. Not copyable.
class PullResult {
public:
    PullResult() = default;
    PullResult(const PullResult &) = delete;
    PullResult &operator=(const PullResult &) = delete;
    ~PullResult() { lemon_pull_result_free(&r_); }

    lemon_pull_result *out() {
        reset();  // a result must be freed before it is reused
        return &r_;
    }
    void reset() { lemon_pull_result_free(&r_); }
    const lemon_pull_result &operator*() const { return r_; }
    const lemon_pull_result *operator->() const { return &r_; }
    std::string error() const { return str(r_.error_message); }

    // lemonade's mapping: the exact "Download cancelled" for a cancel, the message otherwise.
    void throw_if_failed() const {
        if (r_.status == LEMON_STATUS_OK) return;
        if (r_.status == LEMON_STATUS_CANCELLED) throw std::runtime_error("Download cancelled");
        throw std::runtime_error(error());
    }

private:
    lemon_pull_result r_{};
};

lemon_pull_options base_options(const std::string &cache) {
    static std::string endpoint, repo;  // outlive the call
    endpoint = env("LEMON_TEST_ENDPOINT");
    repo = env("LEMON_TEST_REPO");
    lemon_pull_options o;
    lemon_pull_options_init(&o);
    o.repo_id = repo.c_str();
    o.endpoint = endpoint.c_str();
    o.cache_dir = cache.c_str();
    o.token = "";
    o.max_retries = 3;
    o.initial_retry_delay_ms = 50;
    return o;
}

std::string snapshot_dir(const std::string &cache, std::string repo, const std::string &commit) {
    for (std::size_t i = repo.find('/'); i != std::string::npos; i = repo.find('/', i)) repo.replace(i, 1, "--");
    return cache + "/models--" + repo + "/snapshots/" + commit;
}

struct Progress {
    std::thread::id thread = std::this_thread::get_id();
    std::uint64_t cancel_at = 0;  // cancel once the current file has this many bytes (0 = never)
    int events = 0, wrong_thread = 0, completes = 0;
    std::uint64_t start_offset = 0;
    std::vector<std::string> files;
};

// A captureless lambda converts to the C function pointer type; noexcept because nothing may
// unwind into the library.
const lemon_progress_cb on_progress = [](void *user_data, const lemon_progress *p) noexcept -> std::int32_t {
    auto &st = *static_cast<Progress *>(user_data);
    ++st.events;
    if (std::this_thread::get_id() != st.thread) ++st.wrong_thread;
    switch (p->kind) {
    case LEMON_PROGRESS_KIND_FILE_START:
        st.start_offset = p->file_bytes_offset;
        st.files.emplace_back(p->file);  // copy: the string dies when the callback returns
        break;
    case LEMON_PROGRESS_KIND_COMPLETE:
        ++st.completes;
        break;
    default:
        break;
    }
    return st.cancel_at != 0 && p->kind == LEMON_PROGRESS_KIND_PROGRESS && p->file_bytes_done >= st.cancel_at;
};

void phase_args() {
    PullResult r;
    lemon_status s = lemon_resume_pull(nullptr, r.out());
    check("NULL options", s == LEMON_STATUS_INVALID_ARGUMENT && r.error().find("options is NULL") != std::string::npos,
          r.error());
    lemon_pull_options o;
    lemon_pull_options_init(&o);
    s = lemon_resume_pull(&o, r.out());
    check("NULL repo_id", s == LEMON_STATUS_INVALID_ARGUMENT && r.error().find("repo_id") != std::string::npos,
          r.error());
    o.repo_id = "org/\xc3\x28";
    s = lemon_resume_pull(&o, r.out());
    check("invalid UTF-8", s == LEMON_STATUS_INVALID_ARGUMENT && r.error().find("UTF-8") != std::string::npos,
          r.error());
    o.repo_id = "org/name";
    o.exclude_len = 1;
    s = lemon_resume_pull(&o, r.out());
    check("exclude NULL with a length", s == LEMON_STATUS_INVALID_ARGUMENT, r.error());
    bool threw = false;
    try {
        r.throw_if_failed();
    } catch (const std::runtime_error &e) {
        threw = std::string(e.what()).find("exclude") != std::string::npos;
    }
    check("status maps to an exception", threw);
    r.reset();
    r.reset();
    check("reset twice is safe", r->error_message == nullptr);
    check("status_str unknown", std::string(lemon_status_str(-7)) == "unknown status" &&
                                    std::string(lemon_status_str(1 << 20)) == "unknown status");
    check("status_str known", std::string(lemon_status_str(LEMON_STATUS_CANCELLED)) == "Download cancelled");
    check("version", std::string(lemon_pull_version()).size() >= 5);
    check("enum is 32-bit", sizeof(lemon_status) == sizeof(std::int32_t));
}

void phase_cancel_cb(const std::string &cache) {
    auto o = base_options(cache);
    std::string pattern = env("LEMON_TEST_FILE");
    const char *include[] = {pattern.c_str()};
    o.include = include;
    o.include_len = 1;
    Progress st;
    st.cancel_at = 1 << 20;
    o.progress_cb = on_progress;
    o.user_data = &st;
    PullResult r;
    lemon_status s = lemon_resume_pull(&o, r.out());
    check("lambda cancel returns CANCELLED", s == LEMON_STATUS_CANCELLED, r.error());
    std::string what;
    try {
        r.throw_if_failed();
    } catch (const std::runtime_error &e) {
        what = e.what();
    }
    check("exception text is \"Download cancelled\"", what == "Download cancelled" && r.error() == what, what);
    std::string partial = snapshot_dir(cache, env("LEMON_TEST_REPO"), env("LEMON_TEST_COMMIT")) + "/" + pattern +
                          ".partial";
    check("partial kept", exists(partial), partial);
    check("callback on the calling thread", st.wrong_thread == 0 && st.events > 0 && st.completes == 0);
}

void phase_cancel_flag(const std::string &cache) {
    auto o = base_options(cache);
    std::string pattern = env("LEMON_TEST_FILE");
    const char *include[] = {pattern.c_str()};
    o.include = include;
    o.include_len = 1;
    // A lock-free std::atomic<int32_t> has the representation of int32_t: lemonade's way to share
    // its cancel flag.
    static_assert(sizeof(std::atomic<std::int32_t>) == sizeof(std::int32_t), "atomic is not plain");
    static_assert(std::atomic<std::int32_t>::is_always_lock_free, "atomic is not lock-free");
    std::atomic<std::int32_t> flag{0};
    o.cancel_flag = reinterpret_cast<const volatile std::int32_t *>(&flag);
    std::chrono::steady_clock::time_point set_at;
    std::thread setter([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        set_at = std::chrono::steady_clock::now();
        flag.store(1);
    });
    PullResult r;
    lemon_status s = lemon_resume_pull(&o, r.out());
    auto returned = std::chrono::steady_clock::now();
    setter.join();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(returned - set_at).count();
    check("atomic flag cancel returns CANCELLED", s == LEMON_STATUS_CANCELLED && r.error() == "Download cancelled",
          r.error());
    check("returns within 1 s of the flag", ms < 1000, std::to_string(ms) + " ms");
    std::string partial = snapshot_dir(cache, env("LEMON_TEST_REPO"), env("LEMON_TEST_COMMIT")) + "/" + pattern +
                          ".partial";
    check("partial kept", exists(partial), partial);
}

void phase_resume(const std::string &cache) {
    auto o = base_options(cache);
    std::string pattern = env("LEMON_TEST_FILE");
    const char *include[] = {pattern.c_str()};
    o.include = include;
    o.include_len = 1;
    Progress st;
    o.progress_cb = on_progress;
    o.user_data = &st;
    PullResult r;
    lemon_status s = lemon_resume_pull(&o, r.out());
    const std::uint64_t size = std::strtoull(env("LEMON_TEST_FILE_SIZE").c_str(), nullptr, 10);
    check("resume succeeds", s == LEMON_STATUS_OK, r.error());
    std::string detail = "downloaded " + std::to_string(r->bytes_downloaded) + " reused " +
                         std::to_string(r->bytes_reused);
    check("resume downloads less than the file", r->bytes_downloaded < size, detail);
    check("downloaded + reused covers the file", r->bytes_downloaded + r->bytes_reused >= size, detail);
    check("resume offset reported", st.start_offset > 0 && st.files.size() == 1 && st.files[0] == pattern);
    check("one COMPLETE", st.completes == 1);
    check("commit", str(r->commit) == env("LEMON_TEST_COMMIT"), str(r->commit));
    check("snapshot exists", exists(str(r->snapshot_path) + "/" + pattern), str(r->snapshot_path));
}

void phase_concurrent(const std::string &cache) {
    struct Job {
        std::string repo, commit;
        lemon_status status = LEMON_STATUS_INTERNAL;
        std::string snapshot, error;
        int wrong_thread = 0;
    };
    std::vector<Job> jobs(2);
    jobs[0].repo = env("LEMON_TEST_REPO");
    jobs[0].commit = env("LEMON_TEST_COMMIT");
    jobs[1].repo = env("LEMON_TEST_REPO2");
    jobs[1].commit = env("LEMON_TEST_COMMIT2");
    std::string endpoint = env("LEMON_TEST_ENDPOINT");
    std::vector<std::thread> threads;
    for (auto &job : jobs) {
        threads.emplace_back([&job, &cache, &endpoint] {
            lemon_pull_options o;
            lemon_pull_options_init(&o);
            o.repo_id = job.repo.c_str();
            o.endpoint = endpoint.c_str();
            o.cache_dir = cache.c_str();
            o.token = "";
            Progress st;  // created on this thread: the callback must run here
            o.progress_cb = on_progress;
            o.user_data = &st;
            PullResult r;
            job.status = lemon_resume_pull(&o, r.out());
            job.snapshot = str(r->snapshot_path);
            job.error = r.error();
            job.wrong_thread = st.wrong_thread;
        });
    }
    for (auto &t : threads) t.join();
    for (auto &job : jobs) {
        check("concurrent " + job.repo, job.status == LEMON_STATUS_OK && job.wrong_thread == 0, job.error);
        check("concurrent " + job.repo + " snapshot",
              job.snapshot == snapshot_dir(cache, job.repo, job.commit) && exists(job.snapshot), job.snapshot);
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: test_cpp PHASE [CACHE_DIR]\n");
        return 2;
    }
    g_phase = argv[1];
    const std::string cache = argc > 2 ? argv[2] : "";
    if (g_phase == "args") {
        phase_args();
    } else if (cache.empty()) {
        std::fprintf(stderr, "test_cpp: phase %s needs CACHE_DIR\n", argv[1]);
        return 2;
    } else if (g_phase == "cancel-cb") {
        phase_cancel_cb(cache);
    } else if (g_phase == "cancel-flag") {
        phase_cancel_flag(cache);
    } else if (g_phase == "resume") {
        phase_resume(cache);
    } else if (g_phase == "concurrent") {
        phase_concurrent(cache);
    } else {
        std::fprintf(stderr, "test_cpp: unknown phase %s\n", argv[1]);
        return 2;
    }
    return g_failed ? 1 : 0;
}
