/* The handover test's checker: reads the workers' logs (one per instance,
 * "start ID TERM NS" / "stop ID TERM NS REASON") and checks that no two
 * instances ever worked on one resource at once.
 *
 *   reign_handover_checker [--settled SETFILE] [--held INSTANCE] LOG...
 *
 * Without --settled: every work interval of every resource against every
 * other instance's; exit 1 on an overlap (each one printed, with its
 * length), 0 otherwise. A log's open interval (no stop) runs to the end.
 * With --settled: also, now (the logs' last lines), every ID of SETFILE
 * (one per line) must be worked on by exactly one instance and no other ID
 * by any: exit 3 if not (yet). --held INSTANCE prints how many resources
 * that instance works on now. Exit 2 on usage or unreadable logs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPEN_END INT64_MAX

typedef struct interval {
    char *id;
    int inst;
    uint64_t term;
    int64_t start, stop;
} interval;

static interval *iv;
static size_t n_iv, cap_iv;
static const char *inst_names[64];

static void add(const char *id, int inst, uint64_t term, int64_t start)
{
    if (n_iv == cap_iv) {
        cap_iv = cap_iv ? 2 * cap_iv : 1024;
        iv = realloc(iv, cap_iv * sizeof *iv);
        if (iv == NULL) {
            fprintf(stderr, "checker: out of memory\n");
            exit(2);
        }
    }
    iv[n_iv++] = (interval){strdup(id), inst, term, start, OPEN_END};
}

/* Close the open interval of (id, inst). */
static void close_open(const char *id, int inst, int64_t at)
{
    for (size_t i = n_iv; i-- > 0;)
        if (iv[i].inst == inst && iv[i].stop == OPEN_END && strcmp(iv[i].id, id) == 0) {
            iv[i].stop = at;
            return;
        }
}

static int read_log(const char *path, int inst)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    char line[1400], what[16], id[1100];
    uint64_t term;
    int64_t ns;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strchr(line, '\n') == NULL)
            break; /* a line being written: the rest comes next time */
        if (sscanf(line, "%15s %1099s %" SCNu64 " %" SCNd64, what, id, &term, &ns) != 4)
            continue; /* "exit NS" and the like */
        if (strcmp(what, "start") == 0)
            add(id, inst, term, ns);
        else if (strcmp(what, "stop") == 0)
            close_open(id, inst, ns);
    }
    fclose(f);
    return 0;
}

static int cmp_iv(const void *a, const void *b)
{
    const interval *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *settled = NULL, *held_of = NULL;
    int n_logs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--settled") == 0 && i + 1 < argc) {
            settled = argv[++i];
        } else if (strcmp(argv[i], "--held") == 0 && i + 1 < argc) {
            held_of = argv[++i];
        } else if (n_logs < 64) {
            /* The instance is the log's file name without ".log". */
            const char *base = strrchr(argv[i], '/');
            base = base ? base + 1 : argv[i];
            char *name = strdup(base);
            char *dot = strrchr(name, '.');
            if (dot != NULL)
                *dot = '\0';
            inst_names[n_logs] = name;
            if (read_log(argv[i], n_logs) != 0)
                return 2;
            n_logs++;
        } else {
            fprintf(stderr, "checker: at most 64 logs\n");
            return 2;
        }
    }
    if (n_logs == 0) {
        fprintf(stderr, "usage: reign_handover_checker [--settled SETFILE] [--held INSTANCE] LOG...\n");
        return 2;
    }
    if (n_iv > 0)
        qsort(iv, n_iv, sizeof *iv, cmp_iv);

    /* Overlaps: within one resource, intervals sorted by start; each one
     * against the later ones until they start after it ends. */
    size_t overlaps = 0;
    int64_t worst = 0;
    for (size_t i = 0; i < n_iv; i++) {
        for (size_t j = i + 1; j < n_iv && strcmp(iv[j].id, iv[i].id) == 0; j++) {
            if (iv[j].start >= iv[i].stop)
                break;
            if (iv[j].inst == iv[i].inst)
                continue;
            int64_t end = iv[i].stop < iv[j].stop ? iv[i].stop : iv[j].stop;
            int64_t len = end == OPEN_END ? -1 : end - iv[j].start;
            if (overlaps < 20)
                printf("checker: OVERLAP %s: %s (term %" PRIu64 ") and %s (term %" PRIu64
                       ") for %.3f ms%s\n",
                       iv[i].id, inst_names[iv[i].inst], iv[i].term, inst_names[iv[j].inst],
                       iv[j].term, len < 0 ? 0.0 : (double)len / 1e6, len < 0 ? " (still open)" : "");
            overlaps++;
            if (len > worst)
                worst = len;
        }
    }

    size_t n_open = 0, held = 0;
    for (size_t i = 0; i < n_iv; i++) {
        if (iv[i].stop != OPEN_END)
            continue;
        n_open++;
        held += held_of != NULL && strcmp(inst_names[iv[i].inst], held_of) == 0;
    }
    if (held_of != NULL)
        printf("held %s %zu\n", held_of, held);

    int rc = overlaps > 0 ? 1 : 0;
    if (settled != NULL && rc == 0) {
        FILE *f = fopen(settled, "r");
        if (f == NULL) {
            perror(settled);
            return 2;
        }
        char **want = NULL, line[1100];
        size_t n_want = 0, cap = 0;
        while (fgets(line, sizeof line, f) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            if (line[0] == '\0')
                continue;
            if (n_want == cap) {
                cap = cap ? 2 * cap : 512;
                want = realloc(want, cap * sizeof *want);
            }
            want[n_want++] = strdup(line);
        }
        fclose(f);
        if (n_want > 0)
            qsort(want, n_want, sizeof *want, cmp_str);
        /* Open intervals are sorted by ID: count per ID. */
        size_t bad = 0, matched = 0;
        for (size_t i = 0; i < n_iv; i++) {
            if (iv[i].stop != OPEN_END)
                continue;
            const char *key = iv[i].id;
            if (bsearch(&key, want, n_want, sizeof *want, cmp_str) == NULL) {
                if (bad++ < 5)
                    printf("checker: not settled: %s is worked on by %s but not in the set\n",
                           key, inst_names[iv[i].inst]);
            } else {
                matched++;
            }
        }
        if (matched != n_want && bad < 5)
            printf("checker: not settled: %zu of %zu resources have a worker (%zu open intervals)\n",
                   matched, n_want, n_open);
        if (bad > 0 || matched != n_want)
            rc = 3; /* matched == n_want with no overlap: one worker each */
        for (size_t i = 0; i < n_want; i++)
            free(want[i]);
        free(want);
    }
    if (overlaps > 0)
        printf("checker: %zu overlaps, the longest %.3f ms, in %zu work intervals\n", overlaps,
               (double)worst / 1e6, n_iv);
    else if (settled == NULL)
        printf("checker: 0 overlaps in %zu work intervals over %d instances\n", n_iv, n_logs);
    for (size_t i = 0; i < n_iv; i++)
        free(iv[i].id);
    free(iv);
    return rc;
}
