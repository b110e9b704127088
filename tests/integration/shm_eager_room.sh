# Messages above the eager limit go through the ring when it has room for them
# (IPC_SHM_EAGER_ROOM): a ping-pong of 32 KiB then reads nothing from the peer's memory
# (strace counts process_vm_readv: with IPC_SHM_EAGER_ROOM=0 each message is one read);
# a stream of sizes around both limits, both ways, keeps every byte and the order.
#   shm_eager_room.sh IPCRUN IT_SHM_EAGER_ROOM
source "$(dirname "$0")/launcher_common.sh"
PROG=${2:?"usage: $0 ipcrun it_shm_eager_room"}
command -v strace >/dev/null || fail "strace is not installed (make test installs it)"
reads() {  # extra ipcrun options...
  rm -f "$TMP"/trace*
  run "$IPCRUN" -n 2 -x IPC_SHM_CMA=1 "$@" strace -ff -qq -e trace=process_vm_readv -e signal=none -o "$TMP/trace" \
    "$PROG" pingpong
  expect_status 0 "ping-pong of 32 KiB, every byte checked ($*)"
  cat "$TMP"/trace* | grep -c 'process_vm_readv(' || true
}
none=$(reads)
echo "process_vm_readv calls, 200 messages of 32 KiB through the ring: $none"
every=$(reads -x IPC_SHM_EAGER_ROOM=0)
echo "... by rendezvous (IPC_SHM_EAGER_ROOM=0): $every"
(( every >= 200 )) || fail "only $every reads by rendezvous: the count does not see the single copy"
(( none <= 10 )) || fail "$none reads: messages of 32 KiB did not go through a ring with room for them"
run "$IPCRUN" -n 2 -x IPC_SHM_CMA=1 "$PROG" stream
expect_status 0 "a stream of sizes around the limits, both ways"
run "$IPCRUN" -n 2 -x IPC_SHM_CMA=1 -x IPC_SHM_RING=65536 "$PROG" stream
expect_status 0 "the same through rings of 64 KiB"
echo "PASS shm_eager_room"
