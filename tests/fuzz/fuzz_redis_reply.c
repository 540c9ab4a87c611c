/* Fuzz target: Redis replies as the redis:// backend sees them. The bytes
 * go through hiredis' redisReader in pieces (as they come off a socket),
 * and every reply it makes goes through the backend's pure mapper
 * reign_redis_reply_parse for each kind of op. Byte 0 picks the piece
 * sizes; the rest is the stream. */
#include <hiredis/hiredis.h>

#include "fuzz_common.h"
#include "redis/redis_keys.h"
#include "redis/redis_reply.h"

static void map_reply(const redisReply *reply)
{
    static const reign_op_kind kinds[] = {REIGN_OP_ACQUIRE, REIGN_OP_RENEW, REIGN_OP_RELEASE,
                                          REIGN_OP_READ};
    (void)reign_redis_reply_is_noscript(reply);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        reign_op op;
        char err[128];
        memset(&op, 0, sizeof op);
        memset(err, 0x55, sizeof err);
        op.kind = kinds[k];
        op.resource = "jobs/7";
        op.resource_len = 6;
        op.term = 7;
        int rc = reign_redis_reply_parse(&op, reply, err, sizeof err);
        if (rc == REIGN_OK) {
            FUZZ_CHECK(op.result == REIGN_RES_OK || op.result == REIGN_RES_HELD ||
                           op.result == REIGN_RES_LOST || op.result == REIGN_RES_NONE,
                       "result %d", (int)op.result);
            if (op.result == REIGN_RES_HELD || (op.kind == REIGN_OP_READ && op.result == REIGN_RES_OK)) {
                FUZZ_CHECK(op.out_holder != NULL && op.out_holder[0] != '\0', "no holder");
                FUZZ_CHECK(op.out_term > 0, "term 0");
            }
            if (op.kind == REIGN_OP_ACQUIRE && op.result == REIGN_RES_OK)
                FUZZ_CHECK(op.out_term > 0, "acquired term 0");
        } else {
            FUZZ_CHECK(rc < 0, "status %d", rc);
            FUZZ_CHECK(fuzz_terminated(err, sizeof err) && err[0] != '\0', "no message");
            FUZZ_CHECK(op.result == REIGN_RES_UNSET && op.out_holder == NULL &&
                           op.out_metadata == NULL,
                       "op touched on failure");
        }
        free(op.out_holder);
        free(op.out_metadata);
        free(op.out_error);
    }
    /* the printable form used in messages must stay within its buffer */
    if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_ERROR) {
        char shown[40];
        reign_printable(reply->str, reply->len, shown, sizeof shown);
        FUZZ_CHECK(fuzz_terminated(shown, sizeof shown), "printable not terminated");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned piece = data[0] % 32 + 1; /* 1..32-byte reads, or all at once */
    if (data[0] >= 224)
        piece = (unsigned)size;
    const char *stream = (const char *)data + 1;
    size_t left = size - 1;
    redisReader *rd = redisReaderCreate();
    if (rd == NULL)
        return 0;
    /* as every connection of the backend: a reply declaring more than
     * REIGN_REDIS_MAX_ELEMENTS is refused before hiredis allocates for it
     * (finding F7 in docs/safety.md) */
    reign_redis_reader_limit(rd);
    int replies = 0;
    while (left > 0 && replies < 64) {
        size_t n = left < piece ? left : piece;
        if (redisReaderFeed(rd, stream, n) != REDIS_OK)
            break;
        stream += n;
        left -= n;
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
                /* a protocol error: the backend drops the connection */
                FUZZ_CHECK(rd->err != 0 && rd->errstr[0] != '\0', "error without a message");
                goto out;
            }
            if (reply == NULL)
                break;
            map_reply(reply);
            freeReplyObject(reply);
            replies++;
        }
    }
out:
    redisReaderFree(rd);
    return 0;
}
