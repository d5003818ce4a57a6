/*
 * C99 consumer test of the lemon_pull C API. Built and driven by ffi-tests/run.sh, which starts the
 * mock hub and sets its rate limit between phases.
 *
 * Usage: test_c PHASE [CACHE_DIR]
 *   args        argument checking, statuses, strings, free (no network)
 *   errors      error statuses from the hub, dry run
 *   cancel-cb   cancel from the callback once 1 MiB of the GGUF arrived (hub rate-limited)
 *   cancel-flag cancel from the flag, set from another thread (hub rate-limited)
 *   resume      a second call resumes what a cancel left
 *   concurrent  two repositories pulled from two threads at once
 *   components  a main repo plus a file from a second repo in one call
 *   oldstruct   an options struct cut short (an older caller): defaults for the rest
 *   stall-cancel   cancel from the callback 2 s into a 30 s silent stall (run.sh queues the stall)
 *   backoff-cancel cancel from the callback 1 s into a 30 s Retry-After wait (run.sh queues a 429)
 *   lock-cancel    cancel from the callback 1 s into a wait for the repository's lock
 *   pinned      a pinned commit with an exact file list after main moved (LEMON_TEST_COMMIT2 is
 *               main's newer commit of LEMON_TEST_REPO2)
 *   unreachable with a complete snapshot cached, a refusing endpoint answers from the cache
 *               (from_cache = 1) within seconds; NO_CACHE_FALLBACK makes it NETWORK
 *   keep        after `pinned` (same cache), main moved to a commit with the same files:
 *               KEEP_UNCHANGED_SNAPSHOT keeps the pinned snapshot, downloading nothing
 *   hermetic    HF_* and proxy variables in the environment change nothing without
 *               LEMON_PULL_FLAG_READ_ENVIRONMENT (run.sh checks that no token reached the hub)
 *   environment with the flag, HF_ENDPOINT, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply
 *               (run.sh checks that the hub saw the token)
 * Environment: LEMON_TEST_ENDPOINT, LEMON_TEST_REPO, LEMON_TEST_REPO2, LEMON_TEST_COMMIT,
 *   LEMON_TEST_COMMIT2, LEMON_TEST_FILE (the GGUF path), LEMON_TEST_FILE_SIZE.
 * Prints one "PASS name" or "FAIL name" line per check; exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "lemon_pull.h"
#include "lemon_pull.h" /* twice on purpose: the include guard must hold */

static int g_failed = 0;
static const char *g_phase = "?";

static void check(const char *name, int ok, const char *detail) {
    if (ok) {
        printf("PASS c/%s: %s\n", g_phase, name);
    } else {
        printf("FAIL c/%s: %s%s%s\n", g_phase, name, detail ? " -- " : "", detail ? detail : "");
        g_failed = 1;
    }
    fflush(stdout);
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "test_c: %s is not set\n", name);
        exit(2);
    }
    return v;
}

static const char *or_null(const char *s) { return s ? s : "(null)"; }

static int contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

static int streq(const char *a, const char *b) { return a != NULL && b != NULL && strcmp(a, b) == 0; }

