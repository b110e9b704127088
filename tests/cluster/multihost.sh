# Jobs across hosts, for real: a virtual cluster of 3 hosts (network namespaces, each
# with its own sshd), 2 slots each; ipcrun runs on node1 and reaches node2 and node3
# through ssh.
#   multihost.sh ROOT BUILD CASE
# CASE up / down build and remove the cluster (the ctest fixture); the others need it:
#   hello      6 ranks on the right hosts; 6 shm and 24 tcp pairs; --display-map
#   allpairs   every pair exchanges checksummed messages up to 4 MiB
#   programs   every example, collectives, RPC and the farm across hosts
#   options    --iface (name, network, unknown), bad hostfile, --oversubscribe,
#              --map-by node, an unknown and an unreachable host
#   failures   a rank killed on another host; a host cut off mid-job (and under
#              --keep-going); ipcrun killed: nothing left on any host
#   tls        --tls across hosts: programs run, and a capture of node1's link sees a
#              known text in the clear without --tls and never with it
#   tools      semaphores, mutexes and channels across hosts (the home rank's queue):
#              contention, 100,000 items, a holder, a producer and the host killed
#   engines    the same programs under Open MPI's mpirun across hosts (PMIx start-up):
#              remote pairs take the mpi transport, pairs of one host shm; tcp when chosen
set -euo pipefail
[ -n "${MH_TRACE:-}" ] && set -x
ROOT=${1:?project root}
BUILD=${2:?build directory}
CASE=${3:?case}
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the virtual cluster needs root (network namespaces, sshd)"
  exit 0
fi
VC=$ROOT/cluster/virtual-cluster
export IPC_VCLUSTER_DIR=$BUILD/vcluster IPC_VCLUSTER_PREFIX=ipcmh
IPCRUN=$BUILD/launcher/ipcrun
EX=$BUILD/examples
IT=$BUILD/tests/integration
HF=$IPC_VCLUSTER_DIR/hostfile
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ipc-multihost.XXXXXX")
MARK="ipcmh$$x$RANDOM"  # in the command line of every rank a test starts on the hosts
SLEEP="sleep 7$((RANDOM % 90 + 10))"  # what the ranks start: a command line of its own
BG=

cleanup() {
  [ -n "$BG" ] && kill -KILL "$BG" 2>/dev/null || true
  for p in $(pgrep -f -- "$MARK" || true) $(pgrep -fx -- "$SLEEP" || true); do kill -KILL "$p" 2>/dev/null || true; done
  for k in 1 2 3; do ip -n "ipcmh-node$k" link set eth0 up 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL (multihost $CASE): $*" >&2
  [ -s "$TMP/err" ] && { echo "--- stderr:" >&2; head -c 3000 "$TMP/err" >&2; }
  exit 1
}

# on1 CMD...: runs CMD on node1, output in $TMP/out and $TMP/err, status in $status.
on1() {
  set +e
  "$VC" run node1 "$@" >"$TMP/out" 2>"$TMP/err"
  status=$?
  set -e
}
expect() {  # status, what
  [ "$status" = "$1" ] || fail "$2: exit status $status, expected $1"
}
# left: the processes of this test still running on any host (the hosts share the
# machine's process table).
left() { { pgrep -f -- "$MARK"; pgrep -fx -- "$SLEEP"; } | grep -v "^$$\$" || true; }
wait_nothing_left() {  # seconds, what
  local i
  for ((i = 0; i < $1 * 20; i++)); do
    [ -z "$(left)" ] && return 0
    sleep 0.05
  done
  fail "$2: still running after $1 s: $(ps -o pid=,args= -p "$(left | paste -sd, -)" 2>/dev/null)"
}
wait_for_files() {  # dir, count, what
  local i
  for ((i = 0; i < 400; i++)); do
    [ "$(ls "$1" 2>/dev/null | wc -l)" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "$3: only $(ls "$1" | wc -l) of $2 ranks started within 20 s"
}

case $CASE in
up)
  "$VC" up 3 | tail -n 1
  ;;
