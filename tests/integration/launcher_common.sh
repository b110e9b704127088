# Helpers sourced by the launcher_*.sh tests. Each test runs real ipcrun jobs;
# $1 is the ipcrun to test.
set -euo pipefail

IPCRUN=${1:?"usage: $0 path/to/ipcrun"}
[[ -x $IPCRUN ]] || { echo "FAIL: '$IPCRUN' is not an executable ipcrun" >&2; exit 1; }
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ipcrun-test.XXXXXX")
PIDS=$TMP/pids  # ranks write their pid ($$) here as pids/<rank>
mkdir -p "$PIDS"
export PIDS
BG_PID=

cleanup() {
  # Never leave anything behind, even when a check failed half-way.
  if [[ -n $BG_PID ]]; then kill -KILL "$BG_PID" 2>/dev/null || true; fi
  local f
  for f in "$PIDS"/[0-9]*; do
    [[ -s $f ]] || continue
    kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL ($TEST_NAME): $*" >&2
  if [[ -s $TMP/err ]]; then echo "--- ipcrun's stderr:" >&2; head -c 4000 "$TMP/err" >&2; fi
  exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# run CMD...: runs CMD with stdout in $TMP/out and stderr in $TMP/err; sets
# $status and $elapsed (milliseconds).
run() {
  local t0
  t0=$(now_ms)
  set +e
  "$@" >"$TMP/out" 2>"$TMP/err"
  status=$?
  set -e
  elapsed=$(($(now_ms) - t0))
}

# start_bg CMD...: starts CMD in the background (stdout, stderr as run), pid in $BG_PID.
start_bg() {
  # Emptied here, not only by the background job's own redirection, which runs later:
  # a look at $TMP/out right after this must not see an earlier command's lines.
  : >"$TMP/out"
  : >"$TMP/err"
  "$@" >"$TMP/out" 2>"$TMP/err" &
  BG_PID=$!
}

# wait_bg: waits for the background command; sets $status.
wait_bg() {
  set +e
  { wait "$BG_PID"; } 2>/dev/null  # no "Killed" notice from bash
  status=$?
  set -e
  BG_PID=
}

expect_status() {  # expected, what
  [[ $status == "$1" ]] || fail "$2: exit status $status, expected $1"
}

expect_file() {  # file, expected content (compared without trailing newlines), what
  local got
  got=$(cat "$1")
  [[ $got == "$2" ]] || fail "$3: got
$got
--- expected
$2"
}

expect_sorted() {  # file, expected lines in sorted order, what
  local got
  got=$(LC_ALL=C sort "$1")
  [[ $got == "$2" ]] || fail "$3: got (sorted)
$got
--- expected
$2"
}

expect_faster() {  # milliseconds, what
  ((elapsed < $1)) || fail "$2: took ${elapsed} ms, expected under $1 ms"
}

# wait_for_pids N: waits (at most 10 s) until N ranks have written their pid files.
wait_for_pids() {
  local i
  for ((i = 0; i < 1000; i++)); do
    local n=0 f
    for f in "$PIDS"/*; do [[ -s $f ]] && n=$((n + 1)); done
    ((n >= $1)) && return 0
    sleep 0.01
  done
  fail "only $n of $1 ranks wrote their pid within 10 s"
}

# Whether a process (not a zombie) runs with this pid or in this process group.
# A rank leads its own group (pgid = its pid).
group_alive() {
  # /proc/PID/stat: pid (comm) state ppid pgrp ...; comm may hold spaces.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v id="$1" '
    { s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
      if (($1 == id || f[3] == id) && f[1] != "Z") found = 1 }
    END { exit !found }'
}

# wait_ranks_gone SECONDS what: polls until no rank that wrote a pid file, nor
# anything in its process group, is alive. Zero seconds: check once.
wait_ranks_gone() {
  local i f alive=
  for ((i = 0; i <= $1 * 50; i++)); do
    alive=
    for f in "$PIDS"/[0-9]*; do
      [[ -s $f ]] && group_alive "$(cat "$f")" && alive="rank $(basename "$f") (pid $(cat "$f"))"
    done
    [[ -z $alive ]] && return 0
    sleep 0.02
  done
  fail "$2: $alive or a process in its group is still alive"
}

# After ipcrun has returned, its ranks are reaped at once; what they started in
# their process group may take a moment to die of the signal it got.
expect_ranks_gone() {  # what
  local f
  for f in "$PIDS"/[0-9]*; do
    [[ -s $f ]] || continue
    [[ ! -e /proc/$(cat "$f") ]] || fail "$1: rank $(basename "$f") (pid $(cat "$f")) was not reaped"
  done
  wait_ranks_gone 2 "$1"
}

# wait_for_text FILE TEXT: waits (at most 10 s) until FILE contains TEXT.
wait_for_text() {
  local i
  for ((i = 0; i < 1000; i++)); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.01
  done
  fail "'$2' did not appear in $(basename "$1") within 10 s"
}

NODE=$(uname -n)
