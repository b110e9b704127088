# File-backed windows: one job writes, the next reopens and finds it; a window of
# another type or other slices is refused, naming the file.
#   window.sh IPCRUN WINDOW_PROGRAM SHARED_MATRIX_EXAMPLE
source "$(dirname "$0")/launcher_common.sh"
WINDOW=${2:?"usage: $0 ipcrun window-program shared-matrix"}
MATRIX=${3:?"usage: $0 ipcrun window-program shared-matrix"}
FILE=$TMP/state.win
run "$IPCRUN" -n 4 "$WINDOW" write "$FILE"
expect_status 0 "a new file-backed window"
[[ -s $FILE ]] || fail "no window file"
run "$IPCRUN" -n 4 "$WINDOW" reopen "$FILE"
expect_status 0 "reopened by the next job"
run "$IPCRUN" -n 4 "$WINDOW" mismatch "$FILE"
expect_status 0 "mismatched reopens refused"
# (The job's id, for its segments: other tests' jobs may hold windows meanwhile.)
run "$IPCRUN" -n 3 sh -c 'echo "$IPC_JOB" >"$1.job"; exec "$0" reopen "$1"' "$WINDOW" "$FILE"
[[ $status != 0 ]] || fail "3 ranks reopened a window of 4"
grep -q "reopening $FILE: it has 4 slices (ranks on the node), not 3" "$TMP/err" || fail "3 ranks: $(head -3 "$TMP/err")"
job=$(cat "$FILE.job")
[[ $job =~ ^[0-9a-f]+$ ]] || fail "no job id from the 3-rank job: '$job'"
ls /dev/shm | grep -q "^ipc-$job-" && fail "a segment of the 3-rank job was left in /dev/shm: $(ls /dev/shm | grep "^ipc-$job-")"
# examples/shared_matrix: a new file, then the next run finds it intact.
run "$IPCRUN" -n 4 "$MATRIX" "$TMP/m.win" 64
expect_status 0 "shared_matrix, first run"
grep -q "^new $TMP/m.win: 64 x 64 doubles on 4 ranks$" "$TMP/out" || fail "shared_matrix, first run: $(cat "$TMP/out")"
run "$IPCRUN" -n 4 "$MATRIX" "$TMP/m.win" 64
expect_status 0 "shared_matrix, second run"
grep -q "^reopened $TMP/m.win: generation 1, intact$" "$TMP/out" && grep -q "^wrote generation 2; .*: agreed$" "$TMP/out" ||
  fail "shared_matrix, second run: $(cat "$TMP/out")"
echo "PASS window"
