# Hang diagnosis: deliberately stuck jobs. A --timeout that fires, SIGQUIT to ipcrun
# and `ipcrun --dump PID` make every rank report what it waits for; ipcrun prints one
# block per rank and a summary that names the likely cause.
#   hang.sh IPCRUN HANG_PROGRAM
source "$(dirname "$0")/launcher_common.sh"
HANG=${2:?"usage: $0 ipcrun hang-program"}
export IPC_DUMP_WAIT=20  # ends as soon as every rank has answered

expect_err() {  # pattern (grep -E), what
  grep -Eq -- "$1" "$TMP/err" || fail "$2: no line matching '$1'"
}

# wait_out N: until N ranks have printed their whole "blocking" line (at most 20 s).
wait_out() {
  local i
  for ((i = 0; i < 2000; i++)); do
    (($(grep -cE '^rank [0-9]+ blocking \(pid [0-9]+\)$' "$TMP/out" 2>/dev/null || true) >= $1)) && return 0
    kill -0 "$BG_PID" 2>/dev/null || fail "the job ended before blocking"
    sleep 0.01
  done
  fail "the ranks did not block within 20 s"
}

# 1. Two ranks each waiting for the other; the dump comes with the timeout.
run "$IPCRUN" -n 2 --timeout 2 "$HANG" recv
expect_status 124 "recv deadlock, timed out"
expect_err "^ipcrun: dump of job .* \(2 ranks of .*\): the job timed out after 2 s$" "recv: the dump's head"
expect_err "^rank 0 on [^ ]+ \(pid [0-9]+, state [RS]\):$" "recv: rank 0's block"
expect_err "^  blocked for [0-9.]+ s: receive from rank 1, tag 5, on world$" "recv: what rank 0 waits for"
expect_err "^  posted receives: 1$" "recv: the queues"
expect_err "^summary: ranks 0-1 wait in receive from rank [01] tag 5 \(world\)|^summary: rank 0 waits in receive from rank 1 tag 5 \(world\); rank 1 waits in receive from rank 0 tag 5 \(world\)$" "recv: the summary"
expect_err "^likely cause: ranks 0 and 1 each wait to receive from the other$" "recv: the cause"
expect_err "^ipcrun: job timed out after 2 s; stopping 2 ranks$" "recv: the timeout's line after the dump"
wait_ranks_gone 10 "recv"

# 2. Every rank but the last in allreduce, the last in a receive.
run "$IPCRUN" -n 4 --timeout 2 "$HANG" coll
expect_status 124 "collective never entered"
expect_err "^  blocked for [0-9.]+ s in allreduce #[0-9]+ on world: " "coll: a rank in the collective"
expect_err "^summary: ranks 0-2 wait in allreduce #[0-9]+ on world; rank 3 waits in receive from rank 0 tag 5 \(world\)$" "coll: the summary"
expect_err "^likely cause: ranks 0-2 wait in allreduce #[0-9]+ on world, which rank 3 never entered; rank 3 waits in receive from rank 0 tag 5 \(world\)$" "coll: the cause"

# 3. Mismatched collectives, over messages.
run "$IPCRUN" -n 3 --timeout 2 -x IPC_SHM_COLL=0 "$HANG" mismatch
expect_status 124 "mismatched collectives"
expect_err "^likely cause: mismatched collectives: (rank 0 in barrier #[0-9]+ on world, ranks 1-2 in allreduce #[0-9]+ on world|ranks 1-2 in allreduce #[0-9]+ on world, rank 0 in barrier #[0-9]+ on world)$" "mismatch: the cause"

# 4. A stopped rank, found by SIGQUIT to ipcrun while the job runs on.
start_bg "$IPCRUN" -n 3 --timeout 120 "$HANG" stop
wait_out 3
pid2=$(sed -n 's/^rank 2 blocking (pid \([0-9]*\))$/\1/p' "$TMP/out")
[[ -n $pid2 ]] || fail "stop: rank 2 did not say its pid"
for ((i = 0; i < 2000; i++)); do  # until it has stopped itself
  [[ $(awk '{ s = $0; sub(/^.*\) /, "", s); print substr(s, 1, 1) }' "/proc/$pid2/stat" 2>/dev/null) == T ]] && break
  sleep 0.01
done
kill -QUIT "$BG_PID"
for ((i = 0; i < 2000; i++)); do
  grep -q "^likely cause: " "$TMP/err" && break
  sleep 0.01
done
expect_err "^rank 2 on [^ ]+ \(pid [0-9]+, state T\): is stopped \(SIGSTOP, or a debugger\)$" "stop: the stopped rank"
expect_err "^likely cause: rank 2 is stopped \(SIGSTOP, or a debugger\) while the others wait: continue it with kill -CONT$" "stop: the cause"
kill -0 "$BG_PID" 2>/dev/null || fail "stop: the job ended after SIGQUIT"

# 5. `ipcrun --dump PID` from elsewhere prints the same on its own stdout.
"$IPCRUN" --dump "$BG_PID" >"$TMP/dump" 2>"$TMP/dump_err" || fail "--dump PID: status $? ($(cat "$TMP/dump_err"))"
grep -q "^likely cause: rank 2 is stopped" "$TMP/dump" || fail "--dump PID: no cause in $(cat "$TMP/dump")"
kill -TERM "$BG_PID"
kill -TERM "$BG_PID" 2>/dev/null || true  # the second one kills the ranks (the stopped one too)
wait_bg
[[ ! -e ${TMPDIR:-/tmp}/ipcrun-$BG_PID.dump ]] || true

# 6. --dump of something that is not a job of ours.
run "$IPCRUN" --dump 1
expect_status 1 "--dump of pid 1"
expect_err "^ipcrun: --dump 1: no job of yours runs under that ipcrun pid$" "--dump 1"
run "$IPCRUN" --dump 1 2
expect_status 2 "--dump with two arguments"
run env IPC_DUMP_WAIT=soon "$IPCRUN" -n 1 true
expect_status 2 "a malformed IPC_DUMP_WAIT"
expect_err "IPC_DUMP_WAIT='soon'" "a malformed IPC_DUMP_WAIT"
echo "ok"
