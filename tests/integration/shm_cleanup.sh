# No /dev/shm entry of a job is left: after a normal exit, after a rank is SIGKILLed,
# after ranks die during start-up, and (removed by the next ipcrun or by
# `ipcrun --cleanup`) after ipcrun itself is SIGKILLed. Also: a pair that shm cannot
# reach under --transports shm is a clear start-up error naming the pair.
#   shm_cleanup.sh IPCRUN HELLO FAILING
source "$(dirname "$0")/launcher_common.sh"
HELLO=${2:?hello}
FAILING=${3:?failing}
JOBFILE=$TMP/job
export JOBFILE

leftovers() { ls /dev/shm | grep -c "^ipc-$(cat "$JOBFILE")-" || true; }

# Normal exit.
run "$IPCRUN" -n 4 sh -c 'echo "$IPC_JOB" > "$JOBFILE"; exec "$0"' "$HELLO"
[[ $status -eq 0 ]] || fail "normal job exited $status"
[[ $(leftovers) -eq 0 ]] || fail "normal exit left segments"

# A rank SIGKILLed after start-up.
run "$IPCRUN" -n 3 sh -c 'echo "$IPC_JOB" > "$JOBFILE"; exec "$0" kill 9 1' "$FAILING"
[[ $status -eq 137 ]] || fail "SIGKILLed rank: ipcrun exited $status"
[[ $(leftovers) -eq 0 ]] || fail "a SIGKILLed rank left segments"

# Ranks die during start-up: rank 1 never joins, so rank 0 holds its segment at the
# first fence; rank 1 fails, ipcrun stops rank 0 and removes what it left.
run "$IPCRUN" -n 2 sh -c 'echo "$IPC_JOB" > "$JOBFILE"; if [ "$IPC_RANK" = 1 ]; then
  while ! ls /dev/shm | grep -q "^ipc-$IPC_JOB-0"; do sleep 0.05; done; exit 3; fi; exec "$0"' "$HELLO"
[[ $status -eq 3 ]] || fail "start-up failure: ipcrun exited $status"
[[ $(leftovers) -eq 0 ]] || fail "ranks stopped during start-up left segments"

# ipcrun SIGKILLed during start-up: its ranks die (PDEATHSIG), their segments stay
# until the next ipcrun (or ipcrun --cleanup) removes them.
start_bg "$IPCRUN" -n 2 sh -c 'echo "$IPC_JOB" > "$JOBFILE"; echo $$ > "$PIDS/$IPC_RANK";
  if [ "$IPC_RANK" = 1 ]; then exec sleep 60; fi; exec "$0"' "$HELLO"
for _ in $(seq 200); do [[ -s $JOBFILE ]] && [[ $(leftovers) -ge 1 ]] && break; sleep 0.05; done
[[ $(leftovers) -ge 1 ]] || fail "rank 0 never created its segment"
kill -KILL "$BG_PID"
wait "$BG_PID" 2>/dev/null || true
BG_PID=
for _ in $(seq 100); do
  alive=0
  for f in "$PIDS"/*; do kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
  [[ $alive -eq 0 ]] && break
  sleep 0.05
done
[[ $alive -eq 0 ]] || fail "ranks outlived a SIGKILLed ipcrun"
# The kernel closes a dying ipcrun's sockets before it kills the ranks, so a rank may
# see its bootstrap connection end and remove its own segments first: what is left
# here (possibly nothing) is stale. Add one more by hand, of a job whose ipcrun is
# certainly gone, so that --cleanup has something to remove either way.
sh -c 'exit 0' &
dead=$!
wait "$dead"
stale=$(printf 'ipc-%08x%016x-0' "$dead" 3054)
( umask 077 && : >"/dev/shm/$stale" )
out=$("$IPCRUN" --cleanup)
[[ $out == "ipcrun: removed "*" stale shared-memory segment"* ]] || fail "--cleanup said: $out"
[[ ! -e /dev/shm/$stale ]] || fail "--cleanup left /dev/shm/$stale"
[[ $(leftovers) -eq 0 ]] || fail "--cleanup left the SIGKILLed job's segments"

# --report-transports: one line per ordered pair, in order, shm between ranks of the
# node and self for one's own; forced TCP shows tcp.
run "$IPCRUN" -n 3 --report-transports "$HELLO"
[[ $status -eq 0 ]] || fail "report: job exited $status"
expected=""
for a in 0 1 2; do for b in 0 1 2; do
  t=shm; [[ $a == "$b" ]] && t=self
  expected+="[ipcrun] transport $a -> $b: $t"$'\n'
done; done
[[ "$(grep '^\[ipcrun\] transport' "$TMP/err")"$'\n' == "$expected" ]] || fail "report lines differ: $(cat "$TMP/err")"
run "$IPCRUN" -n 2 --transports tcp --report-transports "$HELLO"
[[ $(grep -c '^\[ipcrun\] transport [01] -> [01]: tcp$' "$TMP/err") -eq 2 ]] || fail "forced tcp not reported"
IPC_TRANSPORTS=tcp run "$IPCRUN" -n 2 --report-transports "$HELLO"
[[ $(grep -c ': tcp$' "$TMP/err") -eq 2 ]] || fail "IPC_TRANSPORTS=tcp not honoured"

# --transports shm when shm cannot reach a pair (two nodes): a clear error naming it.
run "$IPCRUN" -n 2 --transports shm sh -c 'IPC_NODE=node$IPC_RANK exec "$0"' "$HELLO"
[[ $status -ne 0 ]] || fail "an unreachable pair did not fail the job"
# Both ranks find out; the first to fail may be stopped before the other speaks.
grep -qE "no transport reaches rank (1 on node1 from rank 0 on node0|0 on node0 from rank 1 on node1) \(allowed: shm\)" \
  "$TMP/err" || fail "no error naming the pair"
echo PASS
