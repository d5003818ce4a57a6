/*
 * TEMPORARY — delete this file once include/lemon_pull.h declares the additions of
 * /work/tools/api-plan.md (issues 12, 13). The bridge picks it up with __has_include and falls
 * back to the real header's types when it is gone, so deleting it is the whole migration.
 *
 * It declares, with the exact names and types of the plan, what the bridge uses and the header
 * does not have yet:
 *   - lemon_pull_file, lemon_pull_repo, lemon_registry;
 *   - the flag bits READ_ENVIRONMENT, NO_CACHE_FALLBACK, KEEP_UNCHANGED_SNAPSHOT;
 *   - the progress kinds TICK and FROM_CACHE;
 *   - the fields appended to lemon_pull_options and lemon_pull_result.
 *
 * The appended fields cannot be added to the header's structs from outside, so this file
 * derives lemon_pull_options_pending / lemon_pull_result_pending from them: the base struct is
 * the prefix and the new fields follow it, which is the layout of the flat struct the plan
 * describes as long as the base has no tail padding (both end with a pointer; checked below).
 * The bridge names them through the aliases lemon_pull_bridge_options / _result, which become
 * the plain header structs once this file is deleted. C++ only (the bridge is C++17).
 */
#ifndef LEMON_PULL_PENDING_API_H
#define LEMON_PULL_PENDING_API_H

#include "lemon_pull.h"

#include <cstddef>
#include <cstdint>

/* One exact repository path, no glob meaning. */
typedef struct lemon_pull_file {
  const char *path;     /* required, UTF-8, repo-relative ("a/b.gguf") */
  int64_t size;         /* bytes, or -1 = unknown (the library lists it) */
  const char *sha256;   /* 64 hex, or NULL = unknown */
  const char *git_sha1; /* 40 hex git blob id, or NULL = unknown */
} lemon_pull_file;

/* An extra repository pulled exactly (lemonade's aux checkpoints). */
typedef struct lemon_pull_repo {
  uint32_t struct_size;         /* sizeof(lemon_pull_repo) */
  const char *repo_id;          /* "org/name" */
  const char *revision;         /* ref written on success; NULL = registry default */
  const char *commit;           /* pin: HF 40-hex commit / ModelScope snapshot id; NULL = resolve */
  const lemon_pull_file *files; /* exact files of this repo; must be non-empty */
  size_t files_len;
} lemon_pull_repo;

enum lemon_registry : int32_t {
  LEMON_REGISTRY_HUGGING_FACE = 0,
  LEMON_REGISTRY_MODELSCOPE = 1,
};

/* Appended to enum lemon_pull_flag. */
enum : uint32_t {
  LEMON_PULL_FLAG_READ_ENVIRONMENT = 4,
  LEMON_PULL_FLAG_NO_CACHE_FALLBACK = 8,
  LEMON_PULL_FLAG_KEEP_UNCHANGED_SNAPSHOT = 16,
};

/* Appended to enum lemon_progress_kind. */
enum : int32_t {
  LEMON_PROGRESS_KIND_TICK = 12,
  LEMON_PROGRESS_KIND_FROM_CACHE = 13,
};

/* lemon_pull_options followed by the fields the plan appends after ca_bundle. */
struct lemon_pull_options_pending : lemon_pull_options {
  const char *commit;
  const lemon_pull_file *files;
  size_t files_len;
  const lemon_pull_repo *repos;
  size_t repos_len;
  int32_t registry;
  const char *proxy;
  uint32_t dns_timeout_ms;
};

/* lemon_pull_result followed by the fields the plan appends. */
struct lemon_pull_result_pending : lemon_pull_result {
  uint32_t from_cache;
  uint32_t hash_verified;
};

static_assert(sizeof(lemon_pull_options) % alignof(void *) == 0,
              "lemon_pull_options has tail padding: the derived struct would not match the flat layout");
static_assert(sizeof(lemon_pull_result) % alignof(void *) == 0,
              "lemon_pull_result has tail padding: the derived struct would not match the flat layout");
/* Eight appended fields, each one pointer wide (the two 32-bit ones padded on 64-bit targets). */
static_assert(sizeof(lemon_pull_options_pending) == sizeof(lemon_pull_options) + 8 * sizeof(void *),
              "appended option fields are not laid out as in api-plan.md");
static_assert(sizeof(lemon_pull_result_pending) == sizeof(lemon_pull_result) + 8,
              "appended result fields are not laid out as in api-plan.md");

typedef lemon_pull_options_pending lemon_pull_bridge_options;
typedef lemon_pull_result_pending lemon_pull_bridge_result;

#endif /* LEMON_PULL_PENDING_API_H */
