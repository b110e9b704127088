# Messages above the eager limit go through the ring when it has room for them
# (IPC_SHM_EAGER_ROOM), and larger ones up to IPC_SHM_EAGER_DRAINED when the receiver
# took everything before and has no receive posted from it: messages in turns of 32 KiB
# and of 200,000 bytes then read nothing from the peer's memory (strace counts
# process_vm_readv: with both limits 0 each message is one read), exchanges both ways
# with receives posted first one read each; a stream of sizes around the limits, both
# ways, keeps every byte and the order.
#   shm_eager_room.sh IPCRUN IT_SHM_EAGER_ROOM
source "$(dirname "$0")/launcher_common.sh"
PROG=${2:?"usage: $0 ipcrun it_shm_eager_room"}
command -v strace >/dev/null || fail "strace is not installed (make test installs it)"
reads() {  # program arguments, then extra ipcrun options...
  local args=$1
  shift
  rm -f "$TMP"/trace*
  # shellcheck disable=SC2086
  run "$IPCRUN" -n 2 -x IPC_SHM_CMA=1 "$@" strace -ff -qq -e trace=process_vm_readv -e signal=none -o "$TMP/trace" \
    "$PROG" $args
  expect_status 0 "$args, every byte checked ($*)"
  cat "$TMP"/trace* | grep -c 'process_vm_readv(' || true
}
none=$(reads "pingpong 32768")
echo "process_vm_readv calls, 200 messages of 32 KiB in turns, through the ring: $none"
every=$(reads "pingpong 32768" -x IPC_SHM_EAGER_ROOM=0 -x IPC_SHM_EAGER_DRAINED=0)
echo "... by rendezvous (IPC_SHM_EAGER_ROOM=0): $every"
(( every >= 200 )) || fail "only $every reads by rendezvous: the count does not see the single copy"
(( none <= 10 )) || fail "$none reads: messages of 32 KiB did not go through a ring with room for them"
drained=$(reads "pingpong 200000")
echo "... 200 messages of 200,000 bytes in turns (IPC_SHM_EAGER_DRAINED): $drained"
(( drained <= 10 )) || fail "$drained reads: messages of 200,000 bytes in turns did not go through the drained ring"
both=$(reads "exchange 200000")
echo "... 100 exchanges of 200,000 bytes both ways at once, receives posted first: $both"
# (one whose peer's message had arrived before its receive was posted may go through the ring)
(( both >= 150 )) || fail "only $both reads: messages both ways at once went through the rings (two copies each)"
run "$IPCRUN" -n 2 -x IPC_SHM_CMA=1 "$PROG" stream
expect_status 0 "a stream of sizes around the limits, both ways"
run "$IPCRUN" -n 2 -x IPC_SHM_CMA=1 -x IPC_SHM_RING=65536 "$PROG" stream
expect_status 0 "the same through rings of 64 KiB"
echo "PASS shm_eager_room"
