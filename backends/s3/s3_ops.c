/* The lease ops of the s3:// backend as steps over GET and conditional PUT.
 *
 *   ACQUIRE  absent → PUT If-None-Match: * (term 1); released or expired by
 *            our own judgement → PUT If-Match: <etag> with term + 1; held
 *            by someone → HELD with the time left by that judgement; held
 *            by ourselves → HELD(self), which the core answers by releasing
 *   RENEW    PUT If-Match: <etag> of our record, same term, new nonce
 *   RELEASE  PUT If-Match: <etag> of our record marked released (never a
 *            DELETE: RGW ignores If-Match on DELETE, and the term must stay)
 *   READ     GET
 *
 * A write that loses (412, 409), finds the object gone (404) or gets no
 * usable answer (5xx, timeout: outcome unknown) is followed by a GET that
 * decides: a record carrying one of this op's nonces is our write, which
 * landed; anything else is judged afresh. At most REIGN_S3_MAX_PUTS writes
 * per op and batch; then a retryable error. Belief is never claimed without
 * an answer that shows our record.
 *
 * Peer mode (s3_peer.h): an ACQUIRE that would GET a record held by
 * another instance that advertises an endpoint asks that endpoint first,
 * while the last GET is younger than peer_check. A confirming answer ends
 * the op HELD from the last look, as poll= does; it touches nothing of the
 * observation (the ETag, its first-seen time), so the takeover clock only
 * ever moves on what S3 said. Any other outcome is followed by the GET. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_internal.h"
#include "s3_xml.h"

/* ---- finishing an op ------------------------------------------------------------ */

static const char *kind_name(const reign_s3_task *t)
{
    return t->probe ? "open" : reign_op_kind_name(t->op->kind);
}

void reign_s3_task_fail(reign_s3_task *t, int status, const char *cause)
{
    /* An op's cause alone (the core says scheme, op, resource and URI);
     * open's probe is no op of the core's, so it says everything. */
    if (t->probe)
        reign_op_fail(t->op, status, "s3: open bucket %s: %s (%s)", t->st->conf.bucket, cause,
                      t->st->cfg->uri_redacted);
    else
        reign_op_fail(t->op, status, "%s", cause);
    t->done = true;
    t->step = REIGN_S3_STEP_NONE;
}

