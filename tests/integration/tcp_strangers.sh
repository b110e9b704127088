# A rank's TCP port under silent connections from a stranger (a port scan, a neighbour):
# each must authenticate within IPC_TCP_HANDSHAKE_TIMEOUT or is dropped; beyond
# IPC_TCP_MAX_PENDING the oldest gives way; out of descriptors, the rank stops
# accepting for a while instead of spinning on accept(); nothing large is allocated
# for a connection before it has authenticated; and the rejections are summed up
# instead of a line each. Rank 1 waits in a receive meanwhile, and must neither spin
# (it_idle_cpu fails above 5% of a core) nor miss its message.
#   tcp_strangers.sh IPCRUN IDLE_CPU
source "$(dirname "$0")/launcher_common.sh"
IDLE=${2:?it_idle_cpu}

# port_of PID: the TCP port the process listens on (waits for it, at most 10 s).
port_of() {
  local i p
  for ((i = 0; i < 500; i++)); do
    p=$(ss -ltnpH 2>/dev/null | grep "pid=$1," | awk '{print $4}' | sed 's/.*://' | head -n 1)
    [[ -n $p ]] && { echo "$p"; return 0; }
    sleep 0.02
  done
  fail "rank (pid $1) is not listening"
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# strangers PORT N SECONDS: opens N silent connections, holds them SECONDS, prints
# how many the rank closed meanwhile.
strangers() {
  python3 - "$@" <<'PY'
import socket, sys, time
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        s.close()
time.sleep(hold)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(closed)
PY
}

if ! command -v ss >/dev/null || ! command -v python3 >/dev/null; then
  echo "SKIP: needs ss and python3"
  exit 0
fi

# 400 strangers, a 1 s deadline: the cap drops all but 64 at once, the deadline the
# rest; one line, then a summary.
start_bg sh -c "ulimit -Sn 200; exec '$IPCRUN' -n 2 --transports tcp -x IPC_TCP_HANDSHAKE_TIMEOUT=1 \
  sh -c 'echo \$\$ >\"$PIDS/\$IPC_RANK\"; exec \"$IDLE\" 8 5'"
wait_for_pids 2
port=$(port_of "$(cat "$PIDS/1")")
closed=$(strangers "$port" 400 4)
wait_bg
expect_status 0 "400 silent connections"
((closed >= 390)) || fail "400 silent connections: the rank closed only $closed"
lines=$(grep -c "rejected" "$TMP/err" || true)
((lines >= 1 && lines <= 4)) || fail "400 silent connections: $lines lines about them"
grep -q "rejected .* more TCP connections in the last 5 s (.* from 127.0.0.1)" "$TMP/err" || fail "no summary line"
rm -f "$PIDS"/*

# No cap, a low descriptor limit: accept() fails for lack of descriptors. The rank
# must not spin on it, and strangers cost it little memory.
start_bg sh -c "ulimit -Sn 200; exec '$IPCRUN' -n 2 --transports tcp -x IPC_TCP_MAX_PENDING=100000 \
  -x IPC_TCP_HANDSHAKE_TIMEOUT=3 sh -c 'echo \$\$ >\"$PIDS/\$IPC_RANK\"; exec \"$IDLE\" 8 5'"
wait_for_pids 2
pid=$(cat "$PIDS/1")
port=$(port_of "$pid")
before=$(rss_kb "$pid")
python3 - "$port" <<'PY' &
import socket, sys, time
socks = []
for _ in range(400):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
        socks.append(s)
    except OSError:
        s.close()
time.sleep(2.5)
PY
strangers_pid=$!
sleep 2  # the connections are held now
during=$(rss_kb "$pid")
wait "$strangers_pid" || true
wait_bg
expect_status 0 "out of descriptors"
((during - before < 8192)) || fail "out of descriptors: the rank grew by $((during - before)) KiB for strangers"
echo "PASS $TEST_NAME"
