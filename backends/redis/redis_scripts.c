/* The Lua scripts of the redis:// backend. The lease is a hash {holder, term,
 * meta} with a PX expiry; the term counter is a separate key that never
 * expires, so terms keep growing across releases and expiries. */
#include "redis_scripts.h"

/* The announcement for observers (<prefix>changed) goes through
 * redis.pcall: an ACL user allowed to publish on <prefix>released only
 * still acquires; its observers then learn by their repair reads.
 *
 * Terms are compared as the strings the server stored: INCR's result goes
 * into the hash through Lua, which formats integers below 2^53 exactly, and
 * we send ours as the same decimal digits. */
static const char acquire_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "  local v = redis.call('HMGET', KEYS[1], 'holder', 'term', 'meta')\n"
    "  return {0, v[1], v[2], v[3], redis.call('PTTL', KEYS[1])}\n"
    "end\n"
    "local t = redis.call('INCR', KEYS[2])\n"
    "redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'term', t, 'meta', ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "if ARGV[4] then redis.pcall('PUBLISH', ARGV[4], ARGV[5]) end\n"
    "return {1, t}\n";

static const char renew_lua[] = "local v = redis.call('HMGET', KEYS[1], 'holder', 'term')\n"
                                "if v[1] == ARGV[1] and v[2] == ARGV[2] then\n"
                                "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
                                "  return 1\n"
                                "end\n"
                                "return 0\n";

static const char release_lua[] = "local v = redis.call('HMGET', KEYS[1], 'holder', 'term')\n"
                                  "if v[1] == ARGV[1] and v[2] == ARGV[2] then\n"
                                  "  redis.call('DEL', KEYS[1])\n"
                                  "  redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
                                  "  return 1\n"
                                  "end\n"
                                  "return 0\n";

static const char read_lua[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
                               "local v = redis.call('HMGET', KEYS[1], 'holder', 'term', 'meta')\n"
                               "return {v[1], v[2], v[3], redis.call('PTTL', KEYS[1])}\n";

/* Not an op of the batch (backend.h, set_metadata): run alone with EVAL. */
static const char set_metadata_lua[] =
    "local v = redis.call('HMGET', KEYS[1], 'holder', 'term')\n"
    "if v[1] == ARGV[1] and v[2] == ARGV[2] then\n"
    "  redis.call('HSET', KEYS[1], 'meta', ARGV[3])\n"
    "  redis.pcall('PUBLISH', ARGV[4], ARGV[5])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

const char *reign_redis_set_metadata_script(void)
{
    return set_metadata_lua;
}

const char *reign_redis_script(reign_op_kind kind)
{
    switch (kind) {
    case REIGN_OP_ACQUIRE: return acquire_lua;
    case REIGN_OP_RENEW: return renew_lua;
    case REIGN_OP_RELEASE: return release_lua;
    case REIGN_OP_READ: return read_lua;
    }
    return NULL;
}
