/* Fuzz target: factory URIs and durations. The input is a URI (for
 * reign_uri_parse), a duration (reign_parse_duration_ms), or the tail of a
 * mem:// or noop:// URI opened for real with reign_factory_open; every
 * password the URI carries must stay out of errors, logs and
 * reign_factory_uri. The first byte picks the mode (mod 8): '0'-'3' parse,
 * '4' '5' duration, '6' mem://, '7' noop://.
 *
 * The secret oracle is differential: everything a URI makes reign show is
 * collected; if it holds the password P, the same URI is tried again with
 * P changed in every character (P'). A leak shows P' the second time; text
 * of reign's own that happens to spell P ("exactly" holds "xactly") does
 * not change with it. */
#include <curl/curl.h>

#include "error.h"
#include "fuzz_common.h"
#include "reign/reign.h"
#include "uri.h"

/* Everything shown for one URI: redacted form, messages, log lines. */
typedef struct shown {
    char *text;
    size_t len, cap;
} shown;

static void show(shown *s, const char *text)
{
    size_t n = strlen(text);
    if (s->len + n + 2 > s->cap) {
        size_t cap = (s->len + n + 2) * 2;
        char *p = realloc(s->text, cap);
        if (p == NULL)
            return;
        s->text = p;
        s->cap = cap;
    }
    memcpy(s->text + s->len, text, n);
    s->len += n;
    s->text[s->len++] = '\n';
    s->text[s->len] = '\0';
}

/* curl's own view of the password (raw, as written), NULL if none. For
 * an empty authority ("x:///u:p@h") curl skips the third slash and finds
 * user info in what reign takes for the path: reign must hide it too. */
static char *curl_password(const char *text)
{
    CURLU *h = curl_url();
    char *pw = NULL, *copy = NULL;
    if (h == NULL)
        return NULL;
    if (curl_url_set(h, CURLUPART_URL, text, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS) ==
            CURLUE_OK &&
        curl_url_get(h, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK && pw != NULL && pw[0] != '\0')
        copy = strdup(pw);
    curl_free(pw);
    curl_url_cleanup(h);
    return copy;
}

/* Letters and digits only, at least 6: the redaction does not care what a
 * password is made of, and such a one cannot be spelled by separators. */
static int usable_secret(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9')))
            return 0;
    return n >= 6;
}

/* Every character moved on by one within its class (a-z, A-Z, 0-9). */
static void rotate(char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == 'z')
            *s = 'a';
        else if (*s == 'Z')
            *s = 'A';
        else if (*s == '9')
            *s = '0';
        else
            (*s)++;
    }
}

/* ---- the modes ---------------------------------------------------------------- */

static void fuzz_parse(const char *text, shown *out)
{
    reign_uri u;
    reign_error_clear(); /* a success leaves the last message in place */
    int rc = reign_uri_parse(text, &u);
    if (rc == REIGN_OK) {
        FUZZ_CHECK(u.raw != NULL && u.redacted != NULL && u.scheme != NULL && u.path != NULL,
                   "NULL part of '%s'", text);
        FUZZ_CHECK(strcmp(u.raw, text) == 0, "raw differs");
        FUZZ_CHECK(u.port >= 0 && u.port <= 65535, "port %d of '%s'", u.port, text);
        for (size_t i = 0; i < u.n_params; i++)
            FUZZ_CHECK(u.params[i].name[0] != '\0', "empty parameter name in '%s'", text);
        show(out, u.redacted);
        if (reign_uri_check_all_used(&u) != REIGN_OK)
            show(out, reign_last_error());
        reign_uri_free(&u);
    } else {
        FUZZ_CHECK(rc == REIGN_EURI || rc == REIGN_ENOMEM, "status %d", rc);
        FUZZ_CHECK(reign_last_error()[0] != '\0', "no message for '%s'", text);
        show(out, reign_last_error());
    }
}

static void fuzz_duration(const char *text)
{
    int64_t ms = -1;
    if (reign_parse_duration_ms(text, &ms) == REIGN_OK)
        FUZZ_CHECK(ms > 0 && ms <= INT64_MAX / 1000000, "'%s' gave %lld", text, (long long)ms);
}

static void on_log(int level, const char *component, const char *message, void *payload)
{
    (void)level;
    show(payload, component);
    show(payload, message);
}

static void fuzz_open(const char *uri, shown *out)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "fuzz-instance";
    o.logger = on_log;
    o.logger_payload = out;
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    if (rc == REIGN_OK) {
        show(out, reign_factory_uri(f));
        FUZZ_CHECK(reign_factory_ttl_ms(f) >= 20, "ttl %lld", (long long)reign_factory_ttl_ms(f));
        FUZZ_CHECK(reign_factory_close(f) == REIGN_OK, "close: %s", reign_last_error());
    } else {
        FUZZ_CHECK(rc < 0 && reign_last_error()[0] != '\0', "status %d without a message", rc);
        show(out, reign_last_error());
    }
}

/* Run the URI through its mode; what it showed is in *out. */
static void run(unsigned mode, const char *uri, shown *out)
{
    if (mode == 6 || mode == 7)
        fuzz_open(uri, out);
    else
        fuzz_parse(uri, out);
}

/* The leak check of one URI (see the top of the file). */
static void check_secret(unsigned mode, const char *uri, const shown *first)
{
    char *secret = curl_password(uri);
    if (secret == NULL)
        return;
    size_t sl = strlen(secret);
    const char *at = strstr(uri, secret);
    if (!usable_secret(secret) || at == NULL || strstr(at + 1, secret) != NULL ||
        first->text == NULL || strstr(first->text, secret) == NULL) {
        free(secret);
        return;
    }
    /* suspect: the same URI with the password changed */
    char *again = strdup(uri);
    char *changed = strdup(secret);
    if (again != NULL && changed != NULL) {
        rotate(changed);
        char *place = again + (at - uri);
        memcpy(place, changed, sl);
        /* the changed password must be new to the URI: if the rest of it (a user
         * name, say) already holds that text, seeing it proves nothing */
        if (strstr(again, changed) == place && strstr(place + 1, changed) == NULL) {
            shown second = {NULL, 0, 0};
            run(mode, again, &second);
            FUZZ_CHECK(second.text == NULL || strstr(second.text, changed) == NULL,
                       "password '%s' of '%s' is shown:\n%s", changed, again,
                       second.text != NULL ? second.text : "");
            free(second.text);
        }
    }
    free(again);
    free(changed);
    free(secret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    unsigned mode = data[0] % 8;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0'; /* a C string: stops at the first NUL */
    if (mode == 4 || mode == 5) {
        fuzz_duration(text);
        free(text);
        return 0;
    }
    /* opening a factory starts and stops a thread: 1 input in 4 does */
    const char *prefix = mode == 6 ? "mem://" : mode == 7 ? "noop://" : "";
    size_t len = strlen(prefix) + strlen(text) + 1;
    char *uri = malloc(len);
    if (uri != NULL) {
        snprintf(uri, len, "%s%s", prefix, text);
        shown first = {NULL, 0, 0};
        run(mode, uri, &first);
        check_secret(mode, uri, &first);
        free(first.text);
        free(uri);
    }
    free(text);
    return 0;
}
