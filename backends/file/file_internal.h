/* Private to the file:// backend: the pieces its files share.
 *
 * Map of the backend (one job per file):
 *   file_backend.c   the vtable: open (directory, liveness), execute, close
 *   file_ops.c       ACQUIRE / RENEW / RELEASE / READ on one lock file
 *   file_lockio.c    the two byte-range locks of a lock file, record read/write
 *   file_record.c    the lock-file record: encode and parse (pure, fuzzable)
 *   file_names.c     resource ID / instance ID → safe file name
 *   file_sha256.c    SHA-256 for the names of long IDs
 *   file_map.c       a byte-string keyed hash map (held leases, waits, watchers)
 *   file_liveness.c  the liveness lock DIR/.members/<id>.member: "this
 *                    instance is alive", held for the state's life
 *   file_watch.c     the notification fd: releases (inotify), deaths (watcher
 *                    threads on liveness files), retries of dying holders (timer)
 *   file_perm.c      mode= (sharing a directory with a group), owner messages
 *   file_nofile.c    the open-file budget: RLIMIT_NOFILE bounds the held leases
 *
 * On-disk layout of DIR:
 *   <name(resource)>.lock     one per resource, never deleted: it keeps the
 *                             term history. Byte 0 locked (OFD write lock) =
 *                             mastership; byte 1 = the record lock that makes
 *                             a record read/written as a whole (see file_lockio.c).
 *   .members/<name(id)>.member one per live instance, write-locked for the
 *                             life of its backend state, unlinked at close.
 */
#ifndef REIGN_BACKENDS_FILE_FILE_INTERNAL_H
#define REIGN_BACKENDS_FILE_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "reign/backend.h"

/* ---- file_sha256.c ------------------------------------------------------------ */

#define FILE_SHA256_LEN 32

void reign_file_sha256(const void *data, size_t len, uint8_t out[FILE_SHA256_LEN]);

/* ---- file_names.c ------------------------------------------------------------- */

/* Size of a name buffer; names are at most FILE_NAME_MAX - 1 = 255 bytes, the
 * NAME_MAX of every Linux file system. */
#define FILE_NAME_MAX 256
/* Longest suffix reign_file_name_encode accepts (".lock", ".member"). */
#define FILE_NAME_SUFFIX_MAX 15

/* The file name for an ID of `len` bytes (any bytes, NUL included) followed
 * by `suffix` (which must not contain '/', at most FILE_NAME_SUFFIX_MAX
 * bytes). Distinct IDs give distinct names; see file_names.c for the mapping. */
void reign_file_name_encode(const char *id, size_t len, const char *suffix,
                            char out[FILE_NAME_MAX]);

/* The ID of a short name made by reign_file_name_encode with `suffix` (NUL-ended
 * in out, *len_out bytes): 0, or -1 for a long (hashed) name or a name that
 * is not one of ours. Short names hold at most 200 bytes of escapes, so the
 * ID fits. */
int reign_file_name_decode(const char *name, const char *suffix, char out[FILE_NAME_MAX],
                           size_t *len_out);

/* ---- file_record.c ------------------------------------------------------------ */

typedef enum file_lease_state {
    FILE_STATE_NEVER = 0,     /* empty file: never held, term 0 */
    FILE_STATE_HELD = 1,      /* written by ACQUIRE */
    FILE_STATE_RELEASED = 2,  /* written by RELEASE; the term stays */
} file_lease_state;

typedef struct file_record {
    uint64_t term;
    file_lease_state state;
    char *holder;    /* malloc'd, never NULL after a successful parse */
    char *metadata;  /* malloc'd, never NULL after a successful parse */
} file_record;

enum { FILE_RECORD_OK = 0, FILE_RECORD_BAD = -1, FILE_RECORD_NOMEM = -2 };

/* Parse `len` bytes of a lock file into *out (zeroed first). FILE_RECORD_BAD
 * sets *why to a static description of the first fault. Pure: no I/O. */
int reign_file_record_parse(const char *buf, size_t len, file_record *out, const char **why);

