/* The etcd:// backend's notification source: one long-lived POST /v3/watch
 * on the key prefix (DELETE events only), driven by curl's socket API. Its
 * sockets and a timerfd for curl's timeouts sit in an epoll set whose fd is
 * the backend's notify_fd; notify_drain runs curl on what is ready, frames
 * the streamed JSON and reports the resource of every deleted key (a
 * release or a lease expiry). A broken stream is restarted by the next
 * execute, from the revision after the last one seen, so no release falls
 * into the gap.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "etcd_codec.h"
#include "etcd_internal.h"
#include "etcd_json.h"

/* Bytes of one watch message we are willing to buffer before calling the
 * stream garbage. */
#define WATCH_MAX_BUFFER (64u << 20)
/* A watch that etcd refused (or that broke at once) is not started again
 * sooner than this, so a refusing server costs one request per period. */
#define WATCH_RESTART_MIN_NS (1000 * 1000000LL)

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    etcd_watch *w = userp;
    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL); /* may be closed already */
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
        (errno != ENOENT || epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0))
        return -1; /* curl fails the transfer: the watch restarts later */
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    etcd_watch *w = userp;
    (void)multi;
    struct itimerspec its = {0};
    if (timeout_ms == 0) {
        its.it_value.tv_nsec = 1; /* at once (0 would disarm) */
    } else if (timeout_ms > 0) {
        its.it_value.tv_sec = timeout_ms / 1000;
        its.it_value.tv_nsec = (timeout_ms % 1000) * 1000000;
    }
    return timerfd_settime(w->timer_fd, 0, &its, NULL) == 0 ? 0 : -1;
}

static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    etcd_watch *w = userdata;
    size_t n = size * nmemb;
    if (n > WATCH_MAX_BUFFER - w->len)
        return 0; /* no message is this big: abort, restart later */
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 8192;
        while (cap < w->len + n)
            cap *= 2;
        char *p = realloc(w->buf, cap);
        if (p == NULL)
            return 0;
        w->buf = p;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, ptr, n);
    w->len += n;
    return n;
}

int reign_etcd_watch_init(etcd_watch *w)
{
    memset(w, 0, sizeof *w);
    w->epfd = w->timer_fd = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->timer_fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    w->multi = curl_multi_init();
    if (w->epfd < 0 || w->timer_fd < 0 || w->multi == NULL) {
        reign_etcd_watch_cleanup(w);
        return REIGN_EIO;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->timer_fd};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timer_fd, &ev) != 0) {
        reign_etcd_watch_cleanup(w);
        return REIGN_EIO;
    }
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    return REIGN_OK;
}

/* End the transfer (if any); the epoll set empties as curl removes sockets. */
static void watch_stop(etcd_watch *w)
{
    if (w->easy != NULL) {
        curl_multi_remove_handle(w->multi, w->easy);
        curl_easy_cleanup(w->easy);
        w->easy = NULL;
    }
    curl_slist_free_all(w->headers);
    w->headers = NULL;
    free(w->body);
    w->body = NULL;
    w->len = 0;
    reign_etcd_json_framer_reset(&w->framer);
    w->established = false;
    if (w->timer_fd >= 0) {
        struct itimerspec off = {0};
        timerfd_settime(w->timer_fd, 0, &off, NULL);
    }
}

void reign_etcd_watch_cleanup(etcd_watch *w)
{
    if (w->multi != NULL) {
        watch_stop(w);
        curl_multi_cleanup(w->multi);
    }
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->timer_fd >= 0)
        close(w->timer_fd);
    free(w->buf);
    memset(w, 0, sizeof *w);
    w->epfd = w->timer_fd = -1;
}

static char *watch_body(etcd_state *s, int64_t start_revision)
{
    /* Observed: PUT events too (acquisitions and new metadata; renewals are
     * lease keep-alives, not puts, so they do not show). */
    json_t *req = s->watch.observing
                      ? json_pack("{s:{s:s, s:s}}", "create_request", "key", s->prefix_key,
                                  "range_end", s->prefix_end)
                      : json_pack("{s:{s:s, s:s, s:[s]}}", "create_request", "key",
                                  s->prefix_key, "range_end", s->prefix_end, "filters", "NOPUT");
    if (req == NULL)
        return NULL;
    if (start_revision > 0) {
        char rev[24];
        snprintf(rev, sizeof rev, "%" PRId64, start_revision);
        json_object_set_new(json_object_get(req, "create_request"), "start_revision",
                            json_string(rev));
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return body;
}

void reign_etcd_watch_ensure(etcd_state *s)
{
    etcd_watch *w = &s->watch;
    etcd_http *h = &s->http;
    if (w->multi == NULL)
        return;
    if (w->easy != NULL && !w->broken && w->endpoint == h->current)
        return;
    int64_t now = reign_backend_now_ns();
    if (now < w->not_before_ns)
        return;
    if (w->easy != NULL) {
        /* Requests moved to another endpoint: that one may be dead or cut
         * off without the stream noticing, so follow them. */
        if (!w->broken)
            w->report_all = w->established;
        watch_stop(w);
    }
    w->broken = false;
    w->not_before_ns = now + WATCH_RESTART_MIN_NS;
    char url[512];
    snprintf(url, sizeof url, "%s%s/watch", s->set.endpoints[h->current], h->api);
    w->body = watch_body(s, w->last_revision > 0 ? w->last_revision + 1 : 0);
    w->easy = curl_easy_init();
    if (w->body == NULL || w->easy == NULL ||
        reign_etcd_http_setup_easy(h, w->easy, url, w->body, &w->headers, 0) != REIGN_OK ||
        curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, on_stream) != CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w) != CURLE_OK ||
        curl_multi_add_handle(w->multi, w->easy) != CURLM_OK) {
        reign_backend_log(s->cfg, REIGN_LOG_WARN, "%s: cannot start the watch (out of memory?)",
                          s->cfg->uri_redacted);
        watch_stop(w);
        w->broken = true;
        return;
    }
    w->endpoint = h->current;
    w->starts++;
    int running = 0;
    /* Kick it: curl opens the connection and registers its socket. */
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

