# SIGUSR1 and SIGUSR2 to ipcrun reach every rank (each handles them here and goes on);
# a rank that does not handle one dies of it, as it would of a kill.
source "$(dirname "$0")/launcher_common.sh"

# Each rank traps both, says it is ready, and counts what arrives until told to end.
rank='trap "echo usr1 >>\"$PIDS/got.$IPC_RANK\"" USR1
trap "echo usr2 >>\"$PIDS/got.$IPC_RANK\"" USR2
echo $$ >"$PIDS/$IPC_RANK"
while [ ! -e "$PIDS/end" ]; do sleep 0.01; done'
start_bg "$IPCRUN" -n 3 sh -c "$rank"
wait_for_pids 3
kill -USR1 "$BG_PID"
for r in 0 1 2; do wait_for_text "$PIDS/got.$r" usr1; done
kill -USR2 "$BG_PID"
for r in 0 1 2; do wait_for_text "$PIDS/got.$r" usr2; done
touch "$PIDS/end"
wait_bg
expect_status 0 "ranks that handle SIGUSR1 and SIGUSR2"
[[ ! -s $TMP/err ]] || fail "SIGUSR1/2: ipcrun said $(cat "$TMP/err")"
rm -f "$PIDS"/*

start_bg "$IPCRUN" -n 2 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; exec sleep 30'
wait_for_pids 2
kill -USR1 "$BG_PID"
wait_bg
expect_status 138 "ranks that do not handle SIGUSR1"
grep -q "was killed by signal 10 (SIGUSR1)" "$TMP/err" || fail "no line for a rank killed by SIGUSR1: $(cat "$TMP/err")"
expect_ranks_gone "SIGUSR1 unhandled"
echo "PASS $TEST_NAME"
