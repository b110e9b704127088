# --timeout: the job is stopped after S seconds with status 124.
source "$(dirname "$0")/launcher_common.sh"

run "$IPCRUN" -n 3 --timeout 0.5 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; exec sleep 30'
expect_status 124 "--timeout"
expect_faster 8000 "--timeout"
((elapsed >= 450)) || fail "--timeout 0.5 ended after ${elapsed} ms"
expect_file "$TMP/err" "ipcrun: job timed out after 0.5 s; stopping 3 ranks" "timeout line"
expect_ranks_gone "--timeout"

# A job that ends in time is not affected.
run "$IPCRUN" -n 2 --timeout 20 true
expect_status 0 "job within its timeout"
expect_faster 5000 "job within its timeout"

# Timeouts too long for any clock mean forever; they do not fire at once.
run "$IPCRUN" -n 2 --timeout 1e10 sh -c 'sleep 0.3; echo ran'
expect_status 0 "--timeout 1e10"
expect_file "$TMP/out" "ran
ran" "--timeout 1e10"
run env IPC_KILL_GRACE=1e300 IPC_LINK_TIMEOUT=1e300 IPC_LAUNCH_TIMEOUT=1e300 "$IPCRUN" -n 2 --timeout 1e300 true
expect_status 0 "every timeout 1e300"
echo "PASS $TEST_NAME"
