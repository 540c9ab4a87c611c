# One option per backend (file, mem, noop need nothing third-party).
set(REIGN_ALL_BACKENDS file mem noop redis)
option(REIGN_WITH_FILE "file:// backend (no server)" ON)
option(REIGN_WITH_MEM "mem:// in-process backend for tests" ON)
option(REIGN_WITH_NOOP "noop:// always-master backend" ON)
option(REIGN_WITH_REDIS "redis:// backend (hiredis)" OFF)
option(REIGN_BUILD_TESTS "build tests" ON)
option(REIGN_BUILD_BENCH "build benchmarks" ON)
option(REIGN_BUILD_EXAMPLES "build examples" ON)
option(REIGN_WITH_S3 "s3:// backend (libcurl, SigV4 on OpenSSL, jansson)" OFF)
list(APPEND REIGN_ALL_BACKENDS s3)
option(REIGN_WITH_POSTGRES "postgres:// and postgresql:// backend (libpq)" OFF)
list(APPEND REIGN_ALL_BACKENDS postgres)
option(REIGN_WITH_ETCD "etcd:// and etcds:// backend (etcd v3 JSON gateway; libcurl, jansson)" OFF)
list(APPEND REIGN_ALL_BACKENDS etcd)
# UNSAFE: the engine believes for ttl x 1.5, past its lease. Only for the chaos
# test's deliberately broken build (scripts/chaos.sh BACKEND --broken).
option(REIGN_CHAOS_BROKEN "UNSAFE broken build for the chaos test: believe past the lease" OFF)
option(REIGN_HANDOVER_BROKEN "UNSAFE broken build for the handover test: release before revoking" OFF)
