# No orphans: when ipcrun is killed outright its ranks die too, with what they started
# (their agent sees its link close and kills each rank's whole process group).
source "$(dirname "$0")/launcher_common.sh"

start_bg "$IPCRUN" -n 4 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; sleep 30 & wait'
wait_for_pids 4
kill -KILL "$BG_PID"
wait_bg
expect_status 137 "ipcrun killed"
wait_ranks_gone 5 "ranks of a killed ipcrun"
echo "PASS $TEST_NAME"
