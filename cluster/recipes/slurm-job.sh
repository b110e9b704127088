#!/bin/bash
# A Slurm batch script for an ipc program: `sbatch cluster/recipes/slurm-job.sh ./prog ARGS`.
# srun starts the ranks; each learns its rank, its node and its peers through PMIx
# (--mpi=pmix), so the program is the same binary as under ipcrun or mpirun. Ranks of
# one node talk through shared memory, ranks of different nodes over MPI (Open MPI's
# fastest network: InfiniBand, RoCE, or TCP), unless IPC_TRANSPORTS says otherwise.
#SBATCH --job-name=ipc-job
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --time=00:10:00
#SBATCH --output=ipc-job-%j.out
set -euo pipefail
# export IPC_TRANSPORTS=shm,tcp          # TCP between nodes instead of MPI
# export IPC_TCP_IFACE=ib0                # with TCP: the network the ranks use
# export IPC_REPORT_TRANSPORTS=1          # rank 0 prints the transport of every pair
srun --mpi=pmix "$@"
# The same with ipcrun's options (translated to srun's):
#   ipcrun --engine slurm -n "$SLURM_NTASKS" --report-transports "$@"
# Or ipcrun's own start on the allocation's nodes (through ssh, which the site must allow):
#   ipcrun -n "$SLURM_NTASKS" "$@"
