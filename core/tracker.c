/* The master tracker: which resource IDs this instance masters, with a
 * notification per transition (Trillian's MasterTracker, with strings).
 *
 * Locking: one mutex guards the sorted entry table and every entry's state.
 * Entries leave only through reign_tracker_forget (the shard's removals),
 * so readers copy the strings they return under the lock.
 *
 * Notification order: the callback runs without the lock, so two threads
 * that flip one ID (true by A, then false by B) could call it out of order.
 * Each transition of an ID takes a ticket under the lock; before calling the
 * callback a thread waits (on `delivered`, releasing the lock) until the
 * ID's previous ticket has been delivered. So for every ID the callback sees
 * transitions in the order they happened, each from the thread that caused
 * it. A callback that itself calls reign_tracker_set on the same tracker
 * does not wait (it would wait for itself); its nested notification is
 * delivered inside the outer one, which is still in order for that thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tracker_internal.h"
#include "reign/reign.h"

typedef struct tracker_entry {
    char *id;          /* immutable after creation */
    bool held;
    int64_t since_ms;  /* reign_monotonic_ms when it became held */
    uint64_t ticket_taken;      /* transitions so far */
    uint64_t ticket_delivered;  /* transitions whose callback returned */
} tracker_entry;

struct reign_tracker {
    reign_tracker_fn fn;  /* immutable */
    void *payload;

    /* mu guards entries, n, cap, n_held and every entry's mutable fields;
     * `delivered` is signalled when a ticket_delivered advances. */
    pthread_mutex_t mu;
    pthread_cond_t delivered;
    tracker_entry **entries;  /* sorted by strcmp of id */
    size_t n, cap;
    size_t n_held;
};

#define TRACKER_STR_(x) #x
#define TRACKER_STR(x) TRACKER_STR_(x)

/* The tracker whose callback this thread is running (see the file comment). */
static _Thread_local const reign_tracker *tracker_delivering;

/* What is wrong with a resource ID, or NULL if nothing. */
static const char *id_problem(const char *id)
{
    if (id == NULL)
        return "is NULL";
    size_t len = strnlen(id, REIGN_RESOURCE_ID_MAX + 1);
    if (len == 0)
        return "is empty";
    if (len > REIGN_RESOURCE_ID_MAX)
        return "is longer than " TRACKER_STR(REIGN_RESOURCE_ID_MAX) " bytes";
    return NULL;
}