down)
  "$VC" down
  ;;

hello)
  on1 "$IPCRUN" --hostfile "$HF" -n 6 --display-map --report-transports "$EX/hello"
  expect 0 "hello on 3 hosts"
  for r in 0 1 2 3 4 5; do
    h=node$((r / 2 + 1))
    grep -qx "hello from rank $r of 6 on $h" "$TMP/out" || fail "rank $r did not say hello from $h: $(cat "$TMP/out")"
    grep -qx "\[ipcrun\] rank $r on $h (local rank $((r % 2)))" "$TMP/err" || fail "--display-map: rank $r"
  done
  shm=$(grep -cE 'transport [0-5] -> [0-5]: shm' "$TMP/err" || true)
  tcp=$(grep -cE 'transport [0-5] -> [0-5]: tcp' "$TMP/err" || true)
  [ "$shm" = 6 ] && [ "$tcp" = 24 ] || fail "want 6 shm and 24 tcp pairs, saw $shm shm, $tcp tcp"
  for r in 0 2 4; do grep -qx "\[ipcrun\] transport $r -> $((r + 1)): shm" "$TMP/err" || fail "ranks $r, $((r + 1)) not on shm"; done
  # Each host's ranks listen on its own address, and know their host as their node.
  on1 "$IPCRUN" --hostfile "$HF" -n 6 sh -c 'echo "$IPC_RANK $IPC_NODE $IPC_TCP_ADDR $IPC_LOCAL_RANK $IPC_LOCAL_SIZE $(hostname)"'
  expect 0 "environment"
  got=$(sort "$TMP/out")
  want="0 node1 10.77.0.1 0 2 node1
1 node1 10.77.0.1 1 2 node1
2 node2 10.77.0.2 0 2 node2
3 node2 10.77.0.2 1 2 node2
4 node3 10.77.0.3 0 2 node3
5 node3 10.77.0.3 1 2 node3"
  [ "$got" = "$want" ] || fail "environment: $got"
  # Standard input reaches rank 0, here and on another host.
  on1 sh -c "echo to-rank-0 | '$IPCRUN' --hostfile '$HF' -n 6 sh -c 'read l && echo \$IPC_RANK:\$l || echo \$IPC_RANK:eof'"
  expect 0 "stdin"
  [ "$(sort "$TMP/out" | paste -sd' ')" = "0:to-rank-0 1:eof 2:eof 3:eof 4:eof 5:eof" ] || fail "stdin: $(cat "$TMP/out")"
  on1 sh -c "echo to-rank-0 | '$IPCRUN' --host node2,node1 -n 2 sh -c 'read l && echo \$IPC_RANK:\$IPC_NODE:\$l || echo \$IPC_RANK:eof'"
  expect 0 "stdin to another host"
  [ "$(sort "$TMP/out" | paste -sd' ')" = "0:node2:to-rank-0 1:eof" ] || fail "stdin to node2: $(cat "$TMP/out")"
  # Much of it, intact; and a rank 0 that reads none of an endless stdin still ends.
  head -c 20000000 /dev/urandom >"$TMP/data"
  on1 sh -c "'$IPCRUN' --host node3 -n 1 md5sum <'$TMP/data'"
  expect 0 "20 MB of stdin to node3"
  [ "$(cut -d' ' -f1 "$TMP/out")" = "$(md5sum <"$TMP/data" | cut -d' ' -f1)" ] || fail "stdin to node3 arrived changed"
  on1 sh -c "yes | '$IPCRUN' --host node2,node1 -n 2 sleep 1"
  expect 0 "endless stdin, rank 0 on node2 not reading it"
  ;;

