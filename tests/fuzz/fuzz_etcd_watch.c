/* Fuzz target: the etcd watch stream, which arrives in pieces cut
 * anywhere. The bytes after the first are fed in pieces whose sizes come
 * from byte 0, framed with the resumable etcd_json_framer as etcd_watch.c
 * does, and each frame decoded with reign_etcd_json_watch. Oracle: the frames
 * found must not depend on where the stream was cut (the same as framing
 * it whole, from scratch, with reign_etcd_json_frame). */
#include "etcd/etcd_json.h"
#include "fuzz_common.h"
#include "reign/reign.h"

#define MAX_FRAMES 64

typedef struct frames {
    size_t off[MAX_FRAMES], len[MAX_FRAMES];
    size_t n;
    int garbage; /* stopped on REIGN_EPROTO */
} frames;

/* Frame what is buffered: with a resumable framer (fr, as etcd_watch.c
 * does) or, with fr NULL, from scratch each time. */
static void frame_all(const char *stream, size_t avail, size_t *used, frames *out,
                      etcd_json_framer *fr)
{
    while (!out->garbage && *used < avail && out->n < MAX_FRAMES) {
        size_t flen = 0;
        int f = fr != NULL ? reign_etcd_json_framer_next(fr, stream + *used, avail - *used, &flen)
                           : reign_etcd_json_frame(stream + *used, avail - *used, &flen);
        if (f == 1 && fr != NULL)
            reign_etcd_json_framer_reset(fr);
        if (f == 0)
            return;
        if (f < 0) {
            FUZZ_CHECK(f == REIGN_EPROTO, "frame status %d", f);
            out->garbage = 1;
            return;
        }
        FUZZ_CHECK(f == 1 && flen > 0 && flen <= avail - *used, "frame of %zu bytes in %zu", flen,
                   avail - *used);
        out->off[out->n] = *used;
        out->len[out->n] = flen;
        out->n++;
        *used += flen;
    }
}

static void decode(const char *frame, size_t len)
{
    etcd_watch_msg msg;
    int grpc = 0;
    char err[160];
    memset(&msg, 0, sizeof msg);
    int rc = reign_etcd_json_watch(frame, len, &msg, &grpc, err, sizeof err);
    if (rc == REIGN_OK) {
        FUZZ_CHECK(msg.n_deleted <= msg.n_events, "%zu deleted of %zu events", msg.n_deleted,
                   msg.n_events);
        for (size_t i = 0; i < msg.n_deleted; i++)
            FUZZ_CHECK(msg.deleted[i].key != NULL, "deleted key NULL");
        FUZZ_CHECK(fuzz_terminated(msg.reason, sizeof msg.reason), "reason not terminated");
        reign_etcd_watch_msg_clear(&msg);
    } else {
        FUZZ_CHECK(rc < 0 && fuzz_terminated(err, sizeof err) && err[0] != '\0',
                   "status %d without a message", rc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    unsigned seed = data[0];
    const char *stream = (const char *)data + 1;
    size_t total = size - 1;

    /* the reference: everything at once */
    frames whole = {{0}, {0}, 0, 0};
    size_t used_whole = 0;
    frame_all(stream, total, &used_whole, &whole, NULL);

    /* the same bytes in pieces of 1..16 bytes (a simple generator from the
     * seed byte picks each size) */
    frames cut = {{0}, {0}, 0, 0};
    size_t avail = 0, used = 0;
    etcd_json_framer fr;
    reign_etcd_json_framer_reset(&fr);
    unsigned x = seed | 1;
    while (avail < total && !cut.garbage && cut.n < MAX_FRAMES) {
        x = x * 1103515245u + 12345u;
        size_t piece = (x >> 16) % 16 + 1;
        avail = avail + piece < total ? avail + piece : total;
        frame_all(stream, avail, &used, &cut, &fr);
    }
    if (cut.n < MAX_FRAMES && whole.n < MAX_FRAMES) {
        FUZZ_CHECK(cut.n == whole.n && cut.garbage == whole.garbage,
                   "cut: %zu frames%s, whole: %zu frames%s", cut.n, cut.garbage ? " + garbage" : "",
                   whole.n, whole.garbage ? " + garbage" : "");
        for (size_t i = 0; i < cut.n; i++)
            FUZZ_CHECK(cut.off[i] == whole.off[i] && cut.len[i] == whole.len[i],
                       "frame %zu differs", i);
    }
    for (size_t i = 0; i < whole.n; i++)
        decode(stream + whole.off[i], whole.len[i]);
    return 0;
}
