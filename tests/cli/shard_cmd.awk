# The checks of tests/cli/shard_cmd.sh over the CMDs' shared log, whose lines
# are "start|tick|stop|exit ID TERM NS INSTANCE" (tests/cli/shard_worker.c).
# One work interval per (ID, INSTANCE, TERM): from its first line to its last.
#
#   awk -v mode=overlap -f shard_cmd.awk LOG
#       the largest overlap in ms between two intervals of one ID from
#       different (INSTANCE, TERM) (negative: the smallest gap), and where;
#       "none" if no ID had two intervals
#   awk -v mode=settled -v now=NS -v window=NS -f shard_cmd.awk SETFILE LOG
#       "settled" if now every ID of SETFILE has exactly one running CMD
#       and no other ID has any; else the first ID that does not. Running:
#       its last line is not stop/exit and is within `window` before `now`.
#   awk -v mode=held -v inst=NAME -v at=NS -v window=NS -f shard_cmd.awk LOG
#       the IDs whose CMD on NAME was running at `at`, one a line
#   awk -v mode=elsewhere -v inst=NAME -v at=NS -f shard_cmd.awk IDSFILE LOG
#       ms from `at` until every ID of IDSFILE had a CMD started by another
#       instance ("never" if one did not)
FNR == NR && (mode == "settled" || mode == "elsewhere") { want[$1] = 1; next }
{
    k = $2 SUBSEP $5 SUBSEP $3
    if (!(k in lo)) { lo[k] = $4; idof[k] = $2; instof[k] = $5; keys[$2] = keys[$2] " " k }
    hi[k] = $4
    last[k] = $1
    if (mode == "elsewhere" && $1 == "start" && $5 != inst && $4 > at && ($2 in want) &&
        !($2 in first))
        first[$2] = $4
}
END {
    if (mode == "overlap") {
        best = "none"
        for (id in keys) {
            n = split(substr(keys[id], 2), ks, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
                a = ks[i]; b = ks[j]
                if (instof[a] == instof[b]) continue
                s = lo[a] > lo[b] ? lo[a] : lo[b]; e = hi[a] < hi[b] ? hi[a] : hi[b]
                o = (e - s) / 1e6
                if (best == "none" || o > best) { best = o; where = id " (" instof[a] ", " instof[b] ")" }
            }
        }
        if (best == "none") print "none"; else printf "%.1f %s\n", best, where
    } else if (mode == "settled") {
        for (k in lo)
            if (last[k] != "stop" && last[k] != "exit" && hi[k] > now - window) running[idof[k]]++
        for (id in want)
            if (running[id] != 1) { printf "%s runs %d CMDs\n", id, running[id]; exit }
        for (id in running)
            if (!(id in want)) { printf "%s (not in the set) runs %d CMDs\n", id, running[id]; exit }
        print "settled"
    } else if (mode == "held") {
        for (k in lo)
            if (instof[k] == inst && lo[k] <= at && hi[k] > at - window && last[k] != "stop" &&
                last[k] != "exit")
                print idof[k]
    } else if (mode == "elsewhere") {
        worst = 0
        for (id in want) {
            if (!(id in first)) { print "never"; exit }
            if (first[id] - at > worst) worst = first[id] - at
        }
        printf "%.0f\n", worst / 1e6
    }
}