/* The bytes of a record, malloc'd (NULL: out of memory). */
char *reign_file_record_encode(uint64_t term, file_lease_state state, const char *holder,
                               const char *metadata, size_t *len_out);

void reign_file_record_clear(file_record *r);

/* ---- file_map.c --------------------------------------------------------------- */

typedef struct file_map_node file_map_node;

/* Zero-initialised = empty. Keys are copied; values are the caller's. */
typedef struct file_map {
    file_map_node **buckets;
    size_t n_buckets;
    size_t count;
} file_map;

void *reign_file_map_get(const file_map *m, const void *key, size_t key_len);
/* Insert a key that is not in the map. 0, or -1 when out of memory. */
int reign_file_map_put(file_map *m, const void *key, size_t key_len, void *value);
/* Remove a key; returns its value (NULL if absent). */
void *reign_file_map_remove(file_map *m, const void *key, size_t key_len);
/* Visit every entry; an entry whose visitor returns nonzero is removed (the
 * visitor frees its value then). */
typedef int (*file_map_visit_fn)(const char *key, size_t key_len, void *value, void *ctx);
void reign_file_map_sweep(file_map *m, file_map_visit_fn visit, void *ctx);
/* Free the map, calling free_value (if not NULL) on every value. */
void reign_file_map_free(file_map *m, void (*free_value)(void *value));

/* ---- file_lockio.c ------------------------------------------------------------ */

/* Largest lock file we read: far above any record reign writes. */
#define FILE_RECORD_MAX (1024 * 1024)

/* Mastership (byte 0). try: 0 = now ours, 1 = someone else holds it, -1 =
 * error (errno). probe: 1 = someone holds it, 0 = free, -1 = error. */
int reign_file_lock_master_try(int fd);
int reign_file_lock_master_probe(int fd);
int reign_file_unlock_master(int fd);

/* The record lock (byte 1), F_RDLCK or F_WRLCK, waited for until
 * deadline_ns at most: 0, or -1 with errno (ETIMEDOUT when it stayed busy). */
int reign_file_lock_record(int fd, short type, int64_t deadline_ns);
void reign_file_unlock_record(int fd);

/* Whole-file read into a malloc'd buffer (NUL-terminated, *len_out bytes)
 * and whole-record write (pwrite at 0, then truncate). -1 with errno. */
int reign_file_read_fd(int fd, char **out, size_t *len_out);
int reign_file_write_fd(int fd, const char *buf, size_t len);

/* ---- file_liveness.c ----------------------------------------------------------- */

/* Announce this instance: create and write-lock .members/<id>.member. 0 =
 * joined (*fd_out is the locked fd, name_out its name), 1 = a live instance
 * with the same ID holds it already (*fd_out = -1), -1 = error (errno). */
int reign_file_member_join(int members_fd, const char *instance_id, mode_t mode, int *fd_out,
                           char name_out[FILE_NAME_MAX]);

/* Remove member files that no live instance holds (left by deaths), except
 * own_name. Best effort, bounded. */
void reign_file_member_sweep(int members_fd, const char *own_name);

/* Leave: unlink the member file, then close (which drops the lock). */
void reign_file_member_leave(int members_fd, int fd, const char *name);

/* Open the member file of `holder` read-only if that instance is alive:
 * 1 = alive (*fd_out open), 0 = not a live member, -1 = error (errno). */
int reign_file_member_open_live(int members_fd, const char *holder, int *fd_out);

/* ---- file_watch.c ------------------------------------------------------------- */

typedef struct file_watch file_watch;

/* The notification machinery of one state (see file_watch.c). REIGN_OK or a
 * status with a message (reign_backend_error). */
int reign_file_watch_open(const reign_backend_config *cfg, const char *dir, int members_fd,
                          file_watch **out);
void reign_file_watch_close(file_watch *w);

/* The one pollable fd (an epoll fd), or -1. */
int reign_file_watch_fd(const file_watch *w);

/* An ACQUIRE on `resource` (lock file `lock_name`) found it HELD by
 * `holder`: remember to report its release and watch the holder. Returns 1
 * when the holder is a live member (watched), 0 when it is not (dying or
 * dead: its lock is about to go, so the caller may try again at once). */
