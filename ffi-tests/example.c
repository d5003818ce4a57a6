/* Pulls a model with lemon_pull and prints where it landed.
 *
 *   example ORG/NAME [VARIANT]
 *
 * The cache folder, endpoint and token come from the environment (HF_HUB_CACHE or HF_HOME,
 * HF_ENDPOINT, HF_TOKEN), as for the Hugging Face tools: the program asks for that with
 * LEMON_PULL_FLAG_READ_ENVIRONMENT (a server would pass its own settings instead). Run it again
 * after an interruption (Ctrl-C, a network error) and it resumes where it stopped. */
#include <stdio.h>

#include "lemon_pull.h"

static int32_t show_progress(void *user_data, const lemon_progress *p) {
    (void)user_data;
    switch (p->kind) {
    case LEMON_PROGRESS_KIND_FILE_START:
    case LEMON_PROGRESS_KIND_PROGRESS:
    case LEMON_PROGRESS_KIND_FILE_DONE:
        fprintf(stderr, "[%u/%u] %s %3d%%\n", p->file_index, p->total_files, p->file, p->percent);
        break;
    case LEMON_PROGRESS_KIND_RETRY:
        fprintf(stderr, "retrying in %u ms: %s\n", p->retry_delay_ms, p->message);
        break;
    default:
        break;
    }
    return 0; /* nonzero would cancel the pull */
}

int main(int argc, char **argv) {
    lemon_pull_options options;
    lemon_pull_result result = {0};
    lemon_status status;

    if (argc < 2) {
        fprintf(stderr, "usage: %s ORG/NAME [VARIANT]\n", argv[0]);
        return 2;
    }
    lemon_pull_options_init(&options);
    options.repo_id = argv[1];
    options.variant = argc > 2 ? argv[2] : NULL;
    options.progress_cb = show_progress;
    options.flags = LEMON_PULL_FLAG_READ_ENVIRONMENT;

    status = lemon_resume_pull(&options, &result);
    if (status == LEMON_STATUS_OK) {
        printf("%s\n", result.snapshot_path);
        fprintf(stderr, "commit %s: %llu bytes downloaded, %llu reused\n", result.commit,
                (unsigned long long)result.bytes_downloaded, (unsigned long long)result.bytes_reused);
    } else {
        fprintf(stderr, "lemon_resume_pull: %s (%s)\n", result.error_message, lemon_status_str(status));
    }
    lemon_pull_result_free(&result);
    return status == LEMON_STATUS_OK ? 0 : 1;
}
