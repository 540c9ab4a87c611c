#!/usr/bin/env python3
"""reign from Python with ctypes alone (no extra packages): an election
between two factories, then a shard of four resources.

    python3 reign_ctypes.py [PATH/TO/libreign.so] [FILE_URI]

The library is found as given, else as $REIGN_LIBRARY, else as
"libreign.so.0" on the loader's path. FILE_URI (default: a fresh directory
under /tmp) is where the election's lock files go; the shard runs on mem://.

The structs below mirror include/reign/reign.h. They are never filled by
hand: each is passed to its reign_*_init function with ctypes.sizeof, so a
mirror that no longer matches the library is refused (REIGN_EINVAL naming
both sizes) instead of corrupting memory. Prints what it does; exits 0 when
every step behaved, 1 otherwise.
"""
import ctypes
import os
import sys
import tempfile
import time

c_int64, c_uint64, c_uint, c_bool = ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint, ctypes.c_bool
c_char_p, c_void_p, c_size_t = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t

REIGN_OK, REIGN_EINVAL, REIGN_ENOMASTER = 0, -1, -7

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, c_char_p, c_char_p, c_void_p)
CLOCK_FN = ctypes.CFUNCTYPE(c_int64, c_void_p)
RANDOM_FN = ctypes.CFUNCTYPE(c_uint64, c_void_p)
SHARD_FN = ctypes.CFUNCTYPE(None, c_char_p, c_bool, c_uint64, c_void_p)


class Options(ctypes.Structure):  # reign_options
    _fields_ = [("version", c_uint), ("instance_id", c_char_p), ("metadata", c_char_p),
                ("ttl_ms", c_int64), ("retry_interval_ms", c_int64), ("op_timeout_ms", c_int64),
                ("max_drift", ctypes.c_double), ("safety_margin_ms", c_int64),
                ("logger", LOG_FN), ("logger_payload", c_void_p)]


class RunnerConfig(ctypes.Structure):  # reign_runner_config
    _fields_ = [("version", c_uint), ("pre_election_pause_ms", c_int64),
                ("master_check_interval_ms", c_int64), ("master_hold_interval_ms", c_int64),
                ("resign_odds", c_int64), ("clock", CLOCK_FN), ("random", RANDOM_FN),
                ("clock_random_payload", c_void_p)]


class MembershipConfig(ctypes.Structure):  # reign_membership_config
    _fields_ = [("version", c_uint), ("slots", c_uint), ("refresh_interval_ms", c_int64),
                ("stabilization_ms", c_int64)]


class ShardConfig(ctypes.Structure):  # reign_shard_config
    _fields_ = [("version", c_uint), ("runner", RunnerConfig), ("threads", c_uint),
                ("on_change", SHARD_FN), ("payload", c_void_p), ("balance", c_bool),
                ("max_moves_per_check", c_uint), ("probe_interval_ms", c_int64),
                ("membership", MembershipConfig),
                # version 2: on_event (unused here), revoke timeout, drain parallelism
                ("on_event", c_void_p), ("revoke_timeout_ms", c_int64),
                ("drain_parallel", c_uint)]


class Master(ctypes.Structure):  # reign_master
    _fields_ = [("instance_id", c_char_p), ("metadata", c_char_p), ("term", c_uint64)]


