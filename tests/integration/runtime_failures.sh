# Failures of jobs built on the runtime, through ipcrun: exit status propagation, a
# rank killed, --timeout, a rank that fails authentication, program not found.
#   runtime_failures.sh IPCRUN FAILING_PROGRAM HELLO_PROGRAM
source "$(dirname "$0")/launcher_common.sh"
FAILING=${2:?failing program}
HELLO=${3:?hello program}
SECONDARY=${4:?secondary_failure program}
export IT_PIDDIR=$PIDS

all_gone() {
  local f pid
  for f in "$PIDS"/[0-9]*; do
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then return 1; fi
  done
  return 0
}

pid_count() { ls "$PIDS" | wc -l; }

# A rank exits 3 while the others block in a receive: ipcrun exits 3, one line.
rm -f "$PIDS"/*
run "$IPCRUN" -n 4 "$FAILING" exit 3 2
[[ $status -eq 3 ]] || fail "exit 3: ipcrun exited $status"
grep -Eq "^ipcrun: rank 2 on .* \(pid [0-9]+\) exited with status 3; stopping 3 ranks$" "$TMP/err" ||
  fail "exit 3: no failure line"
[[ $(pid_count) -eq 4 ]] || fail "exit 3: only $(pid_count) ranks started"
all_gone || fail "exit 3: ranks outlived ipcrun"

# --keep-going: a rank exits 3 at once and the others end normally; their final fence
# completes without it, so ipcrun exits 3 instead of hanging.
rm -f "$PIDS"/*
run "$IPCRUN" -n 3 --keep-going --timeout 30 "$FAILING" leave 3 1
[[ $status -eq 3 ]] || fail "keep-going, a rank leaves: ipcrun exited $status"
grep -Eq "^ipcrun: rank 1 on .* exited with status 3$" "$TMP/err" || fail "keep-going, a rank leaves: no line"

# A rank killed by SIGKILL: 137, and the others are gone when ipcrun returns.
rm -f "$PIDS"/*
run "$IPCRUN" -n 3 "$FAILING" kill 9 1
[[ $status -eq 137 ]] || fail "SIGKILL: ipcrun exited $status"
grep -Eq "^ipcrun: rank 1 on .* was killed by signal 9 \(SIGKILL\); stopping 2 ranks$" "$TMP/err" ||
  fail "SIGKILL: no failure line"
all_gone || fail "SIGKILL: ranks outlived ipcrun"
[[ $elapsed -lt 10000 ]] || fail "SIGKILL: ipcrun took $elapsed ms to stop the job"

# The first failure is the one reported, even when the others die of it at once
# (over TCP they learn of the loss immediately and fail with ipc::PeerLost).
for _ in 1 2 3; do
  run "$IPCRUN" -n 4 --transports tcp "$SECONDARY"
  [[ $status -eq 3 ]] || fail "secondary failures: ipcrun exited $status instead of rank 2's 3"
  grep -Eq "^ipcrun: rank 2 on .* exited with status 3; stopping 3 ranks$" "$TMP/err" ||
    fail "secondary failures: rank 2 not named"
done

# --timeout stops a job that never ends.
rm -f "$PIDS"/*
run "$IPCRUN" -n 2 --timeout 1 "$FAILING" hang
[[ $status -eq 124 ]] || fail "timeout: ipcrun exited $status"
grep -q "timed out" "$TMP/err" || fail "timeout: no message"
all_gone || fail "timeout: ranks outlived ipcrun"

# A rank with the wrong job secret cannot join: it fails with a clear message and
# the job ends (rank 0, waiting at the fence, is stopped).
run "$IPCRUN" -n 2 sh -c 'if [ "$IPC_RANK" = 1 ]; then IPC_JOB_SECRET=0000000000000000000000000000000000000000000000000000000000000000 exec "$0"; else exec "$0"; fi' "$HELLO"
[[ $status -ne 0 ]] || fail "wrong secret: the job succeeded"
grep -q "failed authentication" "$TMP/err" || fail "wrong secret: no authentication message"

# Program not found: 127 before anything starts.
run "$IPCRUN" -n 2 ./no-such-program-here
[[ $status -eq 127 ]] || fail "not found: ipcrun exited $status"
grep -q "not found" "$TMP/err" || fail "not found: no message"

# A malformed parameter is an ipc::UsageError naming the variable and its value, on
# every floor that reads one (engine, collectives, a transport), never a bare C++ error
# (set in the ranks' own environment: ipcrun does not see it); in ipcrun's, ipcrun
# reports it before any rank starts.
for bad in IPC_SHM_EAGER=abc IPC_SHM_WRAP=-5 IPC_SHM_CHUNK=-1 IPC_SHM_RING=-4096 IPC_COLL_FLAT=maybe IPC_WAIT_SPIN_US=fast IPC_OVERSUBSCRIBED=sometimes IPC_TCP_EAGER=1k; do
  name=${bad%%=*} value=${bad#*=}
  run env IPC_TRANSPORTS=shm,tcp "$IPCRUN" -n 2 env "$bad" "$HELLO"
  [[ $status -ne 0 ]] || fail "$bad: the job ran"
  grep -q "ipc::UsageError: $name='$value'" "$TMP/err" || fail "$bad: no usage error naming it: $(head -n 2 "$TMP/err")"
  grep -q "std::invalid_argument" "$TMP/err" && fail "$bad: escaped as std::invalid_argument"
  run env "$bad" IPC_TRANSPORTS=shm,tcp "$IPCRUN" -n 2 "$HELLO"
  [[ $status -eq 2 ]] || fail "$bad in ipcrun's environment: status $status"
  [[ $(cat "$TMP/err") == "ipcrun: $name='$value' is not "* && $(wc -l <"$TMP/err") -eq 1 ]] ||
    fail "$bad in ipcrun's environment: $(head -n 2 "$TMP/err")"
  [[ ! -s $TMP/out ]] || fail "$bad in ipcrun's environment: a rank ran"
done

# --iface and --port-range take effect in the ranks' TCP transport: a job over lo works,
# and two ranks cannot share a range of one port (the second one says why).
run "$IPCRUN" -n 2 --transports tcp --iface lo "$HELLO"
[[ $status -eq 0 ]] || fail "--iface lo: ipcrun exited $status: $(head -n 2 "$TMP/err")"
run "$IPCRUN" -n 2 --transports tcp --port-range 20999-20999 "$HELLO"
[[ $status -ne 0 ]] || fail "two ranks in a range of one port: the job ran"
grep -q "tcp: no free port in IPC_TCP_PORTS=20999-20999" "$TMP/err" || fail "a full port range: $(head -n 2 "$TMP/err")"

# A rank that never reaches its Runtime does not hold the others for ever: they give
# up after IPC_BOOTSTRAP_TIMEOUT with an ipc::Timeout saying what they waited for.
run "$IPCRUN" -n 3 -x IPC_BOOTSTRAP_TIMEOUT=1 sh -c 'if [ "$IPC_RANK" = 2 ]; then exec sleep 20; fi; exec "$0"' "$HELLO"
[[ $status -ne 0 ]] || fail "a rank that never started: the job succeeded"
((elapsed < 15000)) || fail "a rank that never started: the others waited ${elapsed} ms"
grep -q "rank [01] on .*: uncaught ipc::Timeout: waited 1 s at start-up for the other ranks of the job (IPC_BOOTSTRAP_TIMEOUT)" "$TMP/err" ||
  fail "a rank that never started: $(head -c 600 "$TMP/err")"

# A job of one rank run bare (no ipcrun) works.
run "$HELLO"
[[ $status -eq 0 ]] || fail "bare run exited $status"
grep -q "hello from rank 0 of 1" "$TMP/out" || fail "bare run: wrong output"
echo "PASS"
