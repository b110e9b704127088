#!/usr/bin/env bash
# Runs the libFuzzer targets of a clang build configured with -DIPC_FUZZ=ON, each for
# a while over a copy of its committed corpus (tests/fuzz/corpus/<target>, never
# written to). Fails when a target crashes, leaks, hangs or runs out of memory, and
# prints the reproducer's path and the command that replays it.
#   tests/fuzz/run_libfuzzer.sh BUILD_DIR [SECONDS per target, default 20] [TARGET ...]
# TARGET: wire handshake tcp_stream hostfile cmdline agent (default: all).
# IPC_FUZZ_OUT=DIR keeps the work (corpora grown, logs, reproducers) there; otherwise
# it goes to a temporary directory, removed when every target passed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: run_libfuzzer.sh BUILD_DIR [SECONDS] [TARGET ...]}"
seconds="${2:-20}"
shift $(( $# >= 2 ? 2 : 1 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire handshake tcp_stream hostfile cmdline agent)

if [ -n "${IPC_FUZZ_OUT:-}" ]; then
  work="$IPC_FUZZ_OUT"
  mkdir -p "$work"
  keep=1
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/ipc-fuzz.XXXXXX")"
  keep=0
fi

# Undefined behaviour is a failure too, not a line in the log.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

failed=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  seeds="$here/corpus/$t"
  if [ ! -x "$bin" ]; then
    echo "run_libfuzzer: $bin is missing: build $build (configured with -DIPC_FUZZ=ON) first" >&2
    exit 2
  fi
  [ -d "$seeds" ] || { echo "run_libfuzzer: no corpus $seeds" >&2; exit 2; }
  rm -rf "${work:?}/$t"
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp "$seeds"/* "$work/$t/corpus/"
  log="$work/$t/log"
  # -close_fd_mask=3: the targets' own output (parse_options' messages) is dropped;
  # libFuzzer's and the sanitizers' reports are kept. The outer timeout is a backstop
  # for a hang that libFuzzer's -timeout (per input) does not catch.
  status=0
  timeout -k 10 $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" \
    >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  found=$(find "$work/$t/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | head -1)
  if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    echo "FAIL fuzz_$t (exit status $status) after ${runs:-?} inputs; the end of $log:"
    tail -n 40 "$log" | sed 's/^/  /'
    if [ -n "$found" ]; then
      echo "  reproducer: $found"
      echo "  replay it:  $bin $found"
    fi
    failed+=("$t")
    keep=1
  else
    echo "ok   fuzz_$t: ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?}, corpus $(ls "$work/$t/corpus" | wc -l) inputs"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "run_libfuzzer: ${#failed[@]} target(s) failed: ${failed[*]} (work kept in $work)"
  exit 1
fi
if [ "$keep" -eq 1 ]; then echo "run_libfuzzer: work kept in $work"; else rm -rf "$work"; fi
