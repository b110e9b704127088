# examples/heat prints the same iterations and residual for any number of ranks,
# with the node group's collectives and without, over shm and over tcp.
#   heat.sh IPCRUN HEAT
source "$(dirname "$0")/launcher_common.sh"
HEAT=${2:?"usage: $0 ipcrun heat-program"}

run "$IPCRUN" -n 1 "$HEAT"
expect_status 0 "heat on 1 rank"
grep -Eq '^iterations: [0-9]+$' "$TMP/out" && grep -Eq '^residual: [0-9.e-]+$' "$TMP/out" ||
  fail "heat on 1 rank printed: $(cat "$TMP/out")"
cp "$TMP/out" "$TMP/reference"
check() {  # what, ipcrun options...
  local what=$1
  shift
  run "$IPCRUN" "$@" "$HEAT"
  expect_status 0 "heat, $what"
  cmp -s "$TMP/out" "$TMP/reference" ||
    fail "heat, $what: printed '$(tr '\n' ' ' <"$TMP/out")', 1 rank printed '$(tr '\n' ' ' <"$TMP/reference")'"
}
for np in 2 3 4 5 8; do check "$np ranks" -n "$np"; done
check "4 ranks, collectives over messages" -n 4 -x IPC_SHM_COLL=0
check "3 ranks over tcp" -n 3 --transports tcp
run "$IPCRUN" -n 3 "$HEAT" 2
expect_status 2 "a plate of 2 rows on 3 ranks"
grep -q "heat: a plate of 2 rows cannot be dealt to 3 ranks" "$TMP/err" || fail "no message for 2 rows on 3 ranks"
echo "heat: the same output on 1 to 8 ranks: $(tr '\n' ' ' <"$TMP/reference")"