/* Handle one framed message; false when the watch is over. */
static bool watch_message(etcd_state *s, const char *frame, size_t len,
                          reign_released_fn released, void *ctx)
{
    etcd_watch *w = &s->watch;
    etcd_watch_msg m;
    int grpc = ETCD_GRPC_NONE;
    char err[ETCD_ERR_SIZE];
    int rc = reign_etcd_json_watch(frame, len, &m, &grpc, err, sizeof err);
    if (rc != REIGN_OK) {
        /* A server going away ends the stream this way ("transport is
         * closing"); the next execute starts it again. */
        reign_backend_log(s->cfg, REIGN_LOG_INFO, "%s: watch: %s", s->cfg->uri_redacted, err);
        return false;
    }
    bool go_on = true;
    if (m.revision > w->last_revision)
        w->last_revision = m.revision;
    if (m.canceled) {
        reign_backend_log(s->cfg, REIGN_LOG_WARN, "%s: watch canceled by etcd: %s",
                          s->cfg->uri_redacted, m.reason[0] ? m.reason : "(no reason)");
        if (m.compact_revision > 0) {
            /* The resume point was compacted away: start from now, and let
             * every candidate retry since releases may have been missed. */
            w->last_revision = 0;
            w->report_all = true;
        }
        go_on = false;
    } else if (m.created) {
        w->established = true;
    }
    for (size_t i = 0; i < m.n_deleted; i++) {
        const unsigned char *res;
        size_t res_len;
        if (reign_etcd_key_resource(s->set.prefix, m.deleted[i].key, m.deleted[i].key_len, &res,
                                    &res_len) == 0 &&
            memchr(res, '\0', res_len) == NULL) {
            reign_etcd_held_remove(&s->held, (const char *)res, res_len);
            released(ctx, (const char *)res, res_len);
        }
    }
    for (size_t i = 0; i < m.n_put; i++) {
        const unsigned char *res;
        size_t res_len;
        if (reign_etcd_key_resource(s->set.prefix, m.put[i].key, m.put[i].key_len, &res,
                                    &res_len) == 0 &&
            memchr(res, '\0', res_len) == NULL)
            released(ctx, (const char *)res, res_len);
    }
    reign_etcd_watch_msg_clear(&m);
    return go_on;
}

void reign_etcd_watch_set_observing(etcd_state *s, bool on)
{
    etcd_watch *w = &s->watch;
    if (w->observing == on)
        return;
    w->observing = on;
    if (w->easy != NULL) {
        watch_stop(w);
        w->broken = true;
        w->not_before_ns = 0;
    }
    reign_etcd_watch_ensure(s);
}

void reign_etcd_watch_drain(etcd_state *s, reign_released_fn released, void *ctx)
{
    etcd_watch *w = &s->watch;
    struct epoll_event evs[16];
    int n;
    do
        n = epoll_wait(w->epfd, evs, 16, 0);
    while (n < 0 && errno == EINTR);
    int running = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.fd == w->timer_fd) {
            uint64_t expirations;
            ssize_t r = read(w->timer_fd, &expirations, sizeof expirations);
            (void)r; /* EAGAIN: already consumed; either way run curl's timers */
            curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            continue;
        }
        int mask = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                   ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                   ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(w->multi, evs[i].data.fd, mask, &running);
    }

    bool over = false;
    size_t used = 0;
    while (!over && w->len > used) {
        size_t flen = 0;
        int f = reign_etcd_json_framer_next(&w->framer, w->buf + used, w->len - used, &flen);
        if (f == 0)
            break;
        if (f < 0) {
            char text[80];
            reign_printable(w->buf + used, w->len - used < 60 ? w->len - used : 60, text,
                           sizeof text);
            reign_backend_log(s->cfg, REIGN_LOG_WARN, "%s: watch stream is not JSON: %s",
                              s->cfg->uri_redacted, text);
            over = true;
            break;
        }
        reign_etcd_json_framer_reset(&w->framer); /* the next frame starts after this one */
        if (!watch_message(s, w->buf + used, flen, released, ctx))
            over = true;
        used += flen;
    }
    if (used > 0 && used <= w->len) {
        memmove(w->buf, w->buf + used, w->len - used);
        w->len -= used;
    }

    CURLMsg *msg;
    int queued;
    while ((msg = curl_multi_info_read(w->multi, &queued)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode cc = msg->data.result;
        reign_backend_log(s->cfg, REIGN_LOG_INFO, "%s: watch stream on %s ended: %s",
                          s->cfg->uri_redacted, s->set.endpoints[w->endpoint],
                          curl_easy_strerror(cc));
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
            reign_etcd_http_move_endpoint(&s->http, w->endpoint, curl_easy_strerror(cc));
        over = true;
    }
    if (over && w->easy != NULL) {
        /* Releases during the gap are replayed from last_revision on restart;
         * still, candidates should not wait for it: retry them now. */
        if (w->established)
            w->report_all = true;
        watch_stop(w);
        w->broken = true;
    }
    if (w->report_all) {
        w->report_all = false;
        reign_etcd_held_clear(&s->held); /* deletes may have been missed */
        released(ctx, NULL, 0);
    }
}