def load(path):
    lib = ctypes.CDLL(path)
    P = ctypes.POINTER
    sigs = {
        "reign_status_str": (c_char_p, [ctypes.c_int]),
        "reign_last_error": (c_char_p, []),
        "reign_struct_size": (c_size_t, [c_char_p]),
        "reign_options_init": (ctypes.c_int, [P(Options), c_size_t]),
        "reign_shard_config_init": (ctypes.c_int, [P(ShardConfig), c_size_t]),
        "reign_factory_open": (ctypes.c_int, [c_char_p, P(Options), P(c_void_p)]),
        "reign_factory_close": (ctypes.c_int, [c_void_p]),
        "reign_factory_current_master": (ctypes.c_int, [c_void_p, c_char_p, P(P(Master))]),
        "reign_master_free": (None, [P(Master)]),
        "reign_election_new": (ctypes.c_int, [c_void_p, c_char_p, P(c_void_p)]),
        "reign_election_start": (ctypes.c_int, [c_void_p]),
        "reign_election_wait": (ctypes.c_int, [c_void_p, c_int64]),
        "reign_election_is_master": (c_bool, [c_void_p]),
        "reign_election_term": (ctypes.c_int, [c_void_p, P(c_uint64)]),
        "reign_election_resign": (ctypes.c_int, [c_void_p]),
        "reign_election_close": (ctypes.c_int, [c_void_p]),
        "reign_shard_new": (ctypes.c_int, [c_void_p, P(c_char_p), c_size_t, P(ShardConfig),
                                           P(c_void_p)]),
        "reign_shard_start": (ctypes.c_int, [c_void_p]),
        "reign_shard_stop": (ctypes.c_int, [c_void_p]),
        "reign_shard_free": (None, [c_void_p]),
        "reign_shard_tracker": (c_void_p, [c_void_p]),
        "reign_tracker_count": (c_size_t, [c_void_p]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


class ReignError(Exception):
    pass


def check(lib, rc, what):
    if rc != REIGN_OK:
        raise ReignError("%s: %s (%s)" % (what, lib.reign_last_error().decode(),
                                          lib.reign_status_str(rc).decode()))


def open_factory(lib, uri, instance, ttl_ms):
    o = Options()
    check(lib, lib.reign_options_init(ctypes.byref(o), ctypes.sizeof(o)), "reign_options_init")
    o.instance_id, o.ttl_ms, o.retry_interval_ms = instance.encode(), ttl_ms, 50
    f = c_void_p()
    check(lib, lib.reign_factory_open(uri.encode(), ctypes.byref(o), ctypes.byref(f)),
          "open " + uri)
    return f


def election(lib, uri):
    """Two instances, one resource: exactly one is master; after it
    resigns the other takes over with a higher term."""
    a, b = open_factory(lib, uri, "py-a", 2000), open_factory(lib, uri, "py-b", 2000)
    ea, eb = c_void_p(), c_void_p()
    check(lib, lib.reign_election_new(a, b"py-job", ctypes.byref(ea)), "election a")
    check(lib, lib.reign_election_new(b, b"py-job", ctypes.byref(eb)), "election b")
    check(lib, lib.reign_election_wait(ea, 5000), "a waits for mastership")
    term_a = c_uint64()
    check(lib, lib.reign_election_term(ea, ctypes.byref(term_a)), "term of a")
    check(lib, lib.reign_election_start(eb), "b campaigns")
    time.sleep(0.2)
    assert lib.reign_election_is_master(ea) and not lib.reign_election_is_master(eb), \
        "exactly one master"
    m = ctypes.POINTER(Master)()
    check(lib, lib.reign_factory_current_master(b, b"py-job", ctypes.byref(m)), "current master")
    holder = m.contents.instance_id.decode()
    lib.reign_master_free(m)
    assert holder == "py-a", "current master is %r, not py-a" % holder
    print("election: py-a is master with term %d; py-b sees %s" % (term_a.value, holder))
    check(lib, lib.reign_election_resign(ea), "a resigns")
    check(lib, lib.reign_election_wait(eb, 5000), "b takes over")
    term_b = c_uint64()
    check(lib, lib.reign_election_term(eb, ctypes.byref(term_b)), "term of b")
    assert term_b.value > term_a.value, "term %d after %d" % (term_b.value, term_a.value)
    print("election: py-b took over with term %d" % term_b.value)
    for e in (ea, eb):
        check(lib, lib.reign_election_close(e), "close election")
    for f in (a, b):
        check(lib, lib.reign_factory_close(f), "close factory")


def shard(lib):
    """One instance shards four resources: it ends up holding all four."""
    cfg = ShardConfig()
    check(lib, lib.reign_shard_config_init(ctypes.byref(cfg), ctypes.sizeof(cfg)),
          "reign_shard_config_init")
    gained = []

    @SHARD_FN
    def on_change(resource, is_master, term, payload):
        if is_master:
            gained.append((resource.decode(), term))

    cfg.runner.pre_election_pause_ms = 10
    cfg.runner.master_check_interval_ms = 50
    cfg.on_change = on_change
    f = open_factory(lib, "mem://py-shard", "py-shard", 300)
    ids = (c_char_p * 4)(b"r0", b"r1", b"r2", b"r3")
    s = c_void_p()
    check(lib, lib.reign_shard_new(f, ids, 4, ctypes.byref(cfg), ctypes.byref(s)), "shard_new")
    check(lib, lib.reign_shard_start(s), "shard_start")
    tracker = lib.reign_shard_tracker(s)
    deadline = time.monotonic() + 20
    while lib.reign_tracker_count(tracker) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    held = lib.reign_tracker_count(tracker)
    check(lib, lib.reign_shard_stop(s), "shard_stop")
    lib.reign_shard_free(s)
    check(lib, lib.reign_factory_close(f), "close factory")
    assert held == 4, "held %d of 4 resources; gained %r" % (held, gained)
    print("shard: held all 4 resources; gained %s" % sorted(r for r, _ in gained))


def wrong_size_is_refused(lib):
    """A mirror of the wrong size gets REIGN_EINVAL and is left untouched."""
    class Short(ctypes.Structure):
        _fields_ = [("version", c_uint)]
    short = Short(12345)
    rc = lib.reign_options_init(ctypes.cast(ctypes.byref(short), ctypes.POINTER(Options)),
                                ctypes.sizeof(short))
    assert rc == REIGN_EINVAL and short.version == 12345, "a short struct was not refused"
    print("size check: %s" % lib.reign_last_error().decode())
    for name, mirror in (("reign_options", Options), ("reign_shard_config", ShardConfig),
                         ("reign_master", Master)):
        size = lib.reign_struct_size(name.encode())
        assert size == ctypes.sizeof(mirror), "%s: library %d, mirror %d" % (
            name, size, ctypes.sizeof(mirror))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("REIGN_LIBRARY", "libreign.so.0")
    lib = load(path)
    tmp = None
    if len(sys.argv) > 2:
        uri = sys.argv[2]
    else:
        tmp = tempfile.mkdtemp(prefix="reign-ctypes-")
        uri = "file://" + tmp
    try:
        wrong_size_is_refused(lib)
        election(lib, uri)
        shard(lib)
    except (ReignError, AssertionError) as e:
        print("reign_ctypes: FAILED: %s" % e, file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            for root, dirs, files in os.walk(tmp, topdown=False):
                for n in files:
                    os.unlink(os.path.join(root, n))
                for n in dirs:
                    os.rmdir(os.path.join(root, n))
            os.rmdir(tmp)
    print("reign_ctypes: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