allpairs)
  on1 "$IPCRUN" --hostfile "$HF" -n 6 "$IT/it_allpairs" 4194304
  expect 0 "all pairs on 3 hosts"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 --map-by node "$IT/it_allpairs" 65536
  expect 0 "all pairs on 3 hosts, --map-by node"
  ;;

programs)
  on1 "$IPCRUN" --hostfile "$HF" -n 6 "$EX/pi" 2000000
  expect 0 "pi"
  grep -q "^pi ~= 3.1.* on 6 ranks" "$TMP/out" || fail "pi printed nothing: $(cat "$TMP/out")"
  on1 "$IPCRUN" --host node1,node3 -n 2 "$EX/pingpong"
  expect 0 "pingpong across hosts"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 "$EX/rpc_sweep" 300
  expect 0 "rpc_sweep"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 "$EX/farm_sweep" 200
  expect 0 "farm_sweep"
  on1 "$IPCRUN" -n 1 "$EX/heat" 64
  expect 0 "heat on 1 rank"
  cp "$TMP/out" "$TMP/heat1"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 "$EX/heat" 64
  expect 0 "heat on 3 hosts"
  cmp -s "$TMP/out" "$TMP/heat1" || fail "heat on 3 hosts printed '$(cat "$TMP/out")', on 1 rank '$(cat "$TMP/heat1")'"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 -x IPC_RPC_DEFINE_WAIT=1 "$IT/it_rpc_api"
  expect 0 "it_rpc_api on 3 hosts"
  for p in store collectives coll_more rpc farm ring order fanin comms window; do
    on1 "$IPCRUN" --hostfile "$HF" -n 6 "$IT/it_$p"
    expect 0 "it_$p on 3 hosts"
  done
  # The node-aware collectives (on by default across hosts), forced off and forced
  # on where each host has one rank; the results are the same.
  for hier in auto 0; do
    on1 "$IPCRUN" --hostfile "$HF" -n 6 -x IPC_COLL_HIER=$hier "$IT/it_coll_matrix"
    expect 0 "it_coll_matrix on 3 hosts, IPC_COLL_HIER=$hier"
  done
  on1 "$IPCRUN" --host node1,node2,node3 -n 3 -x IPC_COLL_HIER=1 "$IT/it_coll_matrix"
  expect 0 "it_coll_matrix on 3 hosts of one rank each, IPC_COLL_HIER=1"
  on1 "$IPCRUN" --hostfile "$HF" -n 5 --map-by node "$IT/it_coll_matrix"
  expect 0 "it_coll_matrix, 5 ranks dealt to 3 hosts"
  on1 "$IPCRUN" --hostfile "$HF" -n 5 --map-by node "$IT/it_coll_mix" 300 5
  expect 0 "it_coll_mix, 5 ranks dealt to 3 hosts"
  ;;

tools)
  on1 "$IPCRUN" --hostfile "$HF" -n 6 --report-transports "$IT/it_sync"
  expect 0 "it_sync on 3 hosts"
  grep -q "sync: 6 ranks ok" "$TMP/out" || fail "it_sync on 3 hosts: $(cat "$TMP/out")"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 "$IT/it_channel" all 20000
  expect 0 "it_channel (3 x 20,000 items) on 3 hosts"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 --map-by node "$EX/pipeline"
  expect 0 "pipeline on 3 hosts"
  grep -q "each exactly once, in order per producer" "$TMP/out" || fail "pipeline on 3 hosts: $(cat "$TMP/out")"
  # A mutex holder on node2 is killed (SIGKILL); the waiter on node1 gets the
  # mutex and is told. A producer on node3 dies: nothing it pushed is lost. The host
  # (rank 0, node1) dies: a consumer on node2 gets PeerLost.
  on1 "$IPCRUN" --host node1,node2,node3 -n 3 --keep-going "$IT/it_sync" owner_lost
  expect 137 "a mutex holder killed on node2"
  grep -q "owner_lost: rank 0 got the dead holder's mutex and was told" "$TMP/out" ||
    fail "owner_lost across hosts: $(cat "$TMP/out" "$TMP/err")"
  on1 "$IPCRUN" --host node1,node3 -n 2 --keep-going "$IT/it_channel" producer_dies
  expect 3 "a producer dying on node3"
  grep -q "producer_dies: nothing lost" "$TMP/out" || fail "producer_dies across hosts: $(cat "$TMP/out" "$TMP/err")"
  on1 "$IPCRUN" --host node1,node2 -n 2 --keep-going "$IT/it_channel" host_dies
  expect 3 "the channel's host dying on node1"
  grep -q "host_dies: .*channel: its host, rank 0 on node1.* is gone" "$TMP/out" ||
    fail "host_dies across hosts: $(cat "$TMP/out" "$TMP/err")"
  ;;

