/* Fuzz target: S3 responses as the s3:// backend's op state machine sees
 * them. A few lease ops run one after another on one key (sharing what was
 * observed, as ops of one factory do); each request they make is answered
 * from the input: curl result, HTTP status, header lines (through the
 * backend's own header callback, for the ETag) and a body (an error XML
 * document, a lease record, anything). Checks: every op ends with a
 * result within a bounded number of steps, with the fields its result
 * promises, and nothing leaks or crashes (ASan, UBSan).
 *
 * s3_http.c is included, not linked, to reach its static callbacks. */
#include "fuzz_common.h"

#include "s3/s3_http.c"

#define MAX_STEPS 12

static const long statuses[] = {200, 200, 200, 404, 412, 409, 500, 503, 403, 400, 301, 304, 204};

static void answer(reign_s3_task *t, fuzz_in *in, int64_t now)
{
    unsigned sel = fuzz_byte(in);
    CURLcode cc = CURLE_OK;
    if (sel >= 240) {
        static const CURLcode codes[] = {CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_CONNECT,
                                         CURLE_RECV_ERROR, CURLE_GOT_NOTHING,
                                         CURLE_WRITE_ERROR, CURLE_PARTIAL_FILE};
        cc = codes[sel % (sizeof codes / sizeof codes[0])];
    }
    long http = sel < 200 ? statuses[sel % (sizeof statuses / sizeof statuses[0])]
                          : 100 + (long)(sel - 200) * 13;
    /* the status line, then header lines until an empty one */
    char line[512];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %ld X\r\n", http);
    on_header(line, 1, (size_t)n, t);
    size_t hlen = fuzz_byte(in) % 200;
    const uint8_t *h = fuzz_take(in, &hlen);
    size_t start = 0;
    for (size_t i = 0; i <= hlen; i++) {
        if (i == hlen || h[i] == '\n') {
            if (i > start)
                on_header((char *)h + start, 1, i - start, t);
            start = i + 1;
        }
    }
    size_t blen = fuzz_u16(in) % 4096;
    const uint8_t *b = fuzz_take(in, &blen);
    /* the body in two pieces, as a socket might deliver it */
    size_t half = blen / 2;
    if (half > 0)
        on_body((char *)b, 1, half, t);
    if (blen > half)
        on_body((char *)b + half, 1, blen - half, t);
    reign_s3_task_answer(t, cc, http, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    reign_backend_config cfg = {.uri = "s3://bucket/p/", .uri_redacted = "s3://bucket/p/",
                                .scheme = "s3", .instance_id = "me:1", .metadata = "10.0.0.5",
                                .ttl_ms = 10000, .op_timeout_ms = 1000};
    reign_s3_state st;
    memset(&st, 0, sizeof st);
    st.cfg = &cfg;
    st.conf.bucket = "bucket";
    st.conf.prefix = "p/";
    st.conf.endpoint = "http://127.0.0.1:1";
    st.holder = "me:1";
    st.metadata = "10.0.0.5";
    st.ttl_ms = 10000;
    st.rng[0] = 0x9e3779b97f4a7c15ULL;
    st.rng[1] = 0xbf58476d1ce4e5b9ULL;

    int64_t now = 1000;
    uint64_t held_term = 0;
    for (int k = 0; k < 4 && in.n > 0; k++) {
        static const reign_op_kind kinds[] = {REIGN_OP_ACQUIRE, REIGN_OP_RENEW, REIGN_OP_RELEASE,
                                              REIGN_OP_READ};
        reign_op op;
        memset(&op, 0, sizeof op);
        op.kind = kinds[fuzz_byte(&in) % 4];
        op.resource = "jobs/7";
        op.resource_len = 6;
        op.term = held_term != 0 ? held_term : 1;
        reign_s3_task t;
        memset(&t, 0, sizeof t);
        t.st = &st;
        t.op = &op;
        t.next_same_key = SIZE_MAX;
        size_t klen = reign_s3_key(st.conf.prefix, op.resource, op.resource_len, t.key,
                                   sizeof t.key);
        FUZZ_CHECK(klen > 0, "no key");
        t.obs = reign_s3_obs_find(&st.obs, t.key, true, now);
        if (t.obs == NULL)
            break;
        reign_s3_task_begin(&t, now);
        int steps = 0;
        while (!t.done && steps < MAX_STEPS) {
            now += (int64_t)fuzz_byte(&in) * 97; /* time passes between answers */
            answer(&t, &in, now);
            steps++;
        }
        if (!t.done) {
            /* a step limit of ours, not the backend's: it must stop by itself
             * within REIGN_S3_MAX_PUTS writes and a GET after each */
            FUZZ_CHECK(steps <= 2 * REIGN_S3_MAX_PUTS + 2, "op not done after %d steps", steps);
            reign_s3_task_fail(&t, REIGN_ETIMEDOUT, "fuzz: out of answers");
        }
        FUZZ_CHECK(op.result != REIGN_RES_UNSET, "op left unset");
        if (op.result == REIGN_RES_ERROR)
            FUZZ_CHECK(op.out_status < 0 && op.out_error != NULL, "error without status/message");
        if (op.result == REIGN_RES_OK && op.kind == REIGN_OP_ACQUIRE) {
            FUZZ_CHECK(op.out_term > 0, "acquired term 0");
            held_term = op.out_term;
        }
        if (op.result == REIGN_RES_OK && op.kind == REIGN_OP_READ)
            FUZZ_CHECK(op.out_holder != NULL && op.out_holder[0] != '\0', "read without holder");
        if (op.result == REIGN_RES_HELD)
            FUZZ_CHECK(op.out_holder != NULL, "held without holder");
        reign_s3_http_reset(&t);
        free(op.out_holder);
        free(op.out_metadata);
        free(op.out_error);
    }
    reign_s3_obs_map_free(&st.obs);
    return 0;
}
