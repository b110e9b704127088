# A /dev/shm too small for the job's rings (a container's 64 MiB default, here 6 MiB
# in a mount namespace of the test's own) is a clear error naming /dev/shm, the size
# needed and what to do, not a bare SIGBUS; nothing of the job is left in it.
#   shm_space.sh IPCRUN HELLO
source "$(dirname "$0")/launcher_common.sh"
HELLO=${2:?hello}
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
  echo "SKIP: needs root and unshare (a private /dev/shm)"
  exit 0
fi
run unshare -m sh -c "mount -t tmpfs -o size=6M tmpfs /dev/shm && '$IPCRUN' -n 8 '$HELLO'; echo \"status \$?\"; ls /dev/shm | grep -c '^ipc-' || true"
grep -q "SIGBUS" "$TMP/err" && fail "a rank died of SIGBUS"
grep -q "needs 4.0 MiB in /dev/shm, which has .* MiB free of 6.0 MiB: give /dev/shm more room" "$TMP/err" ||
  fail "no clear /dev/shm message"
grep -q "(each of the 8 ranks on this host maps as much: 32.0 MiB in all)" "$TMP/err" || fail "no total for the host"
grep -q "^status 0$" "$TMP/out" && fail "the job succeeded"
[[ $(tail -n 1 "$TMP/out") == 0 ]] || fail "segments left in the small /dev/shm: $(tail -n 1 "$TMP/out")"
# The same job fits once shared memory is left out.
run unshare -m sh -c "mount -t tmpfs -o size=6M tmpfs /dev/shm && '$IPCRUN' -n 8 --transports tcp '$HELLO' | wc -l"
expect_status 0 "--transports tcp in a small /dev/shm"
expect_file "$TMP/out" "8" "--transports tcp in a small /dev/shm"
echo "PASS $TEST_NAME"