static void failf(reign_s3_task *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failf(reign_s3_task *t, int status, const char *fmt, ...)
{
    char cause[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    reign_s3_task_fail(t, status, cause);
}

static void finish(reign_s3_task *t, reign_op_result result)
{
    t->op->result = result;
    t->done = true;
    t->step = REIGN_S3_STEP_NONE;
}

/* HELD or READ OK: the holder as the record names it. */
static void finish_holder(reign_s3_task *t, reign_op_result result, const reign_s3_record *rec,
                          int64_t remaining_ms)
{
    reign_op *op = t->op;
    op->out_holder = strdup(rec->holder);
    op->out_metadata = strdup(rec->metadata != NULL ? rec->metadata : "");
    if (op->out_holder == NULL || op->out_metadata == NULL) {
        free(op->out_holder);
        free(op->out_metadata);
        op->out_holder = op->out_metadata = NULL;
        reign_s3_task_fail(t, REIGN_ENOMEM, "out of memory");
        return;
    }
    op->out_term = rec->term;
    op->out_remaining_ms = remaining_ms;
    finish(t, result);
}

/* ---- steps ------------------------------------------------------------------------ */

static uint64_t next_random(reign_s3_state *st)
{
    /* xorshift128+: nonces need to be unique, not secret */
    uint64_t s1 = st->rng[0];
    const uint64_t s0 = st->rng[1];
    st->rng[0] = s0;
    s1 ^= s1 << 23;
    st->rng[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
    return st->rng[1] + s0;
}

static bool mine(const reign_s3_task *t, const reign_s3_record *rec)
{
    return strcmp(rec->holder, t->st->holder) == 0;
}

/* Was rec written by one of this op's writes? */
static bool ours_written(const reign_s3_task *t, const reign_s3_record *rec)
{
    if (!mine(t, rec) || rec->term != t->write_term || rec->released != t->write_released) {
        return false;
    }
    for (int i = 0; i < t->puts; i++) {
        if (strcmp(rec->nonce, t->nonces[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void step_get(reign_s3_task *t)
{
    reign_s3_http_reset(t);
    t->step = REIGN_S3_STEP_GET;
}

/* A conditional write of our record: CREATE if etag is NULL, else REPLACE. */
static void step_write(reign_s3_task *t, const char *etag, uint64_t term, bool released)
{
    reign_s3_state *st = t->st;
    if (t->puts >= REIGN_S3_MAX_PUTS) {
        failf(t, REIGN_EBACKEND, "lost %d write races in a row; will retry", t->puts);
        return;
    }
    reign_s3_http_reset(t);
    char *nonce = t->nonces[t->puts];
    snprintf(nonce, REIGN_S3_NONCE_LEN + 1, "%016" PRIx64 "%016" PRIx64, next_random(st),
             next_random(st));
    reign_s3_record rec = {
        .holder = (char *)st->holder,
        .metadata = (char *)st->metadata,
        .term = term,
        .ttl_ms = st->ttl_ms,
        .released = released,
        .seq = ++st->seq,
        .peer = released ? NULL : st->peer_url,
    };
    memcpy(rec.nonce, nonce, REIGN_S3_NONCE_LEN + 1);
    t->body = reign_s3_record_encode(&rec, &t->body_len);
    if (t->body == NULL) {
        failf(t, term > (uint64_t)INT64_MAX ? REIGN_EPROTO : REIGN_ENOMEM,
              term > (uint64_t)INT64_MAX ? "term %" PRIu64 " is past the largest one a record holds"
                                         : "out of memory encoding the record (term %" PRIu64 ")",
              term);
        return;
    }
    t->puts++;
    t->write_term = term;
    t->write_released = released;
    t->write_seq = rec.seq;
    if (etag == NULL) {
        t->step = REIGN_S3_STEP_CREATE;
        t->if_etag[0] = '\0';
    } else {
        t->step = REIGN_S3_STEP_REPLACE;
        snprintf(t->if_etag, sizeof t->if_etag, "%s", etag);
    }
}

/* What to do about a record just seen (t->obs holds it). */
static void decide(reign_s3_task *t, int64_t now_ms)
{
    reign_s3_obs *o = t->obs;
    const reign_s3_record *rec = &o->rec;
    reign_op *op = t->op;
    int64_t left = 0;
    reign_s3_lease lease = reign_s3_obs_judge(o, now_ms, &left);

    switch (op->kind) {
    case REIGN_OP_ACQUIRE:
        if (lease == REIGN_S3_LEASE_ABSENT) {
            step_write(t, NULL, 1, false);
            return;
        }
        if (ours_written(t, rec)) {
            op->out_term = rec->term; /* our write landed after all */
            finish(t, REIGN_RES_OK);
            return;
        }
        if (mine(t, rec) && !rec->released) {
            /* ours from an earlier belief or an answer we never got: the
             * core releases it and campaigns again */
            finish_holder(t, REIGN_RES_HELD, rec, lease == REIGN_S3_LEASE_LIVE ? left : 0);
            return;
        }
        if (lease == REIGN_S3_LEASE_LIVE) {
            finish_holder(t, REIGN_RES_HELD, rec, left);
            return;
        }
        /* released, or unchanged for its TTL by our clock: take it over */
        step_write(t, o->etag, rec->term + 1, false);
        return;
    case REIGN_OP_RENEW:
    case REIGN_OP_RELEASE: {
        bool release = op->kind == REIGN_OP_RELEASE;
        if (lease == REIGN_S3_LEASE_ABSENT) {
            finish(t, REIGN_RES_LOST);
            return;
        }
        if (ours_written(t, rec)) {
            finish(t, REIGN_RES_OK);
            return;
        }
        if (!mine(t, rec) || rec->term != op->term) {
            finish(t, REIGN_RES_LOST);
            return;
        }
        if (rec->released) {
            finish(t, release ? REIGN_RES_OK : REIGN_RES_LOST);
            return;
        }
        /* still ours with this term (nobody takes over without a new term) */
        step_write(t, o->etag, op->term, release);
        return;
    }
    case REIGN_OP_READ:
        if (lease == REIGN_S3_LEASE_LIVE) {
            finish_holder(t, REIGN_RES_OK, rec, left);
        } else {
            finish(t, REIGN_RES_NONE);
        }
        return;
    }
    failf(t, REIGN_EINVAL, "unknown op kind %d", (int)op->kind);
}

/* May this ACQUIRE ask the holder's endpoint instead of reading S3? */
static bool peer_may_answer(const reign_s3_task *t, reign_s3_lease lease, int64_t since_look,
                            int64_t now_ms)
{
    const reign_s3_config *c = &t->st->conf;
    const reign_s3_obs *o = t->obs;
    char why[160];
    if (!c->peer_ask || o->seen != REIGN_S3_SEEN_RECORD || o->rec.peer == NULL ||
        o->rec.released || mine(t, &o->rec)) {
        return false;
    }
    /* LIVE by the last look, or EXPIRED only because that look is old:
     * the holder's renewals since then are what a GET would show */
    if (lease != REIGN_S3_LEASE_LIVE && lease != REIGN_S3_LEASE_EXPIRED) {
        return false;
    }
    /* S3 is read at least this often, whatever a peer says: a peer that
     * claims a lease it lost delays a takeover, it never blocks one */
    if (since_look >= c->peer_check_ms || now_ms < o->peer_off_until_ms) {
        return false;
    }
    return reign_s3_peer_url_ok(o->rec.peer, why, sizeof why);
}

void reign_s3_task_begin(reign_s3_task *t, int64_t now_ms)
{
    reign_s3_obs *o = t->obs;
    reign_op *op = t->op;
    int64_t left = 0;

    if (t->probe) {
        step_get(t);
        return;
    }
    if (op->kind != REIGN_OP_ACQUIRE && op->kind != REIGN_OP_RENEW &&
        op->kind != REIGN_OP_RELEASE && op->kind != REIGN_OP_READ) {
        failf(t, REIGN_EINVAL, "unknown op kind %d", (int)op->kind);
        return;
    }
    /* Go straight to the write when what we saw last lets it succeed: the
     * condition on the ETag makes a stale view harmless (the write fails and
     * a GET follows), and it saves a request per op. An expiry judged on an
     * old look is checked with a GET first: a GET costs less than a PUT
     * that a live holder's renewal would fail. */
    reign_s3_lease lease = reign_s3_obs_judge(o, now_ms, &left);
    const reign_s3_config *c = &t->st->conf;
    int64_t since_look = now_ms - o->looked_ms;
    switch (op->kind) {
    case REIGN_OP_ACQUIRE:
        if (lease == REIGN_S3_LEASE_ABSENT) {
            step_write(t, NULL, 1, false);
            return;
        }
        if (lease != REIGN_S3_LEASE_UNKNOWN && mine(t, &o->rec) && !o->rec.released) {
            break; /* look: HELD(self) must be current */
        }
        if (lease == REIGN_S3_LEASE_RELEASED ||
            (lease == REIGN_S3_LEASE_EXPIRED && since_look <= t->st->ttl_ms / 4)) {
            step_write(t, o->etag, o->rec.term + 1, false);
            return;
        }
        if (lease == REIGN_S3_LEASE_LIVE && c->poll_ms != 0) {
            /* poll=: answer from the last look until the next one is due */
            int64_t wait = c->poll_ms == REIGN_S3_POLL_EXPIRY ? left : c->poll_ms - since_look;
            if (wait > left) {
                wait = left;
            }
            if (wait > 0) {
                finish_holder(t, REIGN_RES_HELD, &o->rec, wait);
                return;
            }
        }
        if (peer_may_answer(t, lease, since_look, now_ms)) {
            reign_s3_http_reset(t);
            t->step = REIGN_S3_STEP_PEER;
            return;
        }
        break;
    case REIGN_OP_RENEW:
    case REIGN_OP_RELEASE:
        if (o->seen == REIGN_S3_SEEN_RECORD && mine(t, &o->rec) && o->rec.term == op->term &&
            !o->rec.released) {
            step_write(t, o->etag, op->term, op->kind == REIGN_OP_RELEASE);
            return;
        }
        break;
    default: break;
    }
    step_get(t);
}

/* A transfer error that proves the request never reached the server. */
static bool never_sent(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: return true;
    default: return false;
    }
}

static void answer_get(reign_s3_task *t, reign_s3_outcome out, int status, const char *cause,
                       long http, int64_t now_ms)
{
    reign_s3_obs *o = t->obs;
    if (t->probe) {
        if (out == REIGN_S3_OUT_OK || out == REIGN_S3_OUT_ABSENT) {
            finish(t, REIGN_RES_NONE);
        } else {
            reign_s3_task_fail(t, status, cause);
        }
        return;
    }
    switch (out) {
    case REIGN_S3_OUT_ABSENT:
        reign_s3_obs_note_absent(o, now_ms);
        decide(t, now_ms);
        return;
    case REIGN_S3_OUT_OK: break;
    case REIGN_S3_OUT_CONFLICT:
        reign_s3_obs_forget(o);
        failf(t, REIGN_EPROTO, "HTTP %ld to a plain GET", http);
        return;
    default:
        reign_s3_obs_forget(o);
        reign_s3_task_fail(t, status, cause);
        return;
    }
    if (t->resp_too_big) {
        reign_s3_obs_forget(o);
        failf(t, REIGN_EPROTO, "the record at %s is larger than %d bytes: not a reign record",
              t->key, REIGN_S3_BODY_MAX);
        return;
    }
    if (!t->etag_seen || t->etag_bad) {
        reign_s3_obs_forget(o);
        failf(t, REIGN_EPROTO, "GET %s answered %s ETag: not S3?", t->key,
              t->etag_seen ? "with an unusable" : "without an");
        return;
    }
    reign_s3_record rec;
    char why[300];
    int rc = reign_s3_record_parse(t->resp, t->resp_len, &rec, why, sizeof why);
    if (rc != REIGN_OK) {
        reign_s3_obs_forget(o);
        failf(t, rc, "object %s: %s", t->key, why);
        return;
    }
    reign_s3_obs_note_record(o, t->etag, &rec, now_ms);
    decide(t, now_ms);
}

static void answer_put(reign_s3_task *t, reign_s3_outcome out, int status, const char *cause,
                       int64_t now_ms)
{
    reign_s3_obs *o = t->obs;
    switch (out) {
    case REIGN_S3_OUT_OK: {
        /* the record is what we wrote, with the ETag the server gave it */
        if (t->etag_seen && !t->etag_bad) {
            reign_s3_state *st = t->st;
            reign_s3_record rec = {
                .holder = strdup(st->holder),
                .metadata = strdup(st->metadata),
                .term = t->write_term,
                .ttl_ms = st->ttl_ms,
                .released = t->write_released,
                .seq = t->write_seq,
                .peer = st->peer_url != NULL && !t->write_released ? strdup(st->peer_url) : NULL,
            };
            memcpy(rec.nonce, t->nonces[t->puts - 1], REIGN_S3_NONCE_LEN + 1);
            bool peer_ok = rec.peer != NULL || st->peer_url == NULL || t->write_released;
            if (rec.holder != NULL && rec.metadata != NULL && peer_ok) {
                reign_s3_obs_note_record(o, t->etag, &rec, now_ms);
            } else {
                reign_s3_record_clear(&rec);
                reign_s3_obs_forget(o);
            }
        } else {
            reign_s3_obs_forget(o); /* look before the next write */
        }
        if (t->op->kind == REIGN_OP_ACQUIRE) {
            t->op->out_term = t->write_term;
        }
        finish(t, REIGN_RES_OK);
        return;
    }
    case REIGN_S3_OUT_CONFLICT:
    case REIGN_S3_OUT_ABSENT:
        /* lost the race, or the object changed or went away: look again */
        reign_s3_obs_forget(o);
        step_get(t);
        return;
    case REIGN_S3_OUT_UNKNOWN:
        /* written or not, nobody knows (RGW answers 500 to some losers of
         * an If-Match race): the GET looks for our nonce */
        reign_s3_obs_forget(o);
        reign_backend_log(t->st->cfg, REIGN_LOG_DEBUG, "s3: %s %s: %s; reading it back",
                          kind_name(t), t->key, cause);
        step_get(t);
        return;
    case REIGN_S3_OUT_FAILED: reign_s3_obs_forget(o); reign_s3_task_fail(t, status, cause); return;
    }
}

/* The holder's endpoint answered (or did not): HELD from the last look if
 * it confirms that record, else read S3 and leave the peer alone a while. */
static void answer_peer(reign_s3_task *t, CURLcode cc, long http, int64_t now_ms)
{
    reign_s3_obs *o = t->obs;
    reign_s3_peer_verdict v = REIGN_S3_PEER_GARBAGE;
    char why[300];
    if (cc != CURLE_OK) {
        snprintf(why, sizeof why, "no answer: %s",
                 t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(cc));
    } else if (http != 200) {
        snprintf(why, sizeof why, "HTTP %ld", http);
    } else if (o->seen != REIGN_S3_SEEN_RECORD || o->rec.holder == NULL) {
        snprintf(why, sizeof why, "the record was forgotten meanwhile");
    } else {
        v = reign_s3_peer_judge(t->resp, t->resp_len, t->key + t->name_off, o->rec.holder,
                                o->rec.term, why, sizeof why);
    }
    if (v == REIGN_S3_PEER_CONFIRMED) {
        int64_t left = 0;
        reign_s3_lease lease = reign_s3_obs_judge(o, now_ms, &left);
        finish_holder(t, REIGN_RES_HELD, &o->rec, lease == REIGN_S3_LEASE_LIVE ? left : -1);
        return;
    }
    int64_t off = t->st->ttl_ms > 1000 ? t->st->ttl_ms : 1000;
    o->peer_off_until_ms = now_ms + off;
    reign_backend_log(t->st->cfg, REIGN_LOG_DEBUG, "s3: ACQUIRE %s: peer %s: %s; reading S3",
                      t->key, o->rec.peer != NULL ? o->rec.peer : "(none)", why);
    step_get(t);
}

void reign_s3_task_answer(reign_s3_task *t, CURLcode cc, long http, int64_t now_ms)
{
    if (t->step == REIGN_S3_STEP_PEER) {
        answer_peer(t, cc, http, now_ms);
        return;
    }
    const bool put = t->step != REIGN_S3_STEP_GET;
    char cause[400];
    int status = REIGN_EBACKEND;

    if (cc != CURLE_OK) {
        const char *what = t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(cc);
        if (cc == CURLE_WRITE_ERROR && !t->resp_too_big) {
            what = "out of memory reading the answer";
        }
        status = cc == CURLE_OPERATION_TIMEDOUT ? REIGN_ETIMEDOUT : REIGN_EBACKEND;
        if (put && !never_sent(cc)) {
            snprintf(cause, sizeof cause, "%s", what);
            answer_put(t, REIGN_S3_OUT_UNKNOWN, status, cause, now_ms);
        } else {
            if (!t->probe) {
                reign_s3_obs_forget(t->obs);
            }
            failf(t, status, "%s %s: %s", put ? "PUT" : "GET", t->st->conf.endpoint, what);
        }
        return;
    }
    reign_s3_outcome out =
        reign_s3_classify(http, t->resp, t->resp_len, &status, cause, sizeof cause);
    if (put) {
        answer_put(t, out, status, cause, now_ms);
    } else {
        answer_get(t, out, status, cause, http, now_ms);
    }
}
