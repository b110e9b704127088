# File-backed windows: one job writes, the next reopens and finds it; a window of
# another type or other slices is refused, naming the file.
#   window.sh IPCRUN WINDOW_PROGRAM
source "$(dirname "$0")/launcher_common.sh"
WINDOW=${2:?"usage: $0 ipcrun window-program"}
FILE=$TMP/state.win
run "$IPCRUN" -n 4 "$WINDOW" write "$FILE"
expect_status 0 "a new file-backed window"
[[ -s $FILE ]] || fail "no window file"
run "$IPCRUN" -n 4 "$WINDOW" reopen "$FILE"
expect_status 0 "reopened by the next job"
run "$IPCRUN" -n 4 "$WINDOW" mismatch "$FILE"
expect_status 0 "mismatched reopens refused"
run "$IPCRUN" -n 3 "$WINDOW" reopen "$FILE"
[[ $status != 0 ]] || fail "3 ranks reopened a window of 4"
grep -q "reopening $FILE: it has 4 slices (ranks on the node), not 3" "$TMP/err" || fail "3 ranks: $(head -3 "$TMP/err")"
ls /dev/shm | grep -q "ipc-.*-w" && fail "a window segment was left in /dev/shm"
echo "PASS window"
