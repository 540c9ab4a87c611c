# One option per backend (file, mem, noop need nothing third-party).
set(REIGN_ALL_BACKENDS file mem noop redis)
option(REIGN_WITH_FILE "file:// backend (no server)" ON)
option(REIGN_WITH_MEM "mem:// in-process backend for tests" ON)
option(REIGN_WITH_NOOP "noop:// always-master backend" ON)
option(REIGN_WITH_REDIS "redis:// backend (hiredis)" OFF)
option(REIGN_BUILD_TESTS "build tests" ON)
option(REIGN_BUILD_BENCH "build benchmarks" ON)
option(REIGN_BUILD_EXAMPLES "build examples" ON)
