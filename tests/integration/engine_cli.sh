# ipcrun --engine mpirun: ipcrun's options reach the ranks through mpirun; --timeout
# keeps its meaning (124, nothing left); what mpirun cannot take is refused; a missing
# engine is named; so is an engines module that cannot be loaded.
#   engine_cli.sh IPCRUN HELLO
set -uo pipefail
IPCRUN=$1
HELLO=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() {
  echo "FAIL (engine_cli): $*" >&2
  exit 1
}
run() {
  "$@" >"$TMP/out" 2>"$TMP/err"
  status=$?
}
run "$IPCRUN" --engine mpirun -n 3 --report-transports --transports mpi "$HELLO"
[ "$status" = 0 ] || fail "--engine mpirun -n 3: status $status: $(tail -n 3 "$TMP/err")"
[ "$(grep -c 'hello from rank .* of 3' "$TMP/out")" = 3 ] || fail "--engine mpirun -n 3: $(cat "$TMP/out")"
grep -q "transport 1 -> 2: mpi" "$TMP/err" || fail "--transports mpi --report-transports: $(cat "$TMP/err")"
run "$IPCRUN" --engine mpirun -n 2 -x IT_ENGINE_MARK=seen-it sh -c 'echo "$IT_ENGINE_MARK"'
[ "$status" = 0 ] && [ "$(cat "$TMP/out")" = "seen-it
seen-it" ] || fail "-x through mpirun: status $status, $(cat "$TMP/out" "$TMP/err")"
mark="ipc-engine-cli-$$-$RANDOM"
run "$IPCRUN" --engine mpirun -n 2 --timeout 1 sh -c "sleep 30 # $mark"
[ "$status" = 124 ] || fail "--timeout 1: status $status, expected 124: $(tail -n 3 "$TMP/err")"
for _ in $(seq 100); do pgrep -f -- "$mark" >/dev/null || break; sleep 0.05; done
pgrep -f -- "$mark" >/dev/null && fail "--timeout 1: ranks left running"
run "$IPCRUN" --engine mpirun --tls -n 2 "$HELLO"
[ "$status" = 2 ] && grep -q "^ipcrun: --tls cannot be used with --engine mpirun" "$TMP/err" || fail "--tls: $status $(cat "$TMP/err")"
run "$IPCRUN" --engine pigeon -n 2 "$HELLO"
[ "$status" = 2 ] && grep -q "engine" "$TMP/err" || fail "--engine pigeon: $status $(cat "$TMP/err")"
run env PATH=/nonexistent "$IPCRUN" --engine slurm -n 2 "$HELLO"
[ "$status" = 127 ] && grep -q "^ipcrun: cannot run srun (--engine): No such file or directory" "$TMP/err" ||
  fail "srun missing: $status $(cat "$TMP/err")"
# The recipe cluster/recipes/mpirun.sh, with a hostfile of this host.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
printf 'localhost slots=4\n' >"$TMP/hosts"
run env IPC_REPORT_TRANSPORTS=1 bash "$ROOT/cluster/recipes/mpirun.sh" "$TMP/hosts" 3 "$HELLO"
[ "$status" = 0 ] && [ "$(grep -c 'of 3' "$TMP/out")" = 3 ] && grep -q "transport 0 -> 2: shm" "$TMP/err" ||
  fail "cluster/recipes/mpirun.sh: $status $(cat "$TMP/out" "$TMP/err")"
# PMIx and MPI are in the engines module, loaded under an engine only: a program
# does not load them, and a module that cannot be loaded is named.
if command -v ldd >/dev/null; then
  ldd "$HELLO" | grep -E "libmpi|libpmix|libopen-pal" && fail "the program loads PMIx or MPI at start: $(ldd "$HELLO")"
fi
run "$IPCRUN" --engine mpirun -n 2 -x IPC_ENGINES=/nonexistent/libipc-engines.so "$HELLO"
[ "$status" != 0 ] && grep -q "engines module of ipc (PMIx and MPI) cannot be loaded" "$TMP/err" &&
  grep -q "/nonexistent/libipc-engines.so: cannot open shared object file" "$TMP/err" ||
  fail "IPC_ENGINES missing: $status $(cat "$TMP/err")"
zlib=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
if [ -n "$zlib" ]; then
  run "$IPCRUN" --engine mpirun -n 2 -x IPC_ENGINES="$zlib" "$HELLO"
  [ "$status" != 0 ] && grep -q "$zlib: not an ipc engines module" "$TMP/err" ||
    fail "IPC_ENGINES=$zlib: $status $(cat "$TMP/err")"
fi
echo "engine_cli: ok"
