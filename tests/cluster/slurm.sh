# A Slurm of one node on loopback (munged, slurmctld, slurmd started by hand, no
# systemd), and the same programs under it: srun (PMIx start-up), ipcrun --engine slurm,
# and ipcrun inside an allocation.
#   slurm.sh ROOT BUILD CASE
# CASE up: installs slurm-wlm and munge (Debian) when missing and starts the daemons;
# down: stops them (by the pids they wrote) and removes their files; run: the jobs.
set -euo pipefail
ROOT=${1:?project root}
BUILD=${2:?build directory}
CASE=${3:?case}
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: a Slurm of our own needs root (daemons, munge's user)"
  exit 0
fi
DIR=$BUILD/slurm
IPCRUN=$BUILD/launcher/ipcrun
EX=$BUILD/examples
IT=$BUILD/tests/integration
export SLURM_CONF=$DIR/slurm.conf
HOST=$(hostname)
fail() {
  echo "FAIL (slurm $CASE): $*" >&2
  for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  exit 1
}

stop() {
  for f in slurmd slurmctld munged; do
    [ -f "$DIR/$f.pid" ] || continue
    pid=$(cat "$DIR/$f.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/$f.pid"
  done
}

case $CASE in
up)
  bash "$ROOT/cluster/install-deps.sh" slurm-wlm munge
  stop
  [ -f "$DIR/munge-dir" ] && rm -rf "$(cat "$DIR/munge-dir")"
  rm -rf "$DIR"
  mkdir -p "$DIR/state" "$DIR/spool"
  # munged runs as its own user, with everything in a directory of its own under /tmp
  # (the build directory may sit where that user cannot go).
  M=$(mktemp -d /tmp/ipc-munge.XXXXXX)
  echo "$M" >"$DIR/munge-dir"
  chown munge: "$M"
  chmod 755 "$M"
  head -c 1024 /dev/urandom >"$M/key"
  chown munge: "$M/key"
  chmod 400 "$M/key"
  runuser -u munge -- munged --socket="$M/sock" --key-file="$M/key" \
    --log-file="$M/log" --pid-file="$M/pid" --seed-file="$M/seed"
  for _ in $(seq 100); do [ -S "$M/sock" ] && break; sleep 0.05; done
  [ -S "$M/sock" ] || fail "munged did not start: $(cat "$M/log" 2>/dev/null)"
  cp "$M/pid" "$DIR/munged.pid"
  # Ports of our own (a Slurm of the machine's, if any, keeps its own).
  base=$((20000 + RANDOM % 20000))
  cat >"$SLURM_CONF" <<EOF
ClusterName=ipctest
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$M/sock
SlurmctldPort=$base
SlurmdPort=$((base + 1))
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
SlurmdParameters=config_overrides
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=8 Sockets=1 CoresPerSocket=8 ThreadsPerCore=1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -c -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  # Up to 90 seconds by the clock: beside the rest of the suite on two loaded cores the
  # daemons have taken more than ten seconds to register the node, and a sinfo that
  # slurmctld does not answer waits for its message timeout (each call is bounded).
  deadline=$((SECONDS + 90))
  until [ "$(timeout 10 sinfo -h -o %T 2>/dev/null)" = idle ]; do
    [ $SECONDS -ge $deadline ] && break
    sleep 0.05
  done
  [ "$(timeout 10 sinfo -h -o %T 2>/dev/null)" = idle ] || fail "the node did not become idle: $(timeout 10 sinfo 2>&1)"
  echo "slurm: up on $HOST"
  ;;

down)
  stop
  [ -f "$DIR/munge-dir" ] && rm -rf "$(cat "$DIR/munge-dir")"
  rm -rf "$DIR"
  echo "slurm: down"
  ;;

