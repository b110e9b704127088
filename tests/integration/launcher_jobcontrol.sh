# Job control: SIGTSTP to ipcrun (Ctrl-Z) stops every rank, with what runs in its
# process group, and then ipcrun; SIGCONT to ipcrun continues them and the job ends
# normally. A rank stopped this way still acts on SIGTERM.
source "$(dirname "$0")/launcher_common.sh"

# state PID: the one-letter state of a process (R, S, T, Z, ...).
state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1; }

# group_states PGID: the states of the live processes of a group (zombies left out:
# a child may end just before the stop), sorted, unique ("DT").
group_states() {
  # A process may end between the glob and the read: cat's complaint is no failure.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v g="$1" '
    { s = $0; sub(/^.*\) /, "", s); split(s, f, " "); if (f[3] == g && f[1] != "Z") print f[1] }' | sort -u | tr -d '\n'
}

# wait_group_stopped PGID WHAT: waits (at most 10 s) until every process of a rank's
# group is stopped: in state T, or D for a shell waiting on a child stopped between
# vfork and exec (it cannot run on until that child does).
wait_group_stopped() {
  local i st
  for ((i = 0; i < 500; i++)); do
    st=$(group_states "$1")
    [[ $st == T || $st == DT ]] && return 0
    sleep 0.02
  done
  fail "$2: the processes of group $1 are in states '$st', expected all stopped"
}

# wait_state PID STATE WHAT: waits (at most 10 s) until PID is in STATE.
wait_state() {
  local i
  for ((i = 0; i < 500; i++)); do
    [[ $(state "$1") == "$2" ]] && return 0
    sleep 0.02
  done
  fail "$3: pid $1 is in state '$(state "$1")', expected '$2'"
}

# Ranks that count in a file every 20 ms, through a child process (sleep) of theirs,
# until told to finish (a file; at most 60 s): on a loaded machine a fixed count could
# end before the test stops them.
COUNT='echo $$ >"$PIDS/$IPC_RANK"; i=0; while [ $i -lt 3000 ] && [ ! -e "$PIDS/finish" ]; do i=$((i+1)); echo $i >"$PIDS/count.$IPC_RANK"; sleep 0.02; done; echo done'

# ipcrun in a process group of its own, whose parent (this shell) is in another group
# of the same session, as a shell with job control starts it. Started otherwise, its
# group may be orphaned (this test's shell run by a process of another session), and
# the kernel then discards the SIGTSTP with which ipcrun stops itself: by design, as
# nobody could continue it.
start_job() {
  set -m
  start_bg "$@"
  set +m
}
start_job "$IPCRUN" -n 2 sh -c "$COUNT"
wait_for_pids 2
wait_for_text "$PIDS/count.1" 3
kill -TSTP "$BG_PID"
wait_state "$BG_PID" T "ipcrun after SIGTSTP"
for r in 0 1; do wait_group_stopped "$(cat "$PIDS/$r")" "rank $r after SIGTSTP"; done
before=$(cat "$PIDS/count.0" "$PIDS/count.1")
sleep 0.3
[[ $(cat "$PIDS/count.0" "$PIDS/count.1") == "$before" ]] || fail "the ranks kept counting while stopped"
kill -CONT "$BG_PID"
for r in 0 1; do
  for ((i = 0; i < 500; i++)); do [[ $(group_states "$(cat "$PIDS/$r")") != *T* ]] && break; sleep 0.02; done
  [[ $(group_states "$(cat "$PIDS/$r")") != *T* ]] || fail "rank $r (or its child) still stopped after SIGCONT"
done
touch "$PIDS/finish"
wait_bg
expect_status 0 "stopped and continued"
expect_file "$TMP/out" "done
done" "stopped and continued"
expect_file "$TMP/err" "" "stopped and continued: nothing on stderr"
expect_ranks_gone "stopped and continued"
rm -f "$PIDS"/*

# Stopped, then SIGTERM to ipcrun: the ranks are continued to act on it.
start_job "$IPCRUN" -n 2 sh -c 'trap "echo got TERM; exit 3" TERM; echo $$ >"$PIDS/$IPC_RANK"; while :; do sleep 0.02; done'
wait_for_pids 2
kill -TSTP "$BG_PID"
for r in 0 1; do wait_group_stopped "$(cat "$PIDS/$r")" "rank $r after SIGTSTP"; done
kill -TERM "$BG_PID"
kill -CONT "$BG_PID"  # ipcrun itself is stopped too: the shell's fg/bg would send this
wait_bg
expect_status 3 "stopped, then SIGTERM"
expect_file "$TMP/out" "got TERM
got TERM" "stopped, then SIGTERM"
expect_ranks_gone "stopped, then SIGTERM"
echo "PASS $TEST_NAME"
