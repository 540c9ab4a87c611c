/* The liveness lock: DIR/.members/<name(instance ID)>.member is
 * write-locked (byte 0, an OFD lock) by the instance for the whole life of
 * its backend state. The kernel drops the lock when the instance dies,
 * which is the one event a waiting candidate can block on (file_watch.c)
 * to learn of a holder's death. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file_internal.h"

static const char member_suffix[] = ".member";

/* How long join waits for a member file another instance holds before it
 * concludes that the ID is in use: a sweeper (below) holds a stale file for
 * microseconds only. */
enum { JOIN_WAIT_NS = 20 * 1000 * 1000, SWEEP_MAX = 4096 };

/* Write-lock byte 0 of fd, retrying while busy until deadline_ns. */
static int lock_until(int fd, int64_t deadline_ns)
{
    for (;;) {
        int r = reign_file_lock_master_try(fd);
        if (r != 1 || reign_backend_now_ns() >= deadline_ns)
            return r;
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
}

static int same_file(int dir_fd, const char *name, int fd)
{
    struct stat mine, named;
    return fstat(fd, &mine) == 0 && fstatat(dir_fd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
           named.st_dev == mine.st_dev && named.st_ino == mine.st_ino;
}

int reign_file_member_join(int members_fd, const char *instance_id, mode_t mode, int *fd_out,
                           char name_out[FILE_NAME_MAX])
{
    reign_file_name_encode(instance_id, strlen(instance_id), member_suffix, name_out);
    /* A leaving instance of the same ID unlinks its file before closing it.
     * If that happens between our open and our lock we would lock an
     * unlinked inode nobody can find, so check that the name still leads to
     * the inode we locked, and start over if not. */
    int64_t deadline_ns = reign_backend_now_ns() + JOIN_WAIT_NS;
    for (int attempt = 0; attempt < 16; attempt++) {
        int fd = openat(members_fd, name_out, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
            return -1;
        if (mode != 0600)
            reign_file_fix_mode(fd, mode); /* others of the group watch it and sweep it */
        int r = lock_until(fd, deadline_ns);
        if (r != 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            if (r == 1) {
                *fd_out = -1;
                return 1;
            }
            return -1;
        }
        if (same_file(members_fd, name_out, fd)) {
            *fd_out = fd;
            return 0;
        }
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

void reign_file_member_leave(int members_fd, int fd, const char *name)
{
    if (fd < 0)
        return;
    /* Unlink first, while the lock still says "alive": a successor with the
     * same ID then creates a fresh file instead of finding ours. Failure only
     * leaves an empty file behind. */
    (void)unlinkat(members_fd, name, 0);
    close(fd);
}

int reign_file_member_open_live(int members_fd, const char *holder, int *fd_out)
{
    char name[FILE_NAME_MAX];
    reign_file_name_encode(holder, strlen(holder), member_suffix, name);
    int fd = openat(members_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int held = reign_file_lock_master_probe(fd);
    if (held != 1) {
        int saved = errno;
        close(fd);
        errno = saved;
        return held; /* 0: nobody holds it, -1: error */
    }
    *fd_out = fd;
    return 1;
}

void reign_file_member_sweep(int members_fd, const char *own_name)
{
    /* Instances that died (SIGKILL, power loss) leave their empty member
     * file behind. Remove those nobody holds: lock, check the name still
     * leads to the locked inode, unlink, close. A joiner that meets our lock
     * waits for it (JOIN_WAIT_NS) and then re-checks the inode, so it never
     * ends up on an unlinked file. */
    int dup_fd = fcntl(members_fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return;
    DIR *d = fdopendir(dup_fd);
    if (d == NULL) {
        close(dup_fd);
        return;
    }
    size_t seen = 0;
    for (struct dirent *e = readdir(d); e != NULL && seen < SWEEP_MAX; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        size_t suffix_len = strlen(member_suffix);
        if (len <= suffix_len || strcmp(e->d_name + len - suffix_len, member_suffix) != 0 ||
            strcmp(e->d_name, own_name) == 0)
            continue;
        seen++;
        int fd = openat(members_fd, e->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (reign_file_lock_master_try(fd) == 0 && same_file(members_fd, e->d_name, fd))
            (void)unlinkat(members_fd, e->d_name, 0);
        close(fd);
    }
    closedir(d);
}