engines)
  command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 0; }
  "$IPCRUN" --list-params | grep -q "^IPC_MPI_EAGER " || { echo "SKIP: built without the mpi transport"; exit 0; }
  # mpirun on node1 reaches node2 through the cluster's ssh; Open MPI's own TCP on eth0.
  mpirun_on() {
    on1 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      mpirun --mca plm_rsh_agent "ssh -F $("$VC" ssh-config)" --mca btl vader,tcp,self \
      --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0 --bind-to none "$@"
  }
  mpirun_on --host node1:2,node2:2 -n 4 -x IPC_REPORT_TRANSPORTS=1 "$EX/hello"
  expect 0 "hello under mpirun on 2 hosts"
  [ "$(grep -c 'hello from rank' "$TMP/out")" = 4 ] || fail "hello under mpirun: $(cat "$TMP/out")"
  for pair in "0 -> 1: shm" "0 -> 2: mpi" "1 -> 3: mpi" "2 -> 3: shm" "3 -> 0: mpi"; do
    grep -q "transport $pair" "$TMP/err" || fail "under mpirun, expected 'transport $pair': $(grep transport "$TMP/err" | head -16)"
  done
  for p in ring allpairs collectives coll_matrix rpc farm sync channel; do
    mpirun_on --host node1:2,node2:2 -n 4 -x IPC_RPC_DEFINE_WAIT=1 "$IT/it_$p"
    expect 0 "it_$p under mpirun on 2 hosts"
  done
  # TCP when chosen: each rank listens on its host's address (no ipcrun to set it).
  mpirun_on --host node1:2,node2:2 -n 4 -x IPC_TRANSPORTS=shm,tcp -x IPC_REPORT_TRANSPORTS=1 "$IT/it_allpairs"
  expect 0 "it_allpairs under mpirun, IPC_TRANSPORTS=shm,tcp"
  grep -q "transport 0 -> 2: tcp" "$TMP/err" || fail "IPC_TRANSPORTS=shm,tcp: $(grep transport "$TMP/err" | head -8)"
  ;;