/* Index of `id`, or where it would be inserted (*found = false). */
static size_t find(const reign_tracker *t, const char *id, bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->entries[mid]->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static tracker_entry *entry_new(const char *id)
{
    tracker_entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->id = strdup(id);
    if (e->id == NULL) {
        free(e);
        return NULL;
    }
    return e;
}

static void entry_free(tracker_entry *e)
{
    if (e == NULL)
        return;
    free(e->id);
    free(e);
}

static int compare_entries(const void *a, const void *b)
{
    const tracker_entry *const *x = a;
    const tracker_entry *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

int reign_tracker_new(const char *const *ids, size_t n_ids, reign_tracker_fn fn, void *payload,
                      reign_tracker **out)
{
    reign_tracker *t = NULL;
    bool mu_ok = false, cond_ok = false;
    int rc = REIGN_OK;

    if (out == NULL)
        return reign_error_set(REIGN_EINVAL, "tracker: out is NULL");
    if (ids == NULL && n_ids > 0)
        return reign_error_set(REIGN_EINVAL, "tracker: ids is NULL but n_ids is %zu", n_ids);
    for (size_t i = 0; i < n_ids; i++) {
        const char *problem = id_problem(ids[i]);
        if (problem != NULL)
            return reign_error_set(REIGN_EINVAL, "tracker: ids[%zu] %s", i, problem);
    }

    t = calloc(1, sizeof *t);
    if (t == NULL)
        goto nomem;
    t->fn = fn;
    t->payload = payload;
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        goto nomem;
    mu_ok = true;
    if (pthread_cond_init(&t->delivered, NULL) != 0)
        goto nomem;
    cond_ok = true;

    if (n_ids > 0) {
        t->entries = calloc(n_ids, sizeof *t->entries);
        if (t->entries == NULL)
            goto nomem;
        t->cap = n_ids;
        for (size_t i = 0; i < n_ids; i++) {
            t->entries[i] = entry_new(ids[i]);
            if (t->entries[i] == NULL)
                goto nomem;
            t->n++;
        }
        qsort(t->entries, t->n, sizeof *t->entries, compare_entries);
        /* Drop duplicates: an ID listed twice is tracked once. */
        size_t w = 0;
        for (size_t i = 0; i < t->n; i++) {
            if (w > 0 && strcmp(t->entries[w - 1]->id, t->entries[i]->id) == 0)
                entry_free(t->entries[i]);
            else
                t->entries[w++] = t->entries[i];
        }
        t->n = w;
    }
    *out = t;
    t = NULL;
    rc = REIGN_OK;
    goto out;
nomem:
    rc = reign_error_set(REIGN_ENOMEM, "tracker: out of memory for %zu IDs", n_ids);
out:
    if (t != NULL) {
        for (size_t i = 0; i < t->n; i++)
            entry_free(t->entries[i]);
        free(t->entries);
        if (cond_ok)
            pthread_cond_destroy(&t->delivered);
        if (mu_ok)
            pthread_mutex_destroy(&t->mu);
        free(t);
    }
    return rc;
}

void reign_tracker_free(reign_tracker *tracker)
{
    if (tracker == NULL)
        return;
    for (size_t i = 0; i < tracker->n; i++)
        entry_free(tracker->entries[i]);
    free(tracker->entries);
    pthread_cond_destroy(&tracker->delivered);
    pthread_mutex_destroy(&tracker->mu);
    free(tracker);
}

/* Insert a new entry for `id` at `pos` (mu held); takes ownership of `e`. */
static int insert_entry(reign_tracker *t, size_t pos, tracker_entry *e)
{
    if (t->n == t->cap) {
        size_t cap = t->cap < 8 ? 8 : t->cap * 2;
        tracker_entry **grown = realloc(t->entries, cap * sizeof *grown);
        if (grown == NULL)
            return REIGN_ENOMEM;
        t->entries = grown;
        t->cap = cap;
    }
    memmove(&t->entries[pos + 1], &t->entries[pos], (t->n - pos) * sizeof *t->entries);
    t->entries[pos] = e;
    t->n++;
    return REIGN_OK;
}

int reign_tracker_set(reign_tracker *tracker, const char *resource_id, bool is_master)
{
    tracker_entry *e = NULL, *fresh = NULL;
    uint64_t ticket;
    bool found;
    size_t pos;

    if (tracker == NULL)
        return reign_error_set(REIGN_EINVAL, "tracker: tracker is NULL");
    const char *problem = id_problem(resource_id);
    if (problem != NULL)
        return reign_error_set(REIGN_EINVAL, "tracker: resource ID %s", problem);

    pthread_mutex_lock(&tracker->mu);
    pos = find(tracker, resource_id, &found);
    if (!found) {
        /* Allocate outside the lock, then look again: another thread may
         * have added the same ID meanwhile. */
        pthread_mutex_unlock(&tracker->mu);
        fresh = entry_new(resource_id);
        if (fresh == NULL)
            return reign_error_set(REIGN_ENOMEM, "tracker: out of memory adding %s", resource_id);
        pthread_mutex_lock(&tracker->mu);
        pos = find(tracker, resource_id, &found);
        if (!found) {
            if (insert_entry(tracker, pos, fresh) != REIGN_OK) {
                pthread_mutex_unlock(&tracker->mu);
                entry_free(fresh);
                return reign_error_set(REIGN_ENOMEM, "tracker: out of memory adding %s",
                                       resource_id);
            }
            fresh = NULL;
        }
    }
    e = tracker->entries[pos];
    if (e->held == is_master) {
        /* Not a transition (an untracked ID set false, or a repeat). */
        pthread_mutex_unlock(&tracker->mu);
        entry_free(fresh);
        return REIGN_OK;
    }
    e->held = is_master;
    e->since_ms = is_master ? reign_monotonic_ms() : 0;
    if (is_master)
        tracker->n_held++;
    else
        tracker->n_held--;
    ticket = ++e->ticket_taken;

    if (tracker->fn != NULL) {
        if (tracker_delivering != tracker) {
            while (e->ticket_delivered != ticket - 1)
                pthread_cond_wait(&tracker->delivered, &tracker->mu);
        }
        pthread_mutex_unlock(&tracker->mu);

        const reign_tracker *outer = tracker_delivering;
        tracker_delivering = tracker;
        tracker->fn(e->id, is_master, tracker->payload);
        tracker_delivering = outer;

        pthread_mutex_lock(&tracker->mu);
        if (e->ticket_delivered < ticket)
            e->ticket_delivered = ticket;
        pthread_cond_broadcast(&tracker->delivered);
    } else {
        e->ticket_delivered = ticket;
    }
    pthread_mutex_unlock(&tracker->mu);
    entry_free(fresh);
    return REIGN_OK;
}

size_t reign_tracker_count(reign_tracker *tracker)
{
    size_t n;
    if (tracker == NULL)
        return 0;
    pthread_mutex_lock(&tracker->mu);
    n = tracker->n_held;
    pthread_mutex_unlock(&tracker->mu);
    return n;
}

/* A consistent copy of the table: entry pointers with their held state and
 * since time at one instant. Allocates outside the lock (entries only grow,
 * so retry if it grew meanwhile). */
typedef struct snapshot_item {
    char *id;  /* owned */
    bool held;
    int64_t since_ms;
} snapshot_item;

static void snapshot_free(snapshot_item *items, size_t n)
{
    for (size_t i = 0; items != NULL && i < n; i++)
        free(items[i].id);
    free(items);
}

static int snapshot(reign_tracker *t, snapshot_item **out, size_t *n_out)
{
    snapshot_item *items = NULL;
    size_t cap;

    pthread_mutex_lock(&t->mu);
    cap = t->n;
    for (;;) {
        pthread_mutex_unlock(&t->mu);
        free(items);
        items = malloc((cap > 0 ? cap : 1) * sizeof *items);
        if (items == NULL)
            return reign_error_set(REIGN_ENOMEM, "tracker: out of memory for %zu IDs", cap);
        pthread_mutex_lock(&t->mu);
        if (t->n <= cap)
            break;
        cap = t->n;
    }
    for (size_t i = 0; i < t->n; i++) {
        items[i].id = strdup(t->entries[i]->id);
        items[i].held = t->entries[i]->held;
        items[i].since_ms = t->entries[i]->since_ms;
        if (items[i].id == NULL) {
            pthread_mutex_unlock(&t->mu);
            snapshot_free(items, i);
            return reign_error_set(REIGN_ENOMEM, "tracker: out of memory for %zu IDs", cap);
        }
    }
    *n_out = t->n;
    pthread_mutex_unlock(&t->mu);
    *out = items;
    return REIGN_OK;
}

static int strv_from_snapshot(reign_tracker *t, bool held_only, char ***out)
{
    snapshot_item *items = NULL;
    char **strv = NULL;
    size_t n = 0, k = 0;
    int rc;

    if (t == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "tracker: %s is NULL", t == NULL ? "tracker" : "out");
    rc = snapshot(t, &items, &n);
    if (rc != REIGN_OK)
        return rc;
    strv = calloc(n + 1, sizeof *strv);
    if (strv == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (held_only && !items[i].held)
            continue;
        strv[k] = strdup(items[i].id);
        if (strv[k] == NULL)
            goto nomem;
        k++;
    }
    *out = strv;
    strv = NULL;
    rc = REIGN_OK;
    goto out;
nomem:
    rc = reign_error_set(REIGN_ENOMEM, "tracker: out of memory listing %zu IDs", n);
out:
    reign_strv_free(strv);
    snapshot_free(items, n);
    return rc;
}

int reign_tracker_held(reign_tracker *tracker, char ***out)
{
    return strv_from_snapshot(tracker, true, out);
}

int reign_tracker_ids(reign_tracker *tracker, char ***out)
{
    return strv_from_snapshot(tracker, false, out);
}

void reign_strv_free(char **strv)
{
    if (strv == NULL)
        return;
    for (char **p = strv; *p != NULL; p++)
        free(*p);
    free(strv);
}

char *reign_tracker_string(reign_tracker *tracker)
{
    snapshot_item *items = NULL;
    char *s = NULL, *p;
    size_t n = 0, len = 1;

    if (tracker == NULL) {
        reign_error_set(REIGN_EINVAL, "tracker: tracker is NULL");
        return NULL;
    }
    if (snapshot(tracker, &items, &n) != REIGN_OK)
        return NULL;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i].id) + (items[i].held ? 2 : 0) + (i > 0 ? 1 : 0);
    s = malloc(len);
    if (s == NULL) {
        reign_error_set(REIGN_ENOMEM, "tracker: out of memory for a %zu-byte string", len);
        goto out;
    }
    p = s;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i].id);
        if (i > 0)
            *p++ = ' ';
        if (items[i].held)
            *p++ = '[';
        memcpy(p, items[i].id, l);
        p += l;
        if (items[i].held)
            *p++ = ']';
    }
    *p = '\0';