static int is_hex40(const char *s) {
    size_t i;
    if (s == NULL || strlen(s) != 40) return 0;
    for (i = 0; i < 40; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

/* -1 when missing */
static long long file_size(const char *path) {
    struct stat st;
    if (path == NULL || stat(path, &st) != 0) return -1;
    return (long long)st.st_size;
}

static int is_dir(const char *path) {
    struct stat st;
    return path != NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* <cache>/models--org--name/snapshots/<commit> */
static void snapshot_dir(char *out, size_t n, const char *cache, const char *repo, const char *commit) {
    char folder[512];
    size_t i, j = 0;
    for (i = 0; repo[i] != '\0' && j + 3 < sizeof folder; i++) {
        if (repo[i] == '/') {
            folder[j++] = '-';
            folder[j++] = '-';
        } else {
            folder[j++] = repo[i];
        }
    }
    folder[j] = '\0';
    snprintf(out, n, "%s/models--%s/snapshots/%s", cache, folder, commit);
}

static void base_options(lemon_pull_options *o, const char *cache) {
    lemon_pull_options_init(o);
    o->repo_id = env("LEMON_TEST_REPO");
    o->endpoint = env("LEMON_TEST_ENDPOINT");
    o->cache_dir = cache;
    o->token = ""; /* anonymous, whatever HF_TOKEN says */
    o->max_retries = 3;
    o->initial_retry_delay_ms = 50;
    o->connect_timeout_ms = 5000;
    o->stall_timeout_ms = 5000;
}

/* ------------------------------------------------------------------------------------------ */
/* Progress recording                                                                          */

typedef struct recorder {
    pthread_t thread;          /* the thread that calls lemon_resume_pull */
    uint64_t cancel_at;        /* cancel once the file has this many bytes (0 = never) */
    double cancel_time;        /* when the callback asked to cancel */
    int events, wrong_thread, null_strings, bad_percent, after_complete;
    int resolved, plan, file_start, progress, file_done, complete, retry;
    int complete_ok;           /* the COMPLETE event had complete=1, percent=100, index=total */
    int incomplete_flag_wrong; /* complete != 0 on another kind */
    char commit[64];
    uint32_t total_files;
    uint64_t total_bytes, start_offset, last_file_done, size_seen;
    int struct_size_ok;
} recorder;

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    r->thread = pthread_self();
    r->struct_size_ok = 1;
}

static int32_t record(void *user_data, const lemon_progress *p) {
    recorder *r = (recorder *)user_data;
    r->events++;
    if (!pthread_equal(pthread_self(), r->thread)) r->wrong_thread++;
    if (p->struct_size < sizeof(lemon_progress)) r->struct_size_ok = 0;
    if (p->repo_id == NULL || p->file == NULL || p->message == NULL) {
        r->null_strings++;
        return 0;
    }
    if (p->percent < 0 || p->percent > 100) r->bad_percent++;
    if (r->complete) r->after_complete++;
    if (p->kind != LEMON_PROGRESS_KIND_COMPLETE && p->complete != 0) r->incomplete_flag_wrong++;
    switch (p->kind) {
    case LEMON_PROGRESS_KIND_RESOLVED:
        if (r->resolved++ == 0) snprintf(r->commit, sizeof r->commit, "%s", p->message);
        break;
    case LEMON_PROGRESS_KIND_PLAN:
        r->plan++;
        r->total_files = p->total_files;
        r->total_bytes = p->total_bytes;
        break;
    case LEMON_PROGRESS_KIND_FILE_START:
        if (r->file_start++ == 0) r->start_offset = p->file_bytes_offset;
        r->size_seen = p->file_bytes_total;
        break;
    case LEMON_PROGRESS_KIND_PROGRESS:
        r->progress++;
        r->last_file_done = p->file_bytes_done;
        break;
    case LEMON_PROGRESS_KIND_FILE_DONE:
        r->file_done++;
        break;
    case LEMON_PROGRESS_KIND_RETRY:
        r->retry++;
        break;
    case LEMON_PROGRESS_KIND_COMPLETE:
        r->complete++;
        r->complete_ok = p->complete == 1 && p->percent == 100 && p->file_index == p->total_files &&
                         p->total_bytes_done == p->total_bytes;
        break;
    default:
        break;
    }
    if (r->cancel_at != 0 && p->kind == LEMON_PROGRESS_KIND_PROGRESS && p->file_bytes_done >= r->cancel_at) {
        r->cancel_time = now_ms();
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Phases                                                                                      */

static void expect_invalid(const char *name, const lemon_pull_options *o, const char *needle) {
    lemon_pull_result r = {0};
    char detail[512];
    lemon_status s = lemon_resume_pull(o, &r);
    snprintf(detail, sizeof detail, "status %d, message %s", (int)s, or_null(r.error_message));
    check(name, s == LEMON_STATUS_INVALID_ARGUMENT && r.status == LEMON_STATUS_INVALID_ARGUMENT &&
                    contains(r.error_message, needle) && r.snapshot_path == NULL && r.commit == NULL &&
                    r.struct_size == sizeof r,
          detail);
    lemon_pull_result_free(&r);
}

static void phase_args(void) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    const char *bad_utf8 = "org/\xff\xfe";
    const char *patterns[2];
    int32_t code;
    int known_ok = 1;
    lemon_status s;

    lemon_pull_options_init(&o);
    check("options_init sets struct_size", o.struct_size == sizeof o, NULL);
    check("options_init defaults", o.max_retries == 10 && o.repo_id == NULL && o.progress_cb == NULL &&
                                       o.cancel_flag == NULL && o.flags == 0, NULL);
    lemon_pull_options_init(NULL);

    expect_invalid("NULL options", NULL, "options is NULL");
    s = lemon_resume_pull(&o, NULL);
    check("NULL result", s == LEMON_STATUS_INVALID_ARGUMENT, NULL);
    check("NULL options and result", lemon_resume_pull(NULL, NULL) == LEMON_STATUS_INVALID_ARGUMENT, NULL);
    expect_invalid("NULL repo_id", &o, "repo_id is NULL");

    o.repo_id = bad_utf8;
    expect_invalid("invalid UTF-8 repo_id", &o, "repo_id is not valid UTF-8");
    o.repo_id = "org/name";
    o.revision = bad_utf8;
    expect_invalid("invalid UTF-8 revision", &o, "revision is not valid UTF-8");
    o.revision = NULL;

    patterns[0] = "*.gguf";
    patterns[1] = bad_utf8;
    o.include = patterns;
    o.include_len = 2;
    expect_invalid("invalid UTF-8 include[1]", &o, "include[1] is not valid UTF-8");
    o.include = NULL;
    expect_invalid("include NULL with include_len 2", &o, "include is NULL but include_len is 2");
    o.include_len = 0;

    o.flags = 0x100;
    expect_invalid("unknown flag bits", &o, "unknown flags");
    o.flags = 0;

    o.struct_size = 4;
    expect_invalid("struct_size 4", &o, "struct_size");
    o.struct_size = 0;
    expect_invalid("struct_size 0", &o, "struct_size");
    o.struct_size = sizeof o;

    /* A result with a bogus struct_size is left alone. */
    r.struct_size = 3;
    s = lemon_resume_pull(NULL, &r);
    check("result with bad struct_size untouched",
          s == LEMON_STATUS_INVALID_ARGUMENT && r.struct_size == 3 && r.error_message == NULL, NULL);
    r.struct_size = 0;

    s = lemon_resume_pull(NULL, &r);
    check("failed result has a message", s == LEMON_STATUS_INVALID_ARGUMENT && r.error_message != NULL, NULL);
    lemon_pull_result_free(&r);
    check("free nulls the pointers", r.error_message == NULL && r.snapshot_path == NULL && r.commit == NULL &&
                                         r.repos == NULL, NULL);
    lemon_pull_result_free(&r);
    lemon_pull_result_free(NULL);
    check("free twice and free(NULL) are safe", r.status == LEMON_STATUS_INVALID_ARGUMENT, NULL);

    /* LEMON_STATUS_NOT_CACHED is the last value; a new status must move this bound. */
    for (code = 0; code <= LEMON_STATUS_NOT_CACHED; code++) {
        const char *t = lemon_status_str(code);
        if (t == NULL || *t == '\0' || streq(t, "unknown status")) known_ok = 0;
    }
    check("status_str of every known status", known_ok, NULL);
    check("status_str(CANCELLED)", streq(lemon_status_str(LEMON_STATUS_CANCELLED), "Download cancelled"), NULL);
    check("status_str(OK)", streq(lemon_status_str(LEMON_STATUS_OK), "success"), NULL);
    check("status_str of unknown values",
          streq(lemon_status_str(-1), "unknown status") && streq(lemon_status_str(LEMON_STATUS_NOT_CACHED + 1), "unknown status") &&
              streq(lemon_status_str(9999), "unknown status") &&
              streq(lemon_status_str(INT32_MIN), "unknown status") &&
              streq(lemon_status_str(INT32_MAX), "unknown status"),
          NULL);
    check("version", lemon_pull_version() != NULL && strlen(lemon_pull_version()) >= 5, lemon_pull_version());

    check("accessors on NULL", lemon_pull_result_repo_count(NULL) == 0 && lemon_pull_result_repo_id(NULL, 0) == NULL &&
                                   lemon_pull_result_repo_commit(NULL, 0) == NULL &&
                                   lemon_pull_result_repo_snapshot_path(NULL, 0) == NULL,
          NULL);
    check("accessors on a failed result", lemon_pull_result_repo_count(&r) == 0 && lemon_pull_result_repo_id(&r, 0) == NULL,
          NULL);
}

static void phase_errors(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    const char *nothing[1];
    char detail[512], snap[1024];
    lemon_status s;

    base_options(&o, cache);
    o.repo_id = "local/does-not-exist";
    o.max_retries = 0;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d http %d: %s", (int)s, r.http_status, or_null(r.error_message));
    check("unknown repo is REPO_NOT_FOUND with HTTP 401 or 404",
          s == LEMON_STATUS_REPO_NOT_FOUND && (r.http_status == 401 || r.http_status == 404) && contains(r.error_message, "local/does-not-exist"),
          detail);
    lemon_pull_result_free(&r);

    base_options(&o, cache);
    o.variant = "Q9_9";
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("missing variant is FILE_NOT_FOUND", s == LEMON_STATUS_FILE_NOT_FOUND, detail);
    lemon_pull_result_free(&r);

    base_options(&o, cache);
    nothing[0] = "*.nothing";
    o.include = nothing;
    o.include_len = 1;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("empty selection is NO_FILES_SELECTED", s == LEMON_STATUS_NO_FILES_SELECTED, detail);
    lemon_pull_result_free(&r);

    base_options(&o, cache);
    o.ca_bundle = "/nonexistent/corp-ca.pem";
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("unreadable ca_bundle is INVALID_ARGUMENT naming it",
          s == LEMON_STATUS_INVALID_ARGUMENT && contains(r.error_message, "/nonexistent/corp-ca.pem"), detail);
    lemon_pull_result_free(&r);

    base_options(&o, cache);
    o.flags = LEMON_PULL_FLAG_OFFLINE;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("offline with nothing cached is NOT_CACHED", s == LEMON_STATUS_NOT_CACHED && r.error_message != NULL, detail);
    lemon_pull_result_free(&r);

    base_options(&o, cache);
    o.flags = LEMON_PULL_FLAG_DRY_RUN;
    s = lemon_resume_pull(&o, &r);
    snapshot_dir(snap, sizeof snap, cache, env("LEMON_TEST_REPO"), env("LEMON_TEST_COMMIT"));
    snprintf(detail, sizeof detail, "status %d files %u: %s", (int)s, r.files, or_null(r.error_message));
    check("dry run plans and writes nothing",
          s == LEMON_STATUS_OK && streq(r.commit, env("LEMON_TEST_COMMIT")) && streq(r.snapshot_path, snap) &&
              r.files >= 3 && r.bytes_downloaded == 0 && !is_dir(snap),
          detail);
    lemon_pull_result_free(&r);
}

static void gguf_only(lemon_pull_options *o, const char **pattern) {
    *pattern = env("LEMON_TEST_FILE");
    o->include = pattern;
    o->include_len = 1;
}

/* The state a cancel must leave: a partial and the manifest, no final file, no ref. */
static void check_kept_partial(const char *cache, const lemon_pull_result *r) {
    char snap[1024], path[1200], detail[256];
    long long size = atoll(env("LEMON_TEST_FILE_SIZE"));
    long long partial;
    snapshot_dir(snap, sizeof snap, cache, env("LEMON_TEST_REPO"), env("LEMON_TEST_COMMIT"));
    snprintf(path, sizeof path, "%s/%s.partial", snap, env("LEMON_TEST_FILE"));
    partial = file_size(path);
    snprintf(detail, sizeof detail, "partial %lld of %lld bytes", partial, size);
    check("partial kept", partial > 0 && partial < size, detail);
    snprintf(detail, sizeof detail, "bytes_on_disk %llu, partial %lld", (unsigned long long)r->bytes_on_disk,
             partial);
    check("bytes_on_disk reports the kept partial", (long long)r->bytes_on_disk == partial, detail);
    snprintf(path, sizeof path, "%s/.download_manifest.json", snap);
    check("manifest kept", file_size(path) > 0, path);
    snprintf(path, sizeof path, "%s/%s", snap, env("LEMON_TEST_FILE"));
    check("no final file", file_size(path) < 0, path);
    snprintf(detail, sizeof detail, "bytes_downloaded %llu", (unsigned long long)r->bytes_downloaded);
    check("bytes_downloaded reported on cancel", r->bytes_downloaded > 0 && (long long)r->bytes_downloaded < size,
          detail);
}

static void phase_cancel_cb(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    recorder rec;
    const char *pattern;
    double returned;
    char detail[256];
    lemon_status s;

    base_options(&o, cache);
    gguf_only(&o, &pattern);
    recorder_init(&rec);
    rec.cancel_at = 1u << 20;
    o.progress_cb = record;
    o.user_data = &rec;
    s = lemon_resume_pull(&o, &r);
    returned = now_ms();
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("callback cancel returns CANCELLED", s == LEMON_STATUS_CANCELLED && r.status == LEMON_STATUS_CANCELLED,
          detail);
    check("message is exactly \"Download cancelled\"", streq(r.error_message, "Download cancelled"), detail);
    check("no snapshot or commit on failure", r.snapshot_path == NULL && r.commit == NULL && r.repos == NULL, NULL);
    snprintf(detail, sizeof detail, "%.0f ms", returned - rec.cancel_time);
    check("returns promptly after the callback cancels", rec.cancel_time > 0 && returned - rec.cancel_time < 1000,
          detail);
    check("RESOLVED carries the commit", rec.resolved >= 1 && streq(rec.commit, env("LEMON_TEST_COMMIT")), rec.commit);
    check("PLAN carries the totals",
          rec.plan == 1 && rec.total_files == 1 && (long long)rec.total_bytes == atoll(env("LEMON_TEST_FILE_SIZE")),
          NULL);
    check("events well formed", rec.null_strings == 0 && rec.bad_percent == 0 && rec.wrong_thread == 0 &&
                                    rec.struct_size_ok && rec.complete == 0 && rec.incomplete_flag_wrong == 0,
          NULL);
    check_kept_partial(cache, &r);
    lemon_pull_result_free(&r);
}

typedef struct flag_setter {
    volatile int32_t *flag;
    long delay_ms;
    double set_time;
} flag_setter;

static void *set_flag_later(void *arg) {
    flag_setter *f = (flag_setter *)arg;
    sleep_ms(f->delay_ms);
    f->set_time = now_ms();
    *f->flag = 1;
    return NULL;
}

static void phase_cancel_flag(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    volatile int32_t flag = 0;
    flag_setter setter;
    pthread_t thread;
    const char *pattern;
    double returned;
    char detail[256];
    lemon_status s;

    base_options(&o, cache);
    gguf_only(&o, &pattern);
    o.cancel_flag = &flag;
    setter.flag = &flag;
    setter.delay_ms = 700;
    setter.set_time = 0;
    if (pthread_create(&thread, NULL, set_flag_later, &setter) != 0) {
        check("pthread_create", 0, NULL);
        return;
    }
    s = lemon_resume_pull(&o, &r);
    returned = now_ms();
    pthread_join(thread, NULL);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("flag cancel returns CANCELLED", s == LEMON_STATUS_CANCELLED, detail);
    check("message is exactly \"Download cancelled\"", streq(r.error_message, "Download cancelled"), detail);
    snprintf(detail, sizeof detail, "%.0f ms after the flag was set", returned - setter.set_time);
    printf("INFO c/%s: flag cancel latency %s\n", g_phase, detail);
    check("returns within 1 s of the flag", setter.set_time > 0 && returned - setter.set_time < 1000, detail);
    check_kept_partial(cache, &r);
    lemon_pull_result_free(&r);
}

static void phase_resume(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    recorder rec;
    const char *pattern;
    char snap[1024], path[1200], detail[512];
    unsigned long long size = strtoull(env("LEMON_TEST_FILE_SIZE"), NULL, 10);
    FILE *ref;
    char ref_text[64] = {0};
    lemon_status s;

    base_options(&o, cache);
    gguf_only(&o, &pattern);
    recorder_init(&rec);
    o.progress_cb = record;
    o.user_data = &rec;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("resume succeeds", s == LEMON_STATUS_OK && r.status == LEMON_STATUS_OK && r.error_message == NULL, detail);
    snprintf(detail, sizeof detail, "downloaded %llu reused %llu size %llu", (unsigned long long)r.bytes_downloaded,
             (unsigned long long)r.bytes_reused, size);
    printf("INFO c/%s: %s\n", g_phase, detail);
    check("resume downloads less than the file", r.bytes_downloaded < size, detail);
    check("downloaded + reused covers the file", r.bytes_downloaded + r.bytes_reused >= size, detail);
    check("FILE_START reports the resume offset", rec.file_start == 1 && rec.start_offset > 0 && rec.size_seen == size,
          NULL);
    check("exactly one COMPLETE, last, well formed",
          rec.complete == 1 && rec.after_complete == 0 && rec.complete_ok && rec.incomplete_flag_wrong == 0, NULL);
    check("callback on the calling thread only", rec.wrong_thread == 0 && rec.events > 0, NULL);

    snapshot_dir(snap, sizeof snap, cache, env("LEMON_TEST_REPO"), env("LEMON_TEST_COMMIT"));
    check("commit is 40 hex and the hub's", is_hex40(r.commit) && streq(r.commit, env("LEMON_TEST_COMMIT")),
          or_null(r.commit));
    check("snapshot_path is the snapshot folder", streq(r.snapshot_path, snap) && is_dir(r.snapshot_path),
          or_null(r.snapshot_path));
    snprintf(path, sizeof path, "%s/%s", snap, env("LEMON_TEST_FILE"));
    check("file complete under its final name", file_size(path) == (long long)size, path);
    snprintf(path, sizeof path, "%s/%s.partial", snap, env("LEMON_TEST_FILE"));
    check("partial gone", file_size(path) < 0, path);
    snprintf(path, sizeof path, "%s/.download_manifest.json", snap);
    check("manifest gone", file_size(path) < 0, path);
    snprintf(path, sizeof path, "%s/../../refs/main", snap);
    ref = fopen(path, "r");
    if (ref != NULL) {
        size_t n = fread(ref_text, 1, sizeof ref_text - 1, ref);
        ref_text[n] = '\0';
        fclose(ref);
    }
    check("refs/main names the commit", streq(ref_text, env("LEMON_TEST_COMMIT")), ref_text);
    check("one repository in the result",
          lemon_pull_result_repo_count(&r) == 1 && streq(lemon_pull_result_repo_id(&r, 0), env("LEMON_TEST_REPO")) &&
              streq(lemon_pull_result_repo_commit(&r, 0), r.commit) &&
              streq(lemon_pull_result_repo_snapshot_path(&r, 0), r.snapshot_path) &&
              lemon_pull_result_repo_id(&r, 1) == NULL,
          NULL);
    check("result counters", r.files == 1 && r.total_bytes == size && r.http_status == 0, NULL);
    lemon_pull_result_free(&r);
    check("free nulls every pointer",
          r.snapshot_path == NULL && r.commit == NULL && r.error_message == NULL && r.repos == NULL, NULL);
    lemon_pull_result_free(&r);
    check("free twice is safe", r.status == LEMON_STATUS_OK, NULL);

    /* The snapshot is complete now: an offline pull answers from the cache, downloading nothing. */
    base_options(&o, cache);
    gguf_only(&o, &pattern);
    o.flags = LEMON_PULL_FLAG_OFFLINE;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d downloaded %llu: %s", (int)s, (unsigned long long)r.bytes_downloaded,
             or_null(r.error_message));
    check("offline pull of the complete snapshot", s == LEMON_STATUS_OK && streq(r.snapshot_path, snap) &&
                                                       r.bytes_downloaded == 0 && r.files == 1,
          detail);
    lemon_pull_result_free(&r);
}

typedef struct worker {
    const char *cache, *repo, *commit;
    lemon_status status;
    char message[256], snapshot[1024], result_commit[64];
    recorder rec;
} worker;

static void *pull_in_thread(void *arg) {
    worker *w = (worker *)arg;
    lemon_pull_options o;
    lemon_pull_result r = {0};
    base_options(&o, w->cache);
    o.repo_id = w->repo;
    recorder_init(&w->rec); /* records this thread as the calling thread */
    o.progress_cb = record;
    o.user_data = &w->rec;
    w->status = lemon_resume_pull(&o, &r);
    snprintf(w->message, sizeof w->message, "%s", or_null(r.error_message));
    snprintf(w->snapshot, sizeof w->snapshot, "%s", or_null(r.snapshot_path));
    snprintf(w->result_commit, sizeof w->result_commit, "%s", or_null(r.commit));
    lemon_pull_result_free(&r);
    return NULL;
}

static void phase_concurrent(const char *cache) {
    worker w[2];
    pthread_t t[2];
    int i, started = 0;
    char detail[512];
    memset(w, 0, sizeof w);
    w[0].repo = env("LEMON_TEST_REPO");
    w[0].commit = env("LEMON_TEST_COMMIT");
    w[1].repo = env("LEMON_TEST_REPO2");
    w[1].commit = env("LEMON_TEST_COMMIT2");
    for (i = 0; i < 2; i++) {
        w[i].cache = cache;
        w[i].status = LEMON_STATUS_INTERNAL;
        if (pthread_create(&t[i], NULL, pull_in_thread, &w[i]) == 0) started++;
    }
    for (i = 0; i < started; i++) pthread_join(t[i], NULL);
    check("two threads started", started == 2, NULL);
    for (i = 0; i < 2; i++) {
        char snap[1024];
        snapshot_dir(snap, sizeof snap, cache, w[i].repo, w[i].commit);
        snprintf(detail, sizeof detail, "%s: status %d: %s", w[i].repo, (int)w[i].status, w[i].message);
        check("concurrent pull succeeds", w[i].status == LEMON_STATUS_OK, detail);
        check("concurrent pull result strings", streq(w[i].result_commit, w[i].commit) && streq(w[i].snapshot, snap) &&
                                                    is_dir(snap),
              w[i].snapshot);
        check("callback only on the pulling thread", w[i].rec.wrong_thread == 0 && w[i].rec.complete == 1, detail);
    }
}

static void phase_components(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    lemon_component comp;
    recorder rec;
    const char *config[1];
    char snap[1024], path[1200], detail[512];
    lemon_status s;

    base_options(&o, cache);
    config[0] = "config.json";
    o.include = config;
    o.include_len = 1;
    comp.repo_id = env("LEMON_TEST_REPO2");
    comp.path = "tokenizer.json";
    comp.revision = NULL;
    o.components = &comp;
    o.components_len = 1;
    recorder_init(&rec);
    o.progress_cb = record;
    o.user_data = &rec;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("main repo + component succeeds", s == LEMON_STATUS_OK, detail);
    check("one progress stream over both repos", rec.total_files == 2 && rec.file_done == 2 && rec.complete == 1, NULL);
    check("two repositories in the result", lemon_pull_result_repo_count(&r) == 2, NULL);
    check("repo 0 is the main repo", streq(lemon_pull_result_repo_id(&r, 0), env("LEMON_TEST_REPO")), NULL);
    snapshot_dir(snap, sizeof snap, cache, env("LEMON_TEST_REPO2"), env("LEMON_TEST_COMMIT2"));
    check("repo 1 is the component's repo", streq(lemon_pull_result_repo_id(&r, 1), env("LEMON_TEST_REPO2")) &&
                                                 streq(lemon_pull_result_repo_commit(&r, 1), env("LEMON_TEST_COMMIT2")) &&
                                                 streq(lemon_pull_result_repo_snapshot_path(&r, 1), snap),
          or_null(lemon_pull_result_repo_snapshot_path(&r, 1)));
    snprintf(path, sizeof path, "%s/tokenizer.json", snap);
    check("component file in its own repo folder", file_size(path) > 0, path);
    check("out-of-range accessor is NULL", lemon_pull_result_repo_commit(&r, 2) == NULL, NULL);
    lemon_pull_result_free(&r);
}

static void phase_oldstruct(const char *cache) {
    /* An "older caller" whose struct ends right before cancel_flag: exactly that many bytes on the
     * heap, so a read past them is an error under Valgrind. */
    size_t size = offsetof(lemon_pull_options, cancel_flag);
    lemon_pull_options full;
    lemon_pull_options *o = (lemon_pull_options *)malloc(size);
    lemon_pull_result r = {0};
    const char *config[1];
    char detail[512];
    lemon_status s;

    if (o == NULL) {
        check("malloc", 0, NULL);
        return;
    }
    base_options(&full, cache);
    config[0] = "config.json";
    full.include = config;
    full.include_len = 1;
    full.struct_size = (uint32_t)size;
    memcpy(o, &full, size);
    s = lemon_resume_pull(o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("short struct_size works with defaults", s == LEMON_STATUS_OK && r.files == 1, detail);
    lemon_pull_result_free(&r);
    free(o);
}

/* ------------------------------------------------------------------------------------------ */
/* Cancel from the callback while the library waits: TICK events keep coming, and a nonzero
 * return from one ends the call promptly. */

typedef struct waiter {
    pthread_t thread;
    int kind_to_wait_for; /* the event after which waiting starts (-1: the last byte event) */
    double wait_ms;       /* cancel on the first TICK this long after it */
    double since, last_event, longest_gap, cancel_time;
    int ticks, ticks_after, wrong_thread;
    char phase[32];
} waiter;

static int32_t wait_then_cancel(void *user_data, const lemon_progress *p) {
    waiter *w = (waiter *)user_data;
    double now = now_ms();
    if (!pthread_equal(pthread_self(), w->thread)) w->wrong_thread++;
    if (w->last_event > 0 && now - w->last_event > w->longest_gap) w->longest_gap = now - w->last_event;
    w->last_event = now;
    if (p->kind == LEMON_PROGRESS_KIND_TICK) {
        w->ticks++;
        if (w->since > 0) {
            w->ticks_after++;
            snprintf(w->phase, sizeof w->phase, "%s", p->message);
            if (w->cancel_time == 0 && now - w->since >= w->wait_ms) {
                w->cancel_time = now;
                return 1;
            }
        }
        return 0;
    }
    if (w->kind_to_wait_for < 0 ? (p->kind == LEMON_PROGRESS_KIND_PROGRESS ||
                                   p->kind == LEMON_PROGRESS_KIND_FILE_START)
                                : (int)p->kind == w->kind_to_wait_for) {
        w->since = now;
    }
    return 0;
}

/* Runs a pull that must be cancelled from a TICK `wait_ms` after the event `kind` (-1: the last
 * byte), in phase `phase`, within `budget_ms` of that event. */
static void cancel_while_waiting(const char *cache, int kind, double wait_ms, const char *phase,
                                 double budget_ms) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    waiter w;
    const char *pattern;
    double returned;
    char detail[256];
    lemon_status s;

    memset(&w, 0, sizeof w);
    w.thread = pthread_self();
    w.kind_to_wait_for = kind;
    w.wait_ms = wait_ms;
    base_options(&o, cache);
    gguf_only(&o, &pattern);
    o.stall_timeout_ms = 60000;
    o.max_total_retry_wait_ms = 120000;
    o.max_retry_delay_ms = 120000;
    o.progress_cb = wait_then_cancel;
    o.user_data = &w;
    s = lemon_resume_pull(&o, &r);
    returned = now_ms();
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("CANCELLED from a TICK", s == LEMON_STATUS_CANCELLED && w.cancel_time > 0, detail);
    check("message is exactly \"Download cancelled\"", streq(r.error_message, "Download cancelled"), detail);
    snprintf(detail, sizeof detail, "%d ticks in phase \"%s\"", w.ticks_after, w.phase);
    check("ticks name the phase", w.ticks_after >= 3 && streq(w.phase, phase), detail);
    snprintf(detail, sizeof detail, "longest silence %.0f ms", w.longest_gap);
    check("the callback hears from the call at least every 250 ms (+ scheduling slack)",
          w.longest_gap <= 400, detail);
    snprintf(detail, sizeof detail, "cancel latency %.0f ms, %.0f ms after the wait began",
             returned - w.cancel_time, returned - w.since);
    printf("measured c/%s: %s\n", g_phase, detail);
    check("returns within 500 ms of the cancel", w.cancel_time > 0 && returned - w.cancel_time <= 500, detail);
    check("total within budget", w.since > 0 && returned - w.since <= budget_ms, detail);
    check("callbacks on the calling thread only", w.wrong_thread == 0, NULL);
    lemon_pull_result_free(&r);
}

static void phase_stall_cancel(const char *cache) {
    cancel_while_waiting(cache, -1, 2000, "transfer", 2500);
    {
        char snap[1024], path[1200];
        snapshot_dir(snap, sizeof snap, cache, env("LEMON_TEST_REPO"), env("LEMON_TEST_COMMIT"));
        snprintf(path, sizeof path, "%s/%s.partial", snap, env("LEMON_TEST_FILE"));
        check("partial kept", file_size(path) > 0, path);
        snprintf(path, sizeof path, "%s/.download_manifest.json", snap);
        check("manifest kept", file_size(path) > 0, path);
    }
}

static void phase_backoff_cancel(const char *cache) {
    cancel_while_waiting(cache, LEMON_PROGRESS_KIND_RETRY, 1000, "backoff", 1500);
}

static void phase_lock_cancel(const char *cache) {
    char dir[1024], path[1200];
    int fd;
    snprintf(dir, sizeof dir, "%s/models--local--demo", cache);
    mkdir(cache, 0755);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/models--local--demo/.lemon-pull", cache);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/lock", dir);
    fd = open(path, O_CREAT | O_RDWR, 0644);
    check("hold the repository's lock (as another pull would)", fd >= 0 && flock(fd, LOCK_EX) == 0, path);
    cancel_while_waiting(cache, LEMON_PROGRESS_KIND_WAITING_FOR_LOCK, 1000, "lock", 1500);
    if (fd >= 0) close(fd);
}

static void phase_pinned(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    lemon_pull_file files[2];
    lemon_pull_repo repo;
    char snap[1024], path[1200], ref[1200], detail[256];
    lemon_status s;
    FILE *f;

    /* lemonade listed local/demo at LEMON_TEST_COMMIT and chose two exact files; local/demo2 moved
     * on to LEMON_TEST_COMMIT2 since, but lemonade wants the commit it listed there too. */
    base_options(&o, cache);
    memset(files, 0, sizeof files);
    files[0].path = "config.json";
    files[0].size = -1;
    files[1].path = env("LEMON_TEST_FILE");
    files[1].size = -1;
    o.commit = env("LEMON_TEST_COMMIT");
    o.files = files;
    o.files_len = 2;
    memset(&repo, 0, sizeof repo);
    repo.repo_id = "local/demo";
    repo.revision = "pinned-copy";
    repo.commit = env("LEMON_TEST_COMMIT");
    repo.files = files;
    repo.files_len = 1;
    o.repos = &repo;
    o.repos_len = 1;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("pinned pull of exact files succeeds (2 + 1 in the second ref)", s == LEMON_STATUS_OK && r.files == 3,
          detail);
    check("the result names the pinned commit", streq(r.commit, env("LEMON_TEST_COMMIT")), or_null(r.commit));
    lemon_pull_result_free(&r);
    snapshot_dir(snap, sizeof snap, cache, env("LEMON_TEST_REPO"), env("LEMON_TEST_COMMIT"));
    snprintf(path, sizeof path, "%s/%s", snap, env("LEMON_TEST_FILE"));
    check("the exact file landed", file_size(path) == atoll(env("LEMON_TEST_FILE_SIZE")), path);
    snprintf(ref, sizeof ref, "%s/models--local--demo/refs/pinned-copy", cache);
    f = fopen(ref, "r");
    detail[0] = '\0';
    if (f != NULL) {
        size_t n = fread(detail, 1, 64, f);
        detail[n] = '\0';
        fclose(f);
    }
    check("refs/<revision> of a pinned repo names its commit", streq(detail, env("LEMON_TEST_COMMIT")), detail);

    files[0].path = "no-such-file.json";
    o.files_len = 1;
    o.repos_len = 0;
    s = lemon_resume_pull(&o, &r);
    check("a missing exact file is FILE_NOT_FOUND naming it",
          s == LEMON_STATUS_FILE_NOT_FOUND && contains(r.error_message, "no-such-file.json"),
          or_null(r.error_message));
    lemon_pull_result_free(&r);

    files[0].path = "config.json";
    files[0].size = -2;
    s = lemon_resume_pull(&o, &r);
    check("a negative size other than -1 is INVALID_ARGUMENT", s == LEMON_STATUS_INVALID_ARGUMENT,
          or_null(r.error_message));
    lemon_pull_result_free(&r);
}

static int32_t count_from_cache(void *user_data, const lemon_progress *p) {
    if (p->kind == LEMON_PROGRESS_KIND_FROM_CACHE) ++*(int *)user_data;
    return 0;
}

static void phase_unreachable(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    const char *config[1] = {"config.json"};
    char detail[512];
    double started, took;
    int from_cache_events = 0;
    lemon_status s;

    base_options(&o, cache);
    o.include = config;
    o.include_len = 1;
    s = lemon_resume_pull(&o, &r);
    check("first pull caches the snapshot", s == LEMON_STATUS_OK, or_null(r.error_message));
    lemon_pull_result_free(&r);

    o.endpoint = "http://127.0.0.1:9"; /* the discard port: nothing listens here */
    o.progress_cb = count_from_cache;
    o.user_data = &from_cache_events;
    o.max_retries = 10; /* the library's own quick give-up must apply, not the retry budget */
    o.initial_retry_delay_ms = 2000;
    started = now_ms();
    s = lemon_resume_pull(&o, &r);
    took = now_ms() - started;
    snprintf(detail, sizeof detail, "status %d in %.0f ms: %s", (int)s, took, or_null(r.error_message));
    printf("measured c/%s: fallback %s\n", g_phase, detail);
    check("an unreachable hub is answered from the cached snapshot", s == LEMON_STATUS_OK && r.from_cache == 1,
          detail);
    check("within 5 s, with a FROM_CACHE event", took <= 5000 && from_cache_events == 1, detail);
    check("the cached commit", streq(r.commit, env("LEMON_TEST_COMMIT")), or_null(r.commit));
    lemon_pull_result_free(&r);

    o.flags = LEMON_PULL_FLAG_NO_CACHE_FALLBACK;
    started = now_ms();
    s = lemon_resume_pull(&o, &r);
    took = now_ms() - started;
    snprintf(detail, sizeof detail, "status %d in %.0f ms: %s", (int)s, took, or_null(r.error_message));
    printf("measured c/%s: strict %s\n", g_phase, detail);
    check("NO_CACHE_FALLBACK: NETWORK naming the endpoint, within 30 s",
          s == LEMON_STATUS_NETWORK && contains(r.error_message, "127.0.0.1:9") && took <= 30000, detail);
    lemon_pull_result_free(&r);
}

static void phase_keep(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    const char *wanted[2];
    char detail[512];
    lemon_status s;

    base_options(&o, cache);
    wanted[0] = "config.json";
    wanted[1] = env("LEMON_TEST_FILE");
    o.include = wanted;
    o.include_len = 2;
    o.flags = LEMON_PULL_FLAG_KEEP_UNCHANGED_SNAPSHOT;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d, commit %s, %llu bytes downloaded: %s", (int)s, or_null(r.commit),
             (unsigned long long)r.bytes_downloaded, or_null(r.error_message));
    check("main moved but nothing selected changed: the previous snapshot stays active",
          s == LEMON_STATUS_OK && streq(r.commit, env("LEMON_TEST_COMMIT")) && r.bytes_downloaded == 0, detail);
    lemon_pull_result_free(&r);
}

