/* sd_notify(3) without libsystemd: the protocol is one datagram of
 * "KEY=value" lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a
 * path, or an abstract name written with a leading '@'). systemd takes
 * READY=1 for Type=notify and shows STATUS= in `systemctl status`. A few
 * lines here rather than a build dependency that every package would pull. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

int cli_notify(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char msg[1024];
    va_list ap;

    if (path == NULL || path[0] == '\0')
        return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path)
        return -1;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0'; /* abstract namespace: the name is not NUL-terminated */
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                     (path[0] == '@' ? 0 : 1));

    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1; /* a cut STATUS line is still a status */

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t w;
    do
        w = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
    while (w < 0 && errno == EINTR);
    close(fd);
    return w == n ? 1 : -1;
}
