# The ranks' environment: the job's contract, -x in both forms, the options with
# an environment equivalent, and ipcrun's own environment passed through.
source "$(dirname "$0")/launcher_common.sh"

run "$IPCRUN" -n 4 sh -c 'echo "$IPC_RANK $IPC_SIZE $IPC_LOCAL_RANK $IPC_LOCAL_SIZE $IPC_NODE"'
expect_status 0 "-n 4"
expect_sorted "$TMP/out" "0 4 0 4 $NODE
1 4 1 4 $NODE
2 4 2 4 $NODE
3 4 3 4 $NODE" "-n 4 contract"
[[ ! -s $TMP/err ]] || fail "-n 4: unexpected stderr"

run "$IPCRUN" sh -c 'echo "$IPC_RANK $IPC_SIZE"'
expect_file "$TMP/out" "0 1" "default -n 1"

# Job id, bootstrap address, secret, TCP address: the same for every rank.
run "$IPCRUN" -n 3 sh -c 'echo "$IPC_JOB $IPC_BOOTSTRAP $IPC_JOB_SECRET $IPC_TCP_ADDR"'
expect_status 0 "job variables"
[[ $(sort -u "$TMP/out" | wc -l) == 1 ]] || fail "ranks disagree on the job variables: $(cat "$TMP/out")"
read -r job boot secret addr <"$TMP/out"
[[ $job =~ ^[0-9a-f]{24}$ ]] || fail "IPC_JOB '$job' is not 24 hex digits"
[[ $boot =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "IPC_BOOTSTRAP '$boot'"
[[ $secret =~ ^[0-9a-f]{64}$ ]] || fail "IPC_JOB_SECRET is not 64 hex digits"
[[ $addr == 127.0.0.1 ]] || fail "IPC_TCP_ADDR '$addr'"
run "$IPCRUN" sh -c 'echo "$IPC_JOB $IPC_JOB_SECRET"'
read -r job2 secret2 <"$TMP/out"
[[ $job2 != "$job" && $secret2 != "$secret" ]] || fail "job id or secret repeated across jobs"
# The secret never appears on a command line: the ranks' argv is the user's.
run "$IPCRUN" sh -c 'tr "\0" " " </proc/$$/cmdline; true'
expect_file "$TMP/out" 'sh -c tr "\0" " " </proc/$$/cmdline; true ' "rank argv"

# Each rank leads a process group of its own.
run "$IPCRUN" -n 2 cat /proc/self/stat
expect_status 0 "process groups"
awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); if (f[3] != $1) { print "pid " $1 " in group " f[3]; exit 1 } }' \
  "$TMP/out" >"$TMP/check" || fail "a rank is not the leader of its own group: $(cat "$TMP/check")"
# No signal is ignored or blocked in a rank, even when ipcrun was started with
# some ignored (and ipcrun itself ignores SIGPIPE).
run bash -c 'trap "" HUP USR1; exec "$0" -n 2 grep -E "^Sig(Ign|Blk)" /proc/self/status' "$IPCRUN"
expect_status 0 "signal dispositions"
[[ $(grep -c '^Sig\(Ign\|Blk\):[[:space:]]*0000000000000000$' "$TMP/out") == 4 ]] ||
  fail "ranks start with signals ignored or blocked: $(cat "$TMP/out")"

# ipcrun's environment reaches the ranks; a nested job's variables are replaced.
IPC_RANK=77 SOME_VAR=hello run "$IPCRUN" -n 2 sh -c 'echo "$SOME_VAR $IPC_RANK"'
expect_sorted "$TMP/out" "hello 0
hello 1" "inherited environment"

# -x NAME copies ipcrun's value, -x NAME=VALUE sets one; values may hold '=' and spaces.
export FROM_IPCRUN="copied value"
unset NOT_SET_ANYWHERE || true
run env -u SET_BY_X "$IPCRUN" -n 2 -x FROM_IPCRUN -x SET_BY_X="a=b c" -x NOT_SET_ANYWHERE \
  sh -c 'echo "$FROM_IPCRUN|$SET_BY_X|${NOT_SET_ANYWHERE-unset}"'
expect_status 0 "-x"
expect_file "$TMP/out" "copied value|a=b c|unset
copied value|a=b c|unset" "-x both forms"
grep -q "^ipcrun: warning: -x NOT_SET_ANYWHERE" "$TMP/err" || fail "-x of an unset name: no warning"
# -x VALUE overrides ipcrun's own value.
FROM_IPCRUN=old run "$IPCRUN" -x FROM_IPCRUN=new sh -c 'echo $FROM_IPCRUN'
expect_file "$TMP/out" "new" "-x overriding"