/* The same mock over ModelScope's API: lemonade's folder, tree-fingerprint snapshot and refs/main. */
static void phase_modelscope(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    const char *wanted[2];
    char detail[1024], ref_path[1024], ref[128] = {0};
    FILE *f;
    lemon_status s;

    base_options(&o, cache);
    wanted[0] = "config.json";
    wanted[1] = env("LEMON_TEST_FILE");
    o.include = wanted;
    o.include_len = 2;
    o.registry = LEMON_PULL_REGISTRY_MODELSCOPE;
    s = lemon_resume_pull(&o, &r);
    snprintf(ref_path, sizeof ref_path, "%s/modelscope--models--%s/refs/main", cache, "local--demo");
    f = fopen(ref_path, "rb");
    if (f != NULL) {
        size_t n = fread(ref, 1, sizeof ref - 1, f);
        ref[n] = 0;
        fclose(f);
    }
    snprintf(detail, sizeof detail, "status %d, commit %s, snapshot %s, refs/main %s, unverified %u: %s", (int)s,
             or_null(r.commit), or_null(r.snapshot_path), ref, r.files_not_hash_verified,
             or_null(r.error_message));
    check("a ModelScope pull lands in lemonade's folder, named by the tree fingerprint, refs/main naming it",
          s == LEMON_STATUS_OK && r.commit != NULL && strncmp(r.commit, "modelscope-master-", 18) == 0 &&
              strlen(r.commit) == 34 && contains(r.snapshot_path, "modelscope--models--local--demo/snapshots/") &&
              contains(r.snapshot_path, r.commit) && streq(ref, r.commit) && r.files == 2 &&
              r.files_not_hash_verified == 0,
          detail);
    lemon_pull_result_free(&r);
    o.registry = 7;
    expect_invalid("an unknown registry is an invalid argument", &o, "registry");
}