int reign_file_watch_held(file_watch *w, const char *lock_name, const char *resource, size_t len,
                          const char *holder);

/* The holder was not a live member and the lock was still held on a second
 * try: wake the engine again soon (backing off) so the takeover follows the
 * kernel freeing the dead process' locks. */
void reign_file_watch_retry_soon(file_watch *w, const char *holder);

/* ACQUIRE succeeded on `lock_name`: stop waiting for it. */
void reign_file_watch_forget(file_watch *w, const char *lock_name);

/* Report acquisitions too (IN_MODIFY of lock files), or stop: backend.h,
 * observe. REIGN_ENOTSUP without inotify. */
int reign_file_watch_observe(file_watch *w, int on);

/* Consume what is pending, report what may have been freed. */
void reign_file_watch_drain(file_watch *w, reign_released_fn released, void *ctx);

/* ---- file_perm.c --------------------------------------------------------------- */

/* mode= of the URI: 3-4 octal digits, rw for the owner, no x: 0, or -1. */
int reign_file_parse_mode(const char *text, mode_t *out);
/* The directories' mode for a file mode: x added for every r (0660 → 0770). */
mode_t reign_file_dir_mode(mode_t file_mode);
/* Give our own fd exactly `want` (a directory keeps its setgid bit). */
void reign_file_fix_mode(int fd, mode_t want);
/* "owned by user alice (uid 1001), group g (gid 5), mode 0700" of dir_fd/name. */
void reign_file_describe_owner(int dir_fd, const char *name, char *buf, size_t size);
/* What to do when instances of different users share a directory. */
const char *reign_file_share_hint(void);

/* ---- file_nofile.c ---------------------------------------------------------------- */

/* Descriptors kept for everything but leases: member and directory fds,
 * inotify and epoll, watcher threads' member files, the ones an op opens
 * briefly, and the application's own (sockets, logs). */
#define FILE_NOFILE_RESERVE 64

struct file_state;
/* At open: raise the soft limit to the hard one, size lease_limit. */
void reign_file_nofile_prepare(struct file_state *st);
/* Before an ACQUIRE of a new lease: 1 = refused (op failed), 0 = go on. */
int reign_file_nofile_refuse(struct file_state *st, reign_op *op);
/* An open in ACQUIRE failed with EMFILE: fail op, and the batch's rest. */
void reign_file_nofile_emfile(struct file_state *st, reign_op *op);

/* ---- file_ops.c / file_backend.c ---------------------------------------------- */

/* A lease this state holds: the fd whose open file description owns the
 * byte-0 lock, and the term written with it. */
typedef struct file_hold {
    int fd;
    uint64_t term;
} file_hold;

typedef struct file_state {
    const reign_backend_config *cfg;  /* lives until close */
    const char *dir;                  /* cfg->path */
    const char *metadata;             /* never NULL */
    int dir_fd;
    int members_fd;
    int member_fd;                    /* our member lock, -1 if the ID was in use */
    char member_name[FILE_NAME_MAX];
    file_map held;                    /* resource bytes → file_hold * */
    file_watch *watch;                /* NULL if notifications are unavailable */
    unsigned long long nofile;        /* RLIMIT_NOFILE soft limit after open */
    size_t lease_limit;               /* most leases held at once; 0 = unbounded */
    int emfile_batch;                 /* an EMFILE in the batch being executed */
    unsigned long long emfile_count;  /* ACQUIREs refused for want of descriptors */
    int mode_given;                   /* mode= was in the URI */
    mode_t file_mode;                 /* lock and member files (mode=; else 0600) */
} file_state;

/* Run one op; always sets op->result. */
void reign_file_op_run(file_state *st, reign_op *op, int64_t deadline_ns);

/* backend.h, set_metadata: rewrite the record of a lease we hold. */
int reign_file_op_set_metadata(file_state *st, const char *resource, size_t len, uint64_t term,
                               const char *metadata, int64_t deadline_ns);

#endif /* REIGN_BACKENDS_FILE_FILE_INTERNAL_H */
