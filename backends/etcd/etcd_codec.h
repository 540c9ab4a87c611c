/* Byte-level encodings of the etcd:// backend: base64 (the gateway's JSON
 * carries keys and values as base64), the lease record stored as a key's
 * value, key names under the prefix. Pure functions: no I/O, no state. */
#ifndef REIGN_BACKENDS_ETCD_ETCD_CODEC_H
#define REIGN_BACKENDS_ETCD_ETCD_CODEC_H

#include <stddef.h>

/* Standard base64 with padding, NUL-terminated, malloc'd; NULL if out of
 * memory. */
char *reign_etcd_b64_encode(const void *data, size_t len);

/* Decode standard or URL-safe base64, padding optional (what jsonpb
 * accepts). On success *out is malloc'd with len + 1 bytes (a NUL after the
 * data, for convenience) and REIGN_OK is returned; REIGN_EPROTO on a
 * character outside the alphabet or a bad length, REIGN_ENOMEM. */
int reign_etcd_b64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);

/* The value stored under a resource key: "reign1:<holder length>:<holder>
 * <metadata>", so holder and metadata may hold any byte but NUL and need
 * not be UTF-8. malloc'd; NULL if out of memory. */
char *reign_etcd_value_encode(const char *holder, const char *metadata, size_t *out_len);

/* Split a stored value into malloc'd holder and metadata. REIGN_EPROTO with
 * a cause in err when the value is not a reign lease record (or holds a
 * NUL), REIGN_ENOMEM. On failure nothing is allocated. */
int reign_etcd_value_decode(const unsigned char *value, size_t len, char **holder, char **metadata,
                            char *err, size_t err_size);

/* <prefix>/<resource bytes>, malloc'd; NULL if out of memory. */
char *reign_etcd_key(const char *prefix, const char *resource, size_t resource_len,
                     size_t *out_len);

/* The resource part of a key under <prefix>/, or -1 if the key is not
 * under it (or names no resource). */
int reign_etcd_key_resource(const char *prefix, const unsigned char *key, size_t key_len,
                            const unsigned char **resource, size_t *resource_len);

/* The range_end that makes [key, end) cover every key starting with `key`
 * (the key with its last byte below 0xff incremented), malloc'd. */
char *reign_etcd_prefix_end(const char *key, size_t len, size_t *out_len);

#endif /* REIGN_BACKENDS_ETCD_ETCD_CODEC_H */