tls)
  # sniff WHAT IPCRUN-ARGS...: runs a job that sends a known text around a ring of 6
  # ranks on 3 hosts while node1's port of the bridge is captured (the bridge itself
  # sees only what is sent to it); $matching: frames with the text.
  sniff() {
    local what=$1
    shift
    rm -f "$TMP/stop" "$TMP/sniff"
    ip netns exec "$IPC_VCLUSTER_PREFIX-bridge" python3 "$ROOT/tests/cluster/sniff.py" v1 "$TEXT" "$TMP/stop" 120 \
      >"$TMP/sniff" 2>&1 &
    local sniffer=$!
    for _ in $(seq 500); do grep -q listening "$TMP/sniff" && break; sleep 0.01; done
    on1 "$IPCRUN" "$@" --hostfile "$HF" -n 6 "$IT/it_marker" "$TEXT" 20
    touch "$TMP/stop"
    wait "$sniffer" || true
    expect 0 "$what"
    matching=$(sed -n 's/.*matching=\([0-9]*\).*/\1/p' "$TMP/sniff")
    [ -n "$matching" ] || fail "$what: the capture said $(cat "$TMP/sniff")"
  }
  TEXT="ipc-plaintext-$RANDOM$RANDOM-"
  sniff "without --tls"
  [ "$matching" -gt 0 ] || fail "without --tls the capture saw no frame with the text: it does not watch the job"
  sniff "with --tls" --tls
  [ "$matching" = 0 ] || fail "with --tls $matching frames carried the text in the clear"
  for p in allpairs collectives rpc; do
    on1 "$IPCRUN" --tls --hostfile "$HF" -n 6 "$IT/it_$p"
    expect 0 "it_$p over TLS on 3 hosts"
  done
  # A certificate of the user's (here: one made with openssl), given as files.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
    -days 1 -subj "/CN=ipc multihost" -addext "basicConstraints=critical,CA:TRUE" >/dev/null 2>&1
  on1 "$IPCRUN" --tls --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" --hostfile "$HF" -n 6 "$IT/it_ring"
  expect 0 "--tls-cert and --tls-key across hosts"
  ;;

