/* The etcd:// backend's settings from its URI:
 *   etcd://[user:password@]host[:port][,host[:port]…][/prefix][?param=…]
 *   etcds://…  (the same over TLS)
 * Parsed from the raw URI text because libcurl's URL parser, which the core
 * uses, refuses a comma-separated host list. Pure: no I/O beyond reading the
 * environment for the ETCDCTL_* TLS variables. */
#ifndef REIGN_BACKENDS_ETCD_ETCD_CONFIG_H
#define REIGN_BACKENDS_ETCD_ETCD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "reign/backend.h"

#define ETCD_DEFAULT_PORT 2379
#define ETCD_DEFAULT_PREFIX "/reign/leases"
/* etcd's --max-txn-ops default: ops per txn (and nested txns per txn). */
#define ETCD_DEFAULT_MAX_TXN_OPS 128
#define ETCD_MAX_ENDPOINTS 32

typedef struct etcd_settings {
    char **endpoints;     /* "http://host:port" or "https://…", in URI order */
    size_t n_endpoints;
    bool tls;             /* etcds:// */
    char *user;           /* NULL: no authentication */
    char *password;
    char *prefix;         /* keys are <prefix>/<resource>; no trailing '/' */
    char *cacert;         /* TLS files, NULL: libcurl's defaults */
    char *cert;
    char *key;
    unsigned max_txn_ops;
} etcd_settings;

/* Read every setting from cfg (its raw uri, user, password, params).
 * REIGN_EURI / REIGN_EINVAL / REIGN_ENOMEM with the cause in err, naming the
 * redacted URI; *out is filled only on success. */
int reign_etcd_settings_parse(const reign_backend_config *cfg, etcd_settings *out, char *err,
                              size_t err_size);

void reign_etcd_settings_free(etcd_settings *s);

/* The endpoint list alone: the authority of a raw URI (between "://" and
 * the next '/', '?' or '#', without userinfo) split on ','. Each item is
 * host, host:port, [v6], [v6]:port; an empty authority means
 * 127.0.0.1:2379. Fills endpoints/n_endpoints of *out. */
int reign_etcd_parse_endpoints(const char *raw_uri, bool tls, etcd_settings *out, char *err,
                               size_t err_size);

/* user and password from the raw URI's userinfo, percent-decoded (NULL
 * when absent). */
int reign_etcd_parse_userinfo(const char *raw_uri, char **user, char **password, char *err,
                              size_t err_size);

/* The decoded path of a raw URI ("" if none), malloc'd; NULL on a bad
 * escape or no memory. */
char *reign_etcd_parse_path(const char *raw_uri);

#endif /* REIGN_BACKENDS_ETCD_ETCD_CONFIG_H */