/* Variables that would change the pull if the library read them; HF_ENDPOINT and the proxies point
 * at a port where nothing listens. */
static void set_hostile_environment(const char *cache) {
    char path[1024];
    snprintf(path, sizeof path, "%s/env-cache", cache);
    setenv("HF_TOKEN", "hf_from_the_environment", 1);
    setenv("HF_HUB_OFFLINE", "1", 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1);
    setenv("HF_HUB_CACHE", path, 1);
    setenv("HF_HUB_DOWNLOAD_TIMEOUT", "0.001", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:9", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem", 1);
}

static void phase_hermetic(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    const char *config[1] = {"config.json"};
    char detail[512], want[1200];
    lemon_status s;

    set_hostile_environment(cache);
    base_options(&o, cache);
    o.token = NULL; /* anonymous without the flag, whatever HF_TOKEN says */
    o.include = config;
    o.include_len = 1;
    s = lemon_resume_pull(&o, &r);
    snprintf(detail, sizeof detail, "status %d: %s", (int)s, or_null(r.error_message));
    check("HF_HUB_OFFLINE, HF_ENDPOINT, proxies and SSL_CERT_FILE are ignored without the flag",
          s == LEMON_STATUS_OK && r.files == 1, detail);
    snprintf(want, sizeof want, "%s/models--", cache);
    check("the snapshot is in cache_dir, not HF_HUB_CACHE",
          r.snapshot_path != NULL && strncmp(r.snapshot_path, want, strlen(want)) == 0,
          or_null(r.snapshot_path));
    lemon_pull_result_free(&r);

    /* cache_dir is required when nothing may be read from the environment. */
    base_options(&o, NULL);
    s = lemon_resume_pull(&o, &r);
    check("no cache_dir without the flag is INVALID_ARGUMENT naming it",
          s == LEMON_STATUS_INVALID_ARGUMENT && contains(r.error_message, "cache"),
          or_null(r.error_message));
    lemon_pull_result_free(&r);

    /* With the flag, HF_HUB_OFFLINE=1 applies: a fresh cache holds nothing. */
    base_options(&o, NULL);
    o.flags = LEMON_PULL_FLAG_READ_ENVIRONMENT;
    s = lemon_resume_pull(&o, &r);
    check("with the flag HF_HUB_OFFLINE=1 makes the call offline (NOT_CACHED)",
          s == LEMON_STATUS_NOT_CACHED, or_null(r.error_message));
    lemon_pull_result_free(&r);
}

