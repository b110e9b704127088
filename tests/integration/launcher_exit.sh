# Exit status: 0 when all ranks succeed, else the first failure's status after the
# others are stopped; --keep-going lets the others run on.
source "$(dirname "$0")/launcher_common.sh"

run "$IPCRUN" -n 3 true
expect_status 0 "all ranks exit 0"
[[ ! -s $TMP/err && ! -s $TMP/out ]] || fail "all ranks exit 0: unexpected output"

# Rank 2 exits 3 at once, the others would sleep 30 s.
run "$IPCRUN" -n 4 sh -c 'echo $$ >"$PIDS/$IPC_RANK"; [ $IPC_RANK = 2 ] && exit 3; sleep 30'
expect_status 3 "rank 2 exits 3"
expect_faster 10000 "rank 2 exits 3"
pid2=$(cat "$PIDS/2")
expect_file "$TMP/err" "ipcrun: rank 2 on $NODE (pid $pid2) exited with status 3; stopping 3 ranks" "failure line"
expect_ranks_gone "rank 2 exits 3"

# The failing rank's own last words come before ipcrun's line about it.
run "$IPCRUN" -n 2 sh -c '[ $IPC_RANK = 1 ] && { echo "rank 1 gives up" >&2; exit 7; }; exec sleep 30'
expect_status 7 "last words"
[[ $(head -n 1 "$TMP/err") == "rank 1 gives up" ]] || fail "last words: stderr '$(cat "$TMP/err")'"
grep -q "^ipcrun: rank 1 on $NODE (pid [0-9]*) exited with status 7; stopping 1 rank$" "$TMP/err" ||
  fail "last words: no failure line"

# A single rank failing: no "stopping" clause.
run "$IPCRUN" sh -c 'echo $$ >"$PIDS/0"; exit 42'
expect_status 42 "one rank exits 42"
expect_file "$TMP/err" "ipcrun: rank 0 on $NODE (pid $(cat "$PIDS/0")) exited with status 42" "single failure line"
rm -f "$PIDS"/*

# A rank that ignores SIGTERM is killed after IPC_KILL_GRACE.
run env IPC_KILL_GRACE=0.3 "$IPCRUN" -n 2 sh -c \
  'trap "" TERM; echo $$ >"$PIDS/$IPC_RANK"; [ $IPC_RANK = 0 ] && { while [ ! -s "$PIDS/1" ]; do sleep 0.01; done; exit 9; }; sleep 30'
expect_status 9 "SIGTERM ignored"
expect_faster 10000 "SIGTERM ignored"
expect_ranks_gone "SIGTERM ignored"
[[ $(grep -c '^ipcrun: ' "$TMP/err") == 1 ]] || fail "SIGTERM ignored: ranks killed by ipcrun were reported"
rm -f "$PIDS"/*

# --keep-going: failures are reported without stopping anyone; status of the first.
# Rank 1 fails once ipcrun has reaped rank 0, rank 2 finishes once it has reaped
# rank 1 (a rank's pid stays valid until ipcrun reaps it).
run "$IPCRUN" -n 3 --keep-going sh -c \
  'reaped() { until [ -s "$PIDS/$1" ]; do sleep 0.01; done; while kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; do sleep 0.01; done; }
   echo $$ >"$PIDS/$IPC_RANK"
   case $IPC_RANK in
     0) exit 5 ;;
     1) reaped 0; exit 6 ;;
     2) reaped 1; echo "rank 2 finished" ;;
   esac'
expect_status 5 "--keep-going"
expect_file "$TMP/out" "rank 2 finished" "--keep-going: rank 2 ran to its end"
expect_file "$TMP/err" "ipcrun: rank 0 on $NODE (pid $(cat "$PIDS/0")) exited with status 5
ipcrun: rank 1 on $NODE (pid $(cat "$PIDS/1")) exited with status 6" "--keep-going lines"
echo "PASS $TEST_NAME"
