/* Who may use a lock directory: the mode= URI parameter and the messages
 * that name the owner when another user's files are in the way.
 *
 * By default everything is private to its user (files 0600, directories
 * 0700). With mode=0660 (say) the lock and member files get that mode and
 * the directories reign creates the same with x for every r (0770), so the
 * members of one group can share a directory: root's cron job and the
 * application's service, the usual flock(1) pattern. Files take the group of
 * a setgid directory (the kernel does that); reign never chowns, and keeps a
 * directory's setgid bit when it sets its mode against the umask. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_internal.h"

int reign_file_parse_mode(const char *text, mode_t *out)
{
    size_t len = strlen(text);
    if (len < 3 || len > 4 || strspn(text, "01234567") != len)
        return -1;
    mode_t m = (mode_t)strtoul(text, NULL, 8);
    /* rw for the owner always (it writes records); no x, no set-id bits. */
    if ((m & ~(mode_t)0666) != 0 || (m & 0600) != 0600)
        return -1;
    *out = m;
    return 0;
}

mode_t reign_file_dir_mode(mode_t file_mode)
{
    return file_mode | ((file_mode & 0444) >> 2);
}

void reign_file_fix_mode(int fd, mode_t want)
{
    struct stat st;
    /* Only our own files: another user's we could not change anyway. The
     * umask may have taken bits off what openat/mkdirat were given. */
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid())
        return;
    mode_t keep = S_ISDIR(st.st_mode) ? (st.st_mode & S_ISGID) : 0;
    if ((st.st_mode & 07777) != (want | keep))
        (void)fchmod(fd, want | keep);
}

void reign_file_describe_owner(int dir_fd, const char *name, char *buf, size_t size)
{
    struct stat st;
    char pw_buf[1024], gr_buf[1024];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;

    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        snprintf(buf, size, "(cannot stat it: %s)", strerror(errno));
        return;
    }
    getpwuid_r(st.st_uid, &pw, pw_buf, sizeof pw_buf, &pwp);
    getgrgid_r(st.st_gid, &gr, gr_buf, sizeof gr_buf, &grp);
    snprintf(buf, size, "owned by user %s (uid %ld), group %s (gid %ld), mode %04o",
             pwp != NULL ? pwp->pw_name : "?", (long)st.st_uid, grp != NULL ? grp->gr_name : "?",
             (long)st.st_gid, (unsigned)(st.st_mode & 07777));
}

const char *reign_file_share_hint(void)
{
    return "to share a lock directory between users, give them a common group "
           "(chgrp GROUP DIR; chmod 2770 DIR) and use file:///DIR?mode=0660 in every instance";
}