run)
  [ -f "$SLURM_CONF" ] || fail "not up"
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  run() {
    set +e
    timeout 120 "$@" >"$TMP/out" 2>"$TMP/err"
    status=$?
    set -e
  }
  expect() { [ "$status" = "$1" ] || fail "$2: exit status $status, expected $1: $(tail -n 5 "$TMP/err")"; }
  # srun with PMIx: the same binary, the same results as under ipcrun.
  run srun -n 4 "$EX/hello"
  expect 0 "srun -n 4 hello"
  [ "$(grep -c "hello from rank .* of 4 on $HOST" "$TMP/out")" = 4 ] || fail "srun -n 4 hello: $(cat "$TMP/out")"
  run srun -n 4 --export=ALL,IPC_REPORT_TRANSPORTS=1 "$EX/hello"
  expect 0 "srun, IPC_REPORT_TRANSPORTS=1"
  grep -q "transport 0 -> 1: shm" "$TMP/err" || fail "srun: no transport report: $(cat "$TMP/err")"
  for p in ring collectives rpc farm sync channel; do
    for t in shm,mpi,tcp mpi; do
      run srun -n 4 --export=ALL,IPC_TRANSPORTS=$t,IPC_RPC_DEFINE_WAIT=1 "$IT/it_$p"
      expect 0 "srun -n 4 it_$p (IPC_TRANSPORTS=$t)"
    done
  done
  "$EX/pi" 200000 >"$TMP/pi1"
  run srun -n 4 "$EX/pi" 200000
  expect 0 "srun -n 4 pi"
  grep -q "on 4 ranks" "$TMP/out" || fail "srun pi: $(cat "$TMP/out")"
  # ipcrun --engine slurm: ipcrun's options, srun's start.
  run "$IPCRUN" --engine slurm -n 3 --report-transports --transports mpi -x IT_MARK=seen "$EX/hello"
  expect 0 "ipcrun --engine slurm"
  [ "$(grep -c "hello from rank" "$TMP/out")" = 3 ] || fail "ipcrun --engine slurm: $(cat "$TMP/out")"
  grep -q "transport 2 -> 0: mpi" "$TMP/err" || fail "ipcrun --engine slurm --transports mpi: $(cat "$TMP/err")"
  run "$IPCRUN" --engine slurm -n 2 -x IT_MARK=seen sh -c 'echo "$IT_MARK"'
  expect 0 "ipcrun --engine slurm -x"
  [ "$(cat "$TMP/out")" = "seen
seen" ] || fail "ipcrun --engine slurm -x: $(cat "$TMP/out")"
  run "$IPCRUN" --engine slurm -n 2 --timeout 1 sleep 60
  expect 124 "ipcrun --engine slurm --timeout 1"
  # Inside an allocation, ipcrun (its own engine) finds its hosts there.
  run salloc -n 4 "$IPCRUN" -n 4 --display-map "$EX/hello"
  expect 0 "salloc -n 4 ipcrun -n 4"
  grep -q "rank 3 on $HOST" "$TMP/out" "$TMP/err" || fail "ipcrun inside an allocation: $(cat "$TMP/out" "$TMP/err")"
  # The batch recipe (cluster/recipes/slurm-job.sh), on this one node.
  run sbatch --wait --nodes=1 --ntasks-per-node=4 --output="$TMP/job.out" "$ROOT/cluster/recipes/slurm-job.sh" "$EX/hello"
  expect 0 "sbatch cluster/recipes/slurm-job.sh"
  [ "$(grep -c "hello from rank .* of 4" "$TMP/job.out")" = 4 ] || fail "the batch recipe: $(cat "$TMP/job.out")"
  # srun without PMIx: refused with what to do, not run as 2 singletons.
  run srun -n 2 --mpi=none "$EX/hello"
  [ "$status" != 0 ] || fail "srun --mpi=none ran"
  grep -q "srun started it without PMIx: run it with srun --mpi=pmix" "$TMP/err" || fail "srun --mpi=none: $(cat "$TMP/err")"
  echo "PASS slurm run"
  ;;
*)
  echo "slurm.sh: unknown case $CASE" >&2
  exit 2
  ;;
esac