static void phase_environment(const char *cache) {
    lemon_pull_options o;
    lemon_pull_result r = {0};
    const char *config[1] = {"config.json"};
    char want[1200];
    lemon_status s;

    set_hostile_environment(cache);
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("HF_HUB_DOWNLOAD_TIMEOUT");
    unsetenv("HTTP_PROXY");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("SSL_CERT_FILE");
    setenv("HF_ENDPOINT", env("LEMON_TEST_ENDPOINT"), 1);
    base_options(&o, NULL);
    o.endpoint = NULL;
    o.token = NULL;
    o.include = config;
    o.include_len = 1;
    o.flags = LEMON_PULL_FLAG_READ_ENVIRONMENT;
    /* The mock hub knows no such token: its 401 shows that HF_ENDPOINT named the hub and HF_TOKEN
     * was sent (run.sh checks the Authorization header it received). */
    s = lemon_resume_pull(&o, &r);
    check("with the flag HF_ENDPOINT names the hub and HF_TOKEN is sent (UNAUTHORIZED)",
          s == LEMON_STATUS_UNAUTHORIZED, or_null(r.error_message));
    lemon_pull_result_free(&r);
    unsetenv("HF_TOKEN");
    s = lemon_resume_pull(&o, &r);
    check("with the flag HF_HUB_CACHE names the cache", s == LEMON_STATUS_OK && r.files == 1,
          or_null(r.error_message));
    snprintf(want, sizeof want, "%s/env-cache/models--", cache);
    check("the snapshot is in HF_HUB_CACHE",
          r.snapshot_path != NULL && strncmp(r.snapshot_path, want, strlen(want)) == 0,
          or_null(r.snapshot_path));
    lemon_pull_result_free(&r);
}

