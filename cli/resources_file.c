/* `reign shard --resources-file FILE`: one resource ID a line; blank lines
 * and lines starting with '#' (after blanks) are skipped; blanks around an
 * ID are trimmed. A bad line (reserved prefix, too long) fails naming it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_resources_free(char **ids, size_t n)
{
    for (size_t i = 0; ids != NULL && i < n; i++)
        free(ids[i]);
    free(ids);
}

int cli_resources_read(const char *path, char ***out, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap_line = 0, n = 0, cap = 0, lineno = 0;
    char **ids = NULL;
    ssize_t len;

    if (f == NULL) {
        cli_error("%s: %s", path, strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap_line, f)) >= 0) {
        lineno++;
        char *p = line, *end = line + len;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' ||
                           end[-1] == '\t'))
            end--;
        *end = '\0';
        if (*p == '\0' || *p == '#')
            continue;
        const char *why = NULL;
        if (strlen(p) > REIGN_RESOURCE_ID_MAX)
            why = "longer than the maximum resource ID";
        else if (strncmp(p, REIGN_RESERVED_PREFIX, strlen(REIGN_RESERVED_PREFIX)) == 0)
            why = "reserved: IDs starting with \"" REIGN_RESERVED_PREFIX "\" are reign's own";
        else if (strpbrk(p, " \t") != NULL)
            why = "has blanks inside (one ID a line)";
        if (why != NULL) {
            cli_error("%s:%zu: %s", path, lineno, why);
            goto fail;
        }
        if (n == cap) {
            size_t c = cap ? 2 * cap : 64;
            char **g = realloc(ids, c * sizeof *g);
            if (g == NULL)
                goto oom;
            ids = g;
            cap = c;
        }
        if ((ids[n] = strdup(p)) == NULL)
            goto oom;
        n++;
    }
    free(line);
    fclose(f);
    *out = ids;
    *n_out = n;
    return 0;
oom:
    cli_error("%s: out of memory", path);
fail:
    free(line);
    fclose(f);
    cli_resources_free(ids, n);
    return -1;
}
