# A rank killed by a signal: status 128+N, the signal named, the others stopped.
source "$(dirname "$0")/launcher_common.sh"

run "$IPCRUN" -n 4 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; [ $IPC_RANK = 1 ] && kill -KILL $$; exec sleep 30'
expect_status 137 "rank killed by SIGKILL"
expect_faster 10000 "rank killed by SIGKILL"
expect_file "$TMP/err" \
  "ipcrun: rank 1 on $NODE (pid $(cat "$PIDS/1")) was killed by signal 9 (SIGKILL); stopping 3 ranks" \
  "SIGKILL line"
expect_ranks_gone "rank killed by SIGKILL"
rm -f "$PIDS"/*

run "$IPCRUN" -n 2 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; [ $IPC_RANK = 0 ] && kill -SEGV $$; exec sleep 30'
expect_status 139 "rank killed by SIGSEGV"
grep -q "^ipcrun: rank 0 on $NODE (pid [0-9]*) was killed by signal 11 (SIGSEGV); stopping 1 rank$" "$TMP/err" ||
  fail "SIGSEGV line"
expect_ranks_gone "rank killed by SIGSEGV"
echo "PASS $TEST_NAME"
