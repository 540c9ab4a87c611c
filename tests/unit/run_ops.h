/* Calling a backend's execute as the core does, for the tests that talk to
 * a backend directly: the ops grouped by kind (RELEASE, RENEW, ACQUIRE,
 * READ) and a deadline timeout_ms from now. The results land in the
 * caller's array, in the caller's order. */
#ifndef REIGN_TESTS_RUN_OPS_H
#define REIGN_TESTS_RUN_OPS_H

#include <stdlib.h>

#include "reign/backend.h"

static inline int run_ops(const reign_backend *b, void *state, reign_op *ops, size_t n,
                          int64_t timeout_ms)
{
    static const reign_op_kind order[4] = REIGN_BATCH_ORDER;
    reign_op *grouped = calloc(n ? n : 1, sizeof *grouped);
    size_t *from = calloc(n ? n : 1, sizeof *from);
    if (grouped == NULL || from == NULL) {
        free(grouped);
        free(from);
        return REIGN_ENOMEM;
    }
    reign_batch batch = {.ops = grouped, .n_ops = n,
                         .deadline_ns = reign_backend_now_ns() + timeout_ms * 1000000};
    size_t at = 0;
    for (size_t k = 0; k < 4; k++)
        for (size_t i = 0; i < n; i++)
            if (ops[i].kind == order[k]) {
                from[at] = i;
                grouped[at++] = ops[i];
                batch.count[order[k]]++;
            }
    int rc = b->execute(state, &batch);
    for (size_t j = 0; j < at; j++)
        ops[from[j]] = grouped[j];
    free(grouped);
    free(from);
    return rc;
}

#endif
