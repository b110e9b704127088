# The virtual cluster itself (cluster/virtual-cluster): hosts with their own names and
# addresses, reached through real ssh; rebuilt after a crash; removed without a trace.
#   virtual_cluster.sh ROOT
set -euo pipefail
ROOT=${1:?project root}
VC=$ROOT/cluster/virtual-cluster
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the virtual cluster needs root (network namespaces, sshd)"
  exit 0
fi
TMP=$(mktemp -d)
export IPC_VCLUSTER_DIR=$TMP/vc IPC_VCLUSTER_PREFIX=ipcvt
cleanup() {
  "$VC" down >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

hostfile=$("$VC" up 3 | tail -n 1)
[[ $(cat "$hostfile") == $'node1 slots=2\nnode2 slots=2\nnode3 slots=2' ]] || fail "hostfile: $(cat "$hostfile")"
for k in 1 2 3; do
  [[ $("$VC" run node$k hostname) == node$k ]] || fail "node$k does not call itself node$k"
done
cfg=$("$VC" ssh-config)
# Through real ssh, from one host to another; each host has its own address.
[[ $("$VC" run node1 ssh -F "$cfg" node3 hostname) == node3 ]] || fail "ssh from node1 to node3"
addr=$("$VC" run node2 ssh -F "$cfg" node1 "ip -4 -o addr show eth0" | awk '{print $4}')
[[ $addr == 10.77.0.1/24 ]] || fail "node1's address is '$addr'"
# The machine's own namespace is untouched.
ip -4 -o addr | grep -q "10\.77\.0\." && fail "an address of the cluster leaked into the machine's namespace"

# Idempotent, and rebuilt after a crash (an sshd gone).
[[ $("$VC" up 3 | tail -n 1) == "$hostfile" ]] || fail "a second up changed the hostfile"
pid=$(cat "$IPC_VCLUSTER_DIR/node2/sshd.pid")
kill "$pid"
for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
"$VC" up 3 >/dev/null
[[ $("$VC" run node1 ssh -F "$cfg" node2 hostname) == node2 ]] || fail "node2 after its sshd died"

# A bad host name is one clear line.
out=$("$VC" run node9 true 2>&1) && fail "run on node9 succeeded"
[[ $out == *"no host 'node9'"* ]] || fail "run node9: $out"

"$VC" down
ip netns list | grep -q "^ipcvt-" && fail "namespaces left after down: $(ip netns list | grep ipcvt)"
[ ! -e "$IPC_VCLUSTER_DIR" ] || fail "state left after down"
echo "PASS virtual cluster"