int main(int argc, char **argv) {
    const char *cache = argc > 2 ? argv[2] : NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: test_c PHASE [CACHE_DIR]\n");
        return 2;
    }
    g_phase = argv[1];
    if (strcmp(g_phase, "args") == 0) {
        phase_args();
    } else if (cache == NULL) {
        fprintf(stderr, "test_c: phase %s needs CACHE_DIR\n", g_phase);
        return 2;
    } else if (strcmp(g_phase, "errors") == 0) {
        phase_errors(cache);
    } else if (strcmp(g_phase, "cancel-cb") == 0) {
        phase_cancel_cb(cache);
    } else if (strcmp(g_phase, "cancel-flag") == 0) {
        phase_cancel_flag(cache);
    } else if (strcmp(g_phase, "resume") == 0) {
        phase_resume(cache);
    } else if (strcmp(g_phase, "concurrent") == 0) {
        phase_concurrent(cache);
    } else if (strcmp(g_phase, "components") == 0) {
        phase_components(cache);
    } else if (strcmp(g_phase, "oldstruct") == 0) {
        phase_oldstruct(cache);
    } else if (strcmp(g_phase, "stall-cancel") == 0) {
        phase_stall_cancel(cache);
    } else if (strcmp(g_phase, "backoff-cancel") == 0) {
        phase_backoff_cancel(cache);
    } else if (strcmp(g_phase, "lock-cancel") == 0) {
        phase_lock_cancel(cache);
    } else if (strcmp(g_phase, "pinned") == 0) {
        phase_pinned(cache);
    } else if (strcmp(g_phase, "unreachable") == 0) {
        phase_unreachable(cache);
    } else if (strcmp(g_phase, "keep") == 0) {
        phase_keep(cache);
    } else if (strcmp(g_phase, "hermetic") == 0) {
        phase_hermetic(cache);
    } else if (strcmp(g_phase, "environment") == 0) {
        phase_environment(cache);
    } else if (strcmp(g_phase, "modelscope") == 0) {
        phase_modelscope(cache);
    } else {
        fprintf(stderr, "test_c: unknown phase %s\n", g_phase);
        return 2;
    }
    return g_failed ? 1 : 0;
}
