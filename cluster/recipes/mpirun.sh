#!/bin/bash
# An ipc program under Open MPI's mpirun: `cluster/recipes/mpirun.sh HOSTFILE N ./prog ARGS`.
# mpirun places and starts the ranks (its hostfile has the same syntax as ipcrun's) and
# they learn their job through PMIx. Ranks of one node talk through shared memory,
# ranks of different nodes over MPI, unless IPC_TRANSPORTS says otherwise. mpirun hands
# to other nodes only the variables -x names: here every IPC_* variable that is set.
set -euo pipefail
hostfile=$1 n=$2
shift 2
args=()
for v in $(compgen -e | grep '^IPC_' || true); do args+=(-x "$v"); done
[ "$(id -u)" = 0 ] && args+=(--allow-run-as-root)
exec mpirun --hostfile "$hostfile" -n "$n" "${args[@]}" "$@"
# The same through ipcrun's command line (it translates its options to mpirun's):
#   ipcrun --engine mpirun --hostfile "$hostfile" -n "$n" "$@"
