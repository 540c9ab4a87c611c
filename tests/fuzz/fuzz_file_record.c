/* Fuzz target: the file:// backend's lock-file record parser
 * (backends/file/file_record.c). Any bytes may sit in a lock file; a record that
 * parses must encode back to bytes that parse to the same record. */
#include "file/file_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    file_record r, again;
    const char *why = NULL;
    int rc = reign_file_record_parse((const char *)data, size, &r, &why);
    if (rc != FILE_RECORD_OK) {
        FUZZ_CHECK(rc == FILE_RECORD_BAD || rc == FILE_RECORD_NOMEM, "status %d", rc);
        FUZZ_CHECK(why != NULL && why[0] != '\0', "no reason");
        FUZZ_CHECK(r.holder == NULL && r.metadata == NULL, "output left after a failure");
        return 0;
    }
    FUZZ_CHECK(r.holder != NULL && r.metadata != NULL, "NULL string after success");
    if (size == 0) {
        FUZZ_CHECK(r.state == FILE_STATE_NEVER && r.term == 0, "empty file is not 'never'");
    } else {
        FUZZ_CHECK(r.state == FILE_STATE_HELD || r.state == FILE_STATE_RELEASED, "state %d",
                   (int)r.state);
        size_t len = 0;
        char *enc = reign_file_record_encode(r.term, r.state, r.holder, r.metadata, &len);
        if (enc != NULL) {
            FUZZ_CHECK(len == strlen(enc), "encoded length");
            rc = reign_file_record_parse(enc, len, &again, &why);
            FUZZ_CHECK(rc == FILE_RECORD_OK, "re-parse failed: %s", why);
            FUZZ_CHECK(again.term == r.term && again.state == r.state &&
                           strcmp(again.holder, r.holder) == 0 &&
                           strcmp(again.metadata, r.metadata) == 0,
                       "round trip changed the record");
            /* the writer's torn-write case: the old tail after "end\n" */
            char *torn = malloc(len + size);
            if (torn != NULL) {
                memcpy(torn, enc, len);
                memcpy(torn + len, data, size);
                file_record r2;
                FUZZ_CHECK(reign_file_record_parse(torn, len + size, &r2, &why) == FILE_RECORD_OK,
                           "record with a stale tail refused: %s", why);
                FUZZ_CHECK(r2.term == r.term, "stale tail changed the term");
                reign_file_record_clear(&r2);
                free(torn);
            }
            reign_file_record_clear(&again);
            free(enc);
        }
    }
    reign_file_record_clear(&r);
    return 0;
}