# --transports and --report-transports; without them nothing is set.
run env -u IPC_TRANSPORTS -u IPC_REPORT_TRANSPORTS "$IPCRUN" sh -c \
  'echo "${IPC_TRANSPORTS-unset} ${IPC_REPORT_TRANSPORTS-unset}"'
expect_file "$TMP/out" "unset unset" "no transport options"
run "$IPCRUN" --transports tcp --report-transports sh -c 'echo "$IPC_TRANSPORTS $IPC_REPORT_TRANSPORTS"'
expect_file "$TMP/out" "tcp 1" "transport options"

# --iface and --port-range reach the ranks as IPC_TCP_IFACE and IPC_TCP_PORTS; a bad
# one is a usage error before any rank starts.
run env -u IPC_TCP_IFACE -u IPC_TCP_PORTS "$IPCRUN" sh -c 'echo "${IPC_TCP_IFACE-unset} ${IPC_TCP_PORTS-unset}"'
expect_file "$TMP/out" "unset unset" "no network options"
run "$IPCRUN" --iface lo --port-range 40000-40100 sh -c 'echo "$IPC_TCP_IFACE $IPC_TCP_PORTS"'
expect_file "$TMP/out" "lo 40000-40100" "network options"
run "$IPCRUN" --iface 127.0.0.0/8 sh -c 'echo "$IPC_TCP_IFACE"'
expect_file "$TMP/out" "127.0.0.0/8" "--iface as a network"
run "$IPCRUN" --iface nosuch0 sh -c 'echo started'
expect_status 2 "--iface nosuch0"
expect_file "$TMP/out" "" "--iface nosuch0: no rank started"
grep -q "^ipcrun: --iface='nosuch0' matches no IPv4 interface of this host (it has: .*lo 127.0.0.1" "$TMP/err" ||
  fail "--iface nosuch0: $(cat "$TMP/err")"
run "$IPCRUN" --port-range 9-5 sh -c 'echo started'
expect_status 2 "--port-range 9-5"
grep -q "^ipcrun: --port-range='9-5' is not a port range" "$TMP/err" || fail "--port-range 9-5: $(cat "$TMP/err")"

# A malformed IPC_* value, in ipcrun's environment or by -x, is one error per variable
# from ipcrun, naming it and its value, before any rank starts (exit 2); -x wins over
# the environment, as in the ranks; "auto" where the default is auto; good values pass.
IPC_SHM_EAGER_ROOM=abc IPC_SHM_CMA=maybe run "$IPCRUN" -n 2 -x IPC_COLL_BCAST=carrier_pigeon sh -c 'echo started'
expect_status 2 "malformed parameters"
expect_file "$TMP/out" "" "malformed parameters: no rank started"
expect_sorted "$TMP/err" "ipcrun: IPC_COLL_BCAST='carrier_pigeon' is not one of auto, binomial, scatter_allgather
ipcrun: IPC_SHM_CMA='maybe' is not auto or a boolean (1 or 0)
ipcrun: IPC_SHM_EAGER_ROOM='abc' is not an integer, 0 or more" "malformed parameters"
run "$IPCRUN" -x IPC_WAIT_SPIN_US=-1 -x IPC_KILL_GRACE=soon sh -c 'echo started'
expect_status 2 "malformed parameters by -x"
expect_file "$TMP/err" "ipcrun: IPC_WAIT_SPIN_US='-1' is not an integer, 0 or more
ipcrun: IPC_KILL_GRACE='soon' is not a number of seconds, 0 or more" "malformed parameters by -x"
IPC_TLS=perhaps run "$IPCRUN" -x IPC_TLS=0 -x IPC_SHM_CMA=auto -x IPC_TOOLS_HOME=always sh -c 'echo "$IPC_TLS"'
expect_status 0 "-x mends a malformed parameter"
expect_file "$TMP/out" "0" "-x mends a malformed parameter"
IPC_TOOLS_HOME=sometimes run "$IPCRUN" --engine mpirun -n 1 true
expect_status 2 "malformed parameter under --engine mpirun"
expect_file "$TMP/err" "ipcrun: IPC_TOOLS_HOME='sometimes' is not one of auto, always" "malformed parameter under --engine mpirun"
echo "PASS $TEST_NAME"
