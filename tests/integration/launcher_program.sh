# Program resolution before anything starts: 127 not found, 126 not executable;
# an exec failure in the child is reported with the rank and errno text.
source "$(dirname "$0")/launcher_common.sh"

run "$IPCRUN" -n 2 no-such-program-ipc-test
expect_status 127 "not found in PATH"
expect_file "$TMP/err" "ipcrun: program 'no-such-program-ipc-test' not found in PATH" "not found in PATH"

run "$IPCRUN" -n 2 "$TMP/missing"
expect_status 127 "not found (path)"
expect_file "$TMP/err" "ipcrun: program '$TMP/missing' not found" "not found (path)"

printf '#!/bin/sh\necho ran >>"%s/ran"\n' "$TMP" >"$TMP/noexec"
chmod 644 "$TMP/noexec"
run env -C "$TMP" "$IPCRUN" -n 2 ./noexec
expect_status 126 "not executable"
expect_file "$TMP/err" "ipcrun: program './noexec' is not executable" "not executable"
run "$IPCRUN" "$TMP"
expect_status 126 "a directory"

# Found in PATH but not executable there.
mkdir "$TMP/bin"
cp "$TMP/noexec" "$TMP/bin/ipc-test-noexec"
PATH="$TMP/bin:$PATH" run "$IPCRUN" ipc-test-noexec
expect_status 126 "not executable in PATH"
grep -q "^ipcrun: program 'ipc-test-noexec' .*is not executable" "$TMP/err" || fail "not executable in PATH: message"
[[ ! -e $TMP/ran ]] || fail "a program that cannot run ran"

# Found through PATH and started.
chmod 755 "$TMP/bin/ipc-test-noexec"
PATH="$TMP/bin:$PATH" run "$IPCRUN" -n 2 ipc-test-noexec
expect_status 0 "found in PATH"
[[ $(wc -l <"$TMP/ran") == 2 ]] || fail "found in PATH: not run twice"

# Executable but not a valid program: exec fails in the child (ENOEXEC).
printf '\177ELF garbage' >"$TMP/bad"
chmod 755 "$TMP/bad"
run "$IPCRUN" -n 2 "$TMP/bad"
expect_status 127 "exec failure"
expect_file "$TMP/err" "ipcrun: cannot start rank 0 on $NODE: execve $TMP/bad: Exec format error" "exec failure line"
echo "PASS $TEST_NAME"
