# No orphans: when ipcrun is killed outright its ranks die too (PR_SET_PDEATHSIG).
source "$(dirname "$0")/launcher_common.sh"

start_bg "$IPCRUN" -n 4 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; exec sleep 30'
wait_for_pids 4
kill -KILL "$BG_PID"
wait_bg
expect_status 137 "ipcrun killed"
wait_ranks_gone 5 "ranks of a killed ipcrun"
echo "PASS $TEST_NAME"
