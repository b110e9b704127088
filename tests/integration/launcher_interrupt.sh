# SIGINT/SIGTERM to ipcrun reach every rank; a second one kills them. The exit
# status follows the ranks' own, without failure lines for them.
source "$(dirname "$0")/launcher_common.sh"

# Ranks that catch SIGINT and exit 5.
start_bg "$IPCRUN" -n 3 sh -c 'trap "echo got INT; exit 5" INT; echo $$ >"$PIDS/$IPC_RANK"; sleep 30'
wait_for_pids 3
t0=$(now_ms)
kill -INT "$BG_PID"
wait_bg
elapsed=$(($(now_ms) - t0))
expect_status 5 "SIGINT caught by the ranks"
expect_faster 5000 "SIGINT caught by the ranks"
expect_file "$TMP/out" "got INT
got INT
got INT" "SIGINT caught by the ranks"
expect_file "$TMP/err" "ipcrun: interrupted by SIGINT; stopping 3 ranks" "SIGINT line"
expect_ranks_gone "SIGINT caught by the ranks"
rm -f "$PIDS"/*

# Ranks with the default action die of it: 130.
start_bg "$IPCRUN" -n 2 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; exec sleep 30'
wait_for_pids 2
kill -INT "$BG_PID"
wait_bg
expect_status 130 "SIGINT, default action"
expect_file "$TMP/err" "ipcrun: interrupted by SIGINT; stopping 2 ranks" "SIGINT line, default action"
expect_ranks_gone "SIGINT, default action"
rm -f "$PIDS"/*

# SIGTERM likewise: 143.
start_bg "$IPCRUN" -n 2 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; exec sleep 30'
wait_for_pids 2
kill -TERM "$BG_PID"
wait_bg
expect_status 143 "SIGTERM"
expect_file "$TMP/err" "ipcrun: interrupted by SIGTERM; stopping 2 ranks" "SIGTERM line"
expect_ranks_gone "SIGTERM"
rm -f "$PIDS"/*

# Ranks that ignore SIGINT: the second SIGINT kills them (137).
start_bg "$IPCRUN" -n 2 sh -c 'trap "" INT; echo $$ >"$PIDS/$IPC_RANK"; exec sleep 30'
wait_for_pids 2
kill -INT "$BG_PID"
wait_for_text "$TMP/err" "interrupted by SIGINT"
kill -INT "$BG_PID"
wait_bg
expect_status 137 "second SIGINT"
expect_file "$TMP/err" "ipcrun: interrupted by SIGINT; stopping 2 ranks
ipcrun: interrupted by SIGINT again; killing 2 ranks" "second SIGINT lines"
expect_ranks_gone "second SIGINT"
echo "PASS $TEST_NAME"
