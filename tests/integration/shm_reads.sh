# Rendezvous payloads matched in one poll are read from the sender's memory together:
# it_shm_reads under strace, 3 windows of 64 messages whose receives were posted first
# and one whose receives come after (64 reads, one per receive), all by rendezvous
# (IPC_SHM_EAGER_ROOM=0, IPC_SHM_EAGER_DRAINED=0: none through the ring). One call per message
# would be 256; together, about 64 + 3.
#   shm_reads.sh IPCRUN IT_SHM_READS
source "$(dirname "$0")/launcher_common.sh"
PROG=${2:?"usage: $0 ipcrun it_shm_reads"}
command -v strace >/dev/null || fail "strace is not installed (make test installs it)"
run "$IPCRUN" -n 2 -x IPC_SHM_CMA=1 -x IPC_SHM_EAGER_ROOM=0 -x IPC_SHM_EAGER_DRAINED=0 -x IPC_PROGRESS_THREAD=0 \
  strace -ff -qq -e trace=process_vm_readv -e signal=none -o "$TMP/trace" "$PROG"
expect_status 0 "windows of rendezvous messages, every byte checked"
calls=$(cat "$TMP"/trace* | grep -c 'process_vm_readv(' || true)
echo "process_vm_readv calls: $calls (256 messages)"
(( calls >= 64 )) || fail "only $calls reads: the single copy was not used ($(head -3 "$TMP/err"))"
(( calls <= 100 )) || fail "$calls reads for 256 messages: windows matched in one poll were not read together"
echo "PASS shm_reads"
