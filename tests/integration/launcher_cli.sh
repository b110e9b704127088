# Command line: --version, --help, --list-params, usage errors, parsing stops at
# the program.
source "$(dirname "$0")/launcher_common.sh"

run "$IPCRUN" --version
expect_status 0 "--version"
grep -Eq '^ipcrun \(ipc\) [0-9]+\.[0-9]+\.[0-9]+$' "$TMP/out" || fail "--version printed '$(cat "$TMP/out")'"

run "$IPCRUN" --help
expect_status 0 "--help"
grep -q '^Usage: ipcrun \[options\] program \[args...\]' "$TMP/out" || fail "--help has no usage line"
for opt in --np --tag-output -x --timeout --transports --report-transports --keep-going --list-params --version; do
  grep -q -- "$opt" "$TMP/out" || fail "--help does not mention $opt"
done

run "$IPCRUN" --list-params
expect_status 0 "--list-params"
grep -Eq '^IPC_KILL_GRACE +1 +ipcrun: ' "$TMP/out" || fail "--list-params lacks IPC_KILL_GRACE: $(cat "$TMP/out")"
grep -Eq '^IPC_TRANSPORTS +' "$TMP/out" || fail "--list-params lacks IPC_TRANSPORTS"
# Aligned: the default column starts at the same offset on every line.
cols=$(awk '{ match($0, /^[A-Z_0-9]+ +/); print RLENGTH }' "$TMP/out" | sort -u | wc -l)
[[ $cols == 1 ]] || fail "--list-params columns are not aligned"

# Usage errors: one line, exit 2, nothing started.
check_usage_error() {  # what, pattern, args...
  local what=$1 pattern=$2
  shift 2
  run "$IPCRUN" "$@"
  expect_status 2 "$what"
  [[ $(wc -l <"$TMP/err") == 1 ]] || fail "$what: expected one line on stderr"
  grep -Eq "^ipcrun: .*$pattern.*--help" "$TMP/err" || fail "$what: stderr '$(cat "$TMP/err")'"
  [[ ! -s $TMP/out ]] || fail "$what: something ran"
}
check_usage_error "unknown option" "--bogus" --bogus sh -c 'echo ran'
check_usage_error "unknown option after -n" "--frobnicate" -n 2 --frobnicate sh -c 'echo ran'
check_usage_error "-n 0" "np" -n 0 sh -c 'echo ran'
check_usage_error "-n not a number" "np" -n two sh -c 'echo ran'
check_usage_error "--timeout 0" "timeout" --timeout 0 sh -c 'echo ran'
check_usage_error "--timeout junk" "timeout" --timeout 5x sh -c 'echo ran'
check_usage_error "missing program" "no program" -n 2
check_usage_error "empty -x" "-x" -x =3 sh -c 'echo ran'
check_usage_error "-x name with a space" "-x 'A B=1'" -x 'A B=1' sh -c 'echo ran'
check_usage_error "-x name starting with a digit" "-x '1A'" -x 1A sh -c 'echo ran'

# Everything after the program is the program's: -n 5 goes to it.
run "$IPCRUN" -n 2 sh -c 'printf "%s|" "$@"; echo' sh -n 5 --version
expect_status 0 "arguments after the program"
expect_file "$TMP/out" "-n|5|--version|
-n|5|--version|" "arguments after the program"

# `--` ends the options too; -n4 and --np=3 forms work.
run "$IPCRUN" -n3 -- sh -c 'echo $IPC_SIZE'
expect_file "$TMP/out" "3
3
3" "-n3 --"
run "$IPCRUN" --np=2 sh -c 'echo $IPC_SIZE'
expect_file "$TMP/out" "2
2" "--np=2"
# A job that would run out of open files is refused before any rank starts, with the
# numbers and what to do.
run bash -c 'ulimit -n 100; exec "$0" -n 50 sh -c "echo started"' "$IPCRUN"
expect_status 2 "-n 50 under ulimit -n 100"
expect_file "$TMP/out" "" "-n 50 under ulimit -n 100: nothing started"
grep -q "^ipcrun: -n 50 needs about 214 open files (3 a rank), but ipcrun may open 100 (ulimit -n, hard limit 100): raise the limit" "$TMP/err" ||
  fail "descriptor limit: $(cat "$TMP/err")"

# Transports this build does not have: ipcrun's usage error, before any rank starts.
have="self, shm, tcp"
"$IPCRUN" --list-params | grep -q "^IPC_MPI_EAGER " && have="self, shm, mpi, tcp"
run "$IPCRUN" -n 2 --transports shm,carrier-pigeon true
expect_status 2 "--transports carrier-pigeon"
expect_file "$TMP/err" "ipcrun: --transports: unknown transport 'carrier-pigeon' (this build has: $have) (see 'ipcrun --help')" "--transports carrier-pigeon"
run env IPC_TRANSPORTS=pigeon "$IPCRUN" -n 2 true
expect_status 2 "IPC_TRANSPORTS=pigeon"
expect_file "$TMP/err" "ipcrun: IPC_TRANSPORTS: unknown transport 'pigeon' (this build has: $have)" "IPC_TRANSPORTS=pigeon"
# A list with no transport between ranks (empty, or self alone) for more than one rank.
run "$IPCRUN" -n 2 --transports '' sh -c 'echo started'
expect_status 2 "--transports ''"
expect_file "$TMP/out" "" "--transports '': no rank started"
expect_file "$TMP/err" "ipcrun: --transports='' names no transport between ranks, which a job of 2 ranks needs (this build has: $have) (see 'ipcrun --help')" "--transports ''"
run env IPC_TRANSPORTS=self "$IPCRUN" -n 3 true
expect_status 2 "IPC_TRANSPORTS=self"
expect_file "$TMP/err" "ipcrun: IPC_TRANSPORTS='self' names no transport between ranks, which a job of 3 ranks needs (this build has: $have)" "IPC_TRANSPORTS=self"
run "$IPCRUN" --transports self sh -c 'echo one'
expect_status 0 "--transports self, one rank"
expect_file "$TMP/out" "one" "--transports self, one rank"
echo "PASS $TEST_NAME"