options)
  for iface in eth0 10.77.0.0/24; do
    on1 "$IPCRUN" --hostfile "$HF" -n 6 --iface "$iface" "$IT/it_ring"
    expect 0 "--iface $iface"
  done
  # Another launch agent than ssh (no SSH_CONNECTION on the hosts): each agent finds
  # its host's address itself.
  printf '#!/bin/sh\nhost=$1; shift\nexec ssh -F %s "$host" "env -u SSH_CONNECTION $*"\n' "$("$VC" ssh-config)" >"$TMP/agent"
  chmod +x "$TMP/agent"
  on1 "$IPCRUN" --launch-agent "$TMP/agent" --hostfile "$HF" -n 6 --report-transports "$IT/it_ring"
  expect 0 "a launch agent other than ssh"
  [ "$(grep -cE 'transport [0-5] -> [0-5]: tcp' "$TMP/err")" = 24 ] || fail "other launch agent: $(head -5 "$TMP/err")"
  on1 "$IPCRUN" --hostfile "$HF" -n 6 --iface eth7 true
  expect 2 "--iface eth7"
  grep -q "eth7" "$TMP/err" || fail "--iface eth7: $(cat "$TMP/err")"
  printf 'node1 slots=2\nnode2 slots=two\n' >"$TMP/bad"
  on1 "$IPCRUN" --hostfile "$TMP/bad" -n 2 true
  expect 2 "bad hostfile"
  grep -q "^ipcrun: $TMP/bad:2: " "$TMP/err" || fail "bad hostfile: $(cat "$TMP/err")"
  on1 "$IPCRUN" --hostfile "$HF" -n 8 true
  expect 2 "8 ranks on 6 slots"
  grep -q "oversubscribe" "$TMP/err" || fail "8 ranks on 6 slots: $(cat "$TMP/err")"
  on1 "$IPCRUN" --hostfile "$HF" -n 8 --oversubscribe sh -c 'echo $IPC_RANK $IPC_NODE'
  expect 0 "--oversubscribe"
  [ "$(sort "$TMP/out" | awk '{print $2}' | sort | uniq -c | awk '{print $1}' | paste -sd' ')" = "3 3 2" ] ||
    fail "--oversubscribe: $(cat "$TMP/out")"
  # A host ssh cannot resolve: one line naming it, at once; nothing left behind.
  printf 'node1 slots=2\nnode9 slots=2\n' >"$TMP/hf9"
  on1 "$IPCRUN" --hostfile "$TMP/hf9" -n 4 sh -c "sleep 30 # $MARK"
  expect 255 "unknown host"
  [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "^ipcrun: cannot start the agent on node9: " "$TMP/err" ||
    fail "unknown host: $(cat "$TMP/err")"
  wait_nothing_left 5 "unknown host"
  # An address nobody answers at: bounded by the launch timeout.
  t0=$(date +%s%N)
  on1 "$IPCRUN" --host node1,10.77.0.99 -n 2 --launch-timeout 3 sh -c "sleep 30 # $MARK"
  t1=$(date +%s%N)
  expect 255 "unreachable host"
  [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "^ipcrun: cannot start the agent on 10.77.0.99: " "$TMP/err" ||
    fail "unreachable host: $(cat "$TMP/err")"
  (((t1 - t0) / 1000000 < 20000)) || fail "unreachable host: took $(((t1 - t0) / 1000000)) ms"
  wait_nothing_left 5 "unreachable host"
  ;;

failures)
  # SIGUSR1 and SIGUSR2 to ipcrun reach every rank on every host (they handle them and
  # go on); a rank that does not handle one dies of it.
  mkdir -p "$TMP/u1"
  "$VC" run node1 "$IPCRUN" --hostfile "$HF" -n 6 sh -c "trap 'echo usr1 >>$TMP/u1/got.\$IPC_RANK' USR1
trap 'echo usr2 >>$TMP/u1/got.\$IPC_RANK' USR2
echo \$\$ >$TMP/u1/\$IPC_RANK; until [ -e $TMP/u1/end ]; do sleep 0.01; done # $MARK" >"$TMP/out" 2>"$TMP/err" &
  BG=$!
  wait_for_files "$TMP/u1" 6 "SIGUSR1 across hosts"
  kill -USR1 "$BG"
  for r in 0 1 2 3 4 5; do
    for ((i = 0; i < 1000; i++)); do grep -q usr1 "$TMP/u1/got.$r" 2>/dev/null && break; sleep 0.01; done
    grep -q usr1 "$TMP/u1/got.$r" 2>/dev/null || fail "SIGUSR1 did not reach rank $r"
  done
  kill -USR2 "$BG"
  for r in 0 1 2 3 4 5; do
    for ((i = 0; i < 1000; i++)); do grep -q usr2 "$TMP/u1/got.$r" 2>/dev/null && break; sleep 0.01; done
    grep -q usr2 "$TMP/u1/got.$r" 2>/dev/null || fail "SIGUSR2 did not reach rank $r"
  done
  touch "$TMP/u1/end"
  set +e; wait "$BG"; status=$?; set -e; BG=
  expect 0 "SIGUSR1 and SIGUSR2 across hosts"

  # A rank killed on another host: the job stops, naming the rank and its host.
  mkdir -p "$TMP/p1"
  "$VC" run node1 "$IPCRUN" --hostfile "$HF" -n 6 sh -c "echo \$\$ >$TMP/p1/\$IPC_RANK; sleep 30 # $MARK" \
    >"$TMP/out" 2>"$TMP/err" &
  BG=$!
  wait_for_files "$TMP/p1" 6 "rank killed"
  kill -KILL "$(cat "$TMP/p1/3")"
  set +e; wait "$BG"; status=$?; set -e; BG=
  expect 137 "rank 3 killed on node2"
  grep -q "^ipcrun: rank 3 on node2 (pid $(cat "$TMP/p1/3")) was killed by signal 9 (SIGKILL); stopping 5 ranks" "$TMP/err" ||
    fail "rank killed: $(cat "$TMP/err")"
  wait_nothing_left 5 "rank killed"

  # A host cut off mid-job: its link goes down. ipcrun names it within the link
  # timeout (and a little), the others stop; the host's agent, hearing nothing either,
  # kills its ranks.
  mkdir -p "$TMP/p2"
  t0=$(date +%s)
  "$VC" run node1 env IPC_LINK_TIMEOUT=3 "$IPCRUN" --hostfile "$HF" -n 6 \
    sh -c "echo \$\$ >$TMP/p2/\$IPC_RANK; $SLEEP & wait # $MARK" >"$TMP/out" 2>"$TMP/err" &
  BG=$!
  wait_for_files "$TMP/p2" 6 "host cut off"
  ip -n ipcmh-node3 link set eth0 down
  set +e; wait "$BG"; status=$?; set -e; BG=
  t1=$(date +%s)
  expect 255 "node3 cut off"
  grep -q "^ipcrun: lost host node3 (its agent: no word for 3 s); its 2 ranks are gone; stopping 4 ranks" "$TMP/err" ||
    fail "host cut off: $(cat "$TMP/err")"
  ((t1 - t0 < 30)) || fail "host cut off: took $((t1 - t0)) s"
  wait_nothing_left 10 "host cut off"
  ip -n ipcmh-node3 link set eth0 up

  # The same under --keep-going: only the lost host's ranks are gone.
  mkdir -p "$TMP/p3"
  "$VC" run node1 env IPC_LINK_TIMEOUT=3 "$IPCRUN" --keep-going --hostfile "$HF" -n 6 \
    sh -c "echo \$\$ >$TMP/p3/\$IPC_RANK; [ \$IPC_NODE = node3 ] && exec $SLEEP; sleep 1; until [ -e $TMP/p3/go ]; do sleep 0.1; done; echo survived \$IPC_RANK # $MARK" \
    >"$TMP/out" 2>"$TMP/err" &
  BG=$!
  wait_for_files "$TMP/p3" 6 "keep-going"
  ip -n ipcmh-node3 link set eth0 down
  for ((i = 0; i < 400; i++)); do grep -q "lost host node3" "$TMP/err" && break; sleep 0.05; done
  touch "$TMP/p3/go"
  set +e; wait "$BG"; status=$?; set -e; BG=
  ip -n ipcmh-node3 link set eth0 up
  expect 255 "node3 cut off, --keep-going"
  grep -qx "ipcrun: lost host node3 (its agent: no word for 3 s); its 2 ranks are gone" "$TMP/err" ||
    fail "keep-going: $(cat "$TMP/err")"
  [ "$(sort "$TMP/out" | paste -sd' ')" = "survived 0 survived 1 survived 2 survived 3" ] ||
    fail "keep-going: the others did not finish: $(cat "$TMP/out")"
  wait_nothing_left 10 "keep-going"

  # ipcrun killed outright: within seconds nothing of the job runs on any host, the
  # ranks' own children included, and no shared memory is left.
  mkdir -p "$TMP/p4"
  "$VC" run node1 "$IPCRUN" --hostfile "$HF" -n 6 \
    sh -c "echo \$\$ >$TMP/p4/\$IPC_RANK; $SLEEP & wait # $MARK" >/dev/null 2>&1 &
  BG=$!
  wait_for_files "$TMP/p4" 6 "ipcrun killed"
  ip=$(pgrep -f -- "--hostfile $HF -n 6 sh -c echo.*$MARK" | head -n 1)
  [ -n "$ip" ] || fail "cannot find ipcrun"
  kill -KILL "$ip"
  wait "$BG" 2>/dev/null || true
  BG=
  wait_nothing_left 5 "ipcrun killed"
  # A job of the runtime's across the hosts (which share this machine's /dev/shm)
  # leaves none of its segments (other tests' jobs may have theirs meanwhile).
  "$VC" run node1 "$IPCRUN" --hostfile "$HF" -n 6 sh -c "echo \$IPC_JOB >$TMP/job; exec '$IT/it_ring'" >/dev/null 2>&1 ||
    fail "it_ring on 3 hosts failed"
  job=$(cat "$TMP/job")
  [ -n "$job" ] || fail "no job id"
  ls /dev/shm | grep -q "^ipc-$job" && fail "segments left in /dev/shm: $(ls /dev/shm | grep "^ipc-$job")"
  ;;

*)
  fail "unknown case"
  ;;
esac
echo "PASS multihost $CASE"