out:
    snapshot_free(items, n);
    return s;
}

int reign_tracker_held_info(reign_tracker *tracker, reign_held_info **out, size_t *n_out)
{
    snapshot_item *items = NULL;
    reign_held_info *info = NULL;
    size_t n = 0, k = 0;
    int rc;

    if (tracker == NULL || out == NULL || n_out == NULL)
        return reign_error_set(REIGN_EINVAL, "tracker: %s is NULL",
                               tracker == NULL ? "tracker" : out == NULL ? "out" : "n_out");
    rc = snapshot(tracker, &items, &n);
    if (rc != REIGN_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        k += items[i].held;
    if (k > 0) {
        info = calloc(k, sizeof *info);
        if (info == NULL)
            goto nomem;
        k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!items[i].held)
                continue;
            info[k].resource_id = strdup(items[i].id);
            if (info[k].resource_id == NULL)
                goto nomem;
            info[k].since_ms = items[i].since_ms;
            k++;
        }
    }
    *out = info;
    *n_out = k;
    info = NULL;
    rc = REIGN_OK;
    goto out;
nomem:
    rc = reign_error_set(REIGN_ENOMEM, "tracker: out of memory listing %zu held IDs", k);
out:
    reign_held_info_free(info, k);
    snapshot_free(items, n);
    return rc;
}

void reign_held_info_free(reign_held_info *info, size_t n)
{
    if (info == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(info[i].resource_id);
    free(info);
}

int reign_tracker_forget(reign_tracker *tracker, const char *resource_id)
{
    bool found;
    if (tracker == NULL || resource_id == NULL)
        return reign_error_set(REIGN_EINVAL, "tracker: NULL argument");
    /* A held ID goes false first, so the callback sees every transition. */
    int rc = reign_tracker_set(tracker, resource_id, false);
    if (rc != REIGN_OK)
        return rc;
    pthread_mutex_lock(&tracker->mu);
    size_t pos = find(tracker, resource_id, &found);
    tracker_entry *e = NULL;
    if (found && !tracker->entries[pos]->held &&
        tracker->entries[pos]->ticket_delivered == tracker->entries[pos]->ticket_taken) {
        e = tracker->entries[pos];
        memmove(&tracker->entries[pos], &tracker->entries[pos + 1],
                (tracker->n - pos - 1) * sizeof *tracker->entries);
        tracker->n--;
    }
    pthread_mutex_unlock(&tracker->mu);
    entry_free(e);
    return REIGN_OK;
}
