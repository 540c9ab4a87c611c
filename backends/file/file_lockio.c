/* The two byte-range locks of a lock file and whole-record I/O on it.
 *
 * Locks are open-file-description (OFD) locks: they belong to the open file
 * description, not to the process, so two states in one process conflict as
 * two processes would, and closing the fd (or dying) frees them at once.
 *   byte 0  mastership: a write lock held for as long as the lease is held.
 *   byte 1  the record lock: writers hold it for writing while they rewrite
 *           the record, readers for reading while they read it, so nobody
 *           ever sees half a record. ACQUIRE takes it before trying byte 0 and
 *           keeps it until its record is written, so "byte 0 is locked" and
 *           "the record names the holder" change together for readers.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file_internal.h"

enum { BYTE_MASTER = 0, BYTE_RECORD = 1 };

static int set_lock(int fd, int cmd, short type, off_t byte)
{
    /* OFD locks want l_pid 0. */
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    int r;
    do {
        r = fcntl(fd, cmd, &fl);
    } while (r < 0 && errno == EINTR);
    return r;
}

static int busy(int err)
{
    return err == EAGAIN || err == EACCES;
}

int reign_file_lock_master_try(int fd)
{
    if (set_lock(fd, F_OFD_SETLK, F_WRLCK, BYTE_MASTER) == 0)
        return 0;
    return busy(errno) ? 1 : -1;
}

int reign_file_lock_master_probe(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = BYTE_MASTER, .l_len = 1};
    int r;
    do {
        r = fcntl(fd, F_OFD_GETLK, &fl);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    return fl.l_type != F_UNLCK;
}

int reign_file_unlock_master(int fd)
{
    return set_lock(fd, F_OFD_SETLK, F_UNLCK, BYTE_MASTER);
}

/* The record lock is held for microseconds, so a plain blocking wait
 * (F_OFD_SETLKW) would nearly always do. It is not used because a holder
 * stopped (SIGSTOP, a debugger) inside those microseconds would hang our
 * engine thread with it; instead we try, yield, and back off in steps of
 * 50 µs until the batch deadline, then give the op up as an error. */
int reign_file_lock_record(int fd, short type, int64_t deadline_ns)
{
    for (unsigned attempt = 0;; attempt++) {
        if (set_lock(fd, F_OFD_SETLK, type, BYTE_RECORD) == 0)
            return 0;
        if (!busy(errno))
            return -1;
        if (reign_backend_now_ns() >= deadline_ns) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (attempt < 64) {
            sched_yield();
        } else {
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
        }
    }
}

void reign_file_unlock_record(int fd)
{
    /* Cannot fail on a valid fd; closing it frees the lock anyway. */
    (void)set_lock(fd, F_OFD_SETLK, F_UNLCK, BYTE_RECORD);
}

int reign_file_read_fd(int fd, char **out, size_t *len_out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    if (st.st_size < 0 || st.st_size > FILE_RECORD_MAX) {
        errno = EFBIG;
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            free(buf);
            errno = saved;
            return -1;
        }
        if (r == 0)
            break; /* shrank: cannot happen under the record lock */
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    *len_out = got;
    return 0;
}

int reign_file_write_fd(int fd, const char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pwrite(fd, buf + done, len - done, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO; /* a regular file never takes nothing */
            return -1;
        }
        done += (size_t)r;
    }
    int r;
    do {
        r = ftruncate(fd, (off_t)len);
    } while (r < 0 && errno == EINTR);
    return r;
}
