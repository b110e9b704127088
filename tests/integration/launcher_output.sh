# Output relay: stdout and stderr apart, whole lines only (no mixing of ranks
# within a line), --tag-output prefixes, partial last lines, stdin to rank 0.
source "$(dirname "$0")/launcher_common.sh"

# stdout and stderr stay apart.
run "$IPCRUN" -n 3 sh -c 'echo "out $IPC_RANK"; echo "err $IPC_RANK" >&2'
expect_status 0 "stdout/stderr"
expect_sorted "$TMP/out" "out 0
out 1
out 2" "stdout"
expect_sorted "$TMP/err" "err 0
err 1
err 2" "stderr"

# --tag-output on both streams.
run "$IPCRUN" -n 2 --tag-output sh -c 'echo "out $IPC_RANK"; echo "err $IPC_RANK" >&2'
expect_sorted "$TMP/out" "[0] out 0
[1] out 1" "tagged stdout"
expect_sorted "$TMP/err" "[0] err 0
[1] err 1" "tagged stderr"

# Many long lines from 4 ranks at once; awk writes them in 4 KiB blocks that cut
# lines anywhere. Every line must arrive whole, under the right tag, in order.
lines=3000
writer='awk -v r="$IPC_RANK" -v n='$lines' "BEGIN { pad = sprintf(\"%0300d\", 0); for (i = 0; i < n; i++) print r, i, pad }"'
check_lines() {  # file, tagged (1/0), what
  awk -v tagged="$2" -v n=$lines -v ranks=4 '
    {
      line = $0
      if (tagged) {
        if (!match(line, /^\[[0-9]+\] /)) { print "untagged line " NR; bad = 1; exit }
        tag = substr(line, 2, RLENGTH - 3); line = substr(line, RLENGTH + 1)
      }
      split(line, f, " ")
      if (f[3] != sprintf("%0300d", 0) || NF != (tagged ? 4 : 3)) { print "broken line " NR ": " substr($0, 1, 80); bad = 1; exit }
      if (tagged && tag != f[1]) { print "line of rank " f[1] " tagged " tag; bad = 1; exit }
      if (f[2] != next_i[f[1]] + 0) { print "rank " f[1] " line " f[2] " out of order"; bad = 1; exit }
      next_i[f[1]]++
    }
    END {
      if (bad) exit 1
      for (r = 0; r < ranks; r++) if (next_i[r] != n) { print "rank " r ": " next_i[r] " lines"; exit 1 }
    }' "$1" >"$TMP/check" || fail "$3: $(cat "$TMP/check")"
}
run "$IPCRUN" -n 4 --tag-output sh -c "$writer; $writer >&2"
expect_status 0 "concurrent lines"
check_lines "$TMP/out" 1 "tagged stdout, 4 ranks"
check_lines "$TMP/err" 1 "tagged stderr, 4 ranks"
run "$IPCRUN" -n 4 sh -c "$writer"
check_lines "$TMP/out" 0 "untagged stdout, 4 ranks"

# A partial last line is flushed when the pipe closes, ended with a newline, so that
# another rank's next line is not glued to it.
run "$IPCRUN" sh -c 'printf "whole\npartial"'
printf 'whole\npartial\n' | cmp -s - "$TMP/out" || fail "partial last line: $(od -c "$TMP/out" | head)"
run "$IPCRUN" --tag-output sh -c 'printf "whole\npartial"'
printf '[0] whole\n[0] partial\n' | cmp -s - "$TMP/out" || fail "tagged partial line: $(od -c "$TMP/out" | head)"
run "$IPCRUN" -n 4 sh -c 'printf "unended $IPC_RANK"'
expect_sorted "$TMP/out" "unended 0
unended 1
unended 2
unended 3" "unterminated last lines of 4 ranks"

# Lines of 3 MiB from 3 ranks at once, written in pieces, arrive whole: nothing of
# another rank's inside them.
run "$IPCRUN" -n 3 sh -c 'for i in 1 2; do head -c 3145728 /dev/zero | tr "\0" "$IPC_RANK"; echo; done'
expect_status 0 "long lines"
[[ $(wc -l <"$TMP/out") == 6 ]] || fail "long lines: $(wc -l <"$TMP/out") lines"
awk '{ if (length($0) != 3145728 || $0 !~ /^(0+|1+|2+)$/) { print "line " NR " is mixed or cut"; exit 1 } }' "$TMP/out" >"$TMP/check" ||
  fail "long lines: $(cat "$TMP/check")"
# Beyond 16 MiB a line goes on as lines of 16 MiB (each ended), never glued to others.
run "$IPCRUN" sh -c 'head -c 17825792 /dev/zero | tr "\0" x; echo'
[[ $(wc -l <"$TMP/out") == 2 && $(head -n 1 "$TMP/out" | wc -c) == 16777217 ]] || fail "a 17 MiB line: $(wc -l <"$TMP/out") lines"

# Rank 0 reads ipcrun's stdin; the others read /dev/null.
run "$IPCRUN" -n 3 sh -c 'read -r x || x="<eof>"; echo "$IPC_RANK $x"' <<<"hello there"
expect_sorted "$TMP/out" "0 hello there
1 <eof>
2 <eof>" "stdin"

# A reader that goes away (EPIPE) ends the job as it would a shell pipeline: the
# ranks get SIGPIPE, ipcrun's status is 141, and it says nothing.
set +e
"$IPCRUN" -n 2 yes 2>"$TMP/err" | head -n 1 >"$TMP/out"
status=${PIPESTATUS[0]}
set -e
expect_status 141 "stdout closed early"
expect_file "$TMP/out" "y" "stdout closed early"
[[ ! -s $TMP/err ]] || fail "stdout closed early: stderr '$(cat "$TMP/err")'"
# A rank that ignores SIGPIPE is killed after the grace.
set +e
"$IPCRUN" -n 1 -x IPC_KILL_GRACE=0.2 sh -c 'trap "" PIPE; echo $$ >"$PIDS/0"; while :; do echo x; done' 2>"$TMP/err" | head -n 1 >/dev/null
status=${PIPESTATUS[0]}
set -e
expect_status 141 "stdout closed early, SIGPIPE ignored"
expect_ranks_gone "stdout closed early, SIGPIPE ignored"

# A descendant that keeps a rank's pipe open does not hold ipcrun for long.
run "$IPCRUN" sh -c 'sleep 20 & echo $! >"$PIDS/bg"; echo started'
expect_status 0 "pipe held by a descendant"
expect_faster 5000 "pipe held by a descendant"
expect_file "$TMP/out" "started" "pipe held by a descendant"
kill "$(cat "$PIDS/bg")" 2>/dev/null || true

# A reader slower than the ranks: output waits in the ranks' pipes, not in memory.
# (yes writes about 1 GB/s: a relay without back-pressure would hold hundreds of MB.)
start_bg sh -c "'$IPCRUN' -n 2 sh -c 'echo \$\$ >$PIDS/\$IPC_RANK; yes | head -c 300000000' | { head -c 1000000 >/dev/null; sleep 2; cat >/dev/null; }"
wait_for_pids 2
most=0
for ((i = 0; i < 30; i++)); do
  ours=$(pgrep -P "$BG_PID" -f "$IPCRUN" 2>/dev/null | head -n 1 || true)  # this job's ipcrun
  for p in $(pgrep -f "^ipcrun --agent$" || true); do
    [[ -n $ours && $(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ' || true) == "$ours" ]] || continue
    rss=$(ps -o rss= -p "$p" 2>/dev/null | tr -d ' ' || true)
    if ((${rss:-0} > most)); then most=$rss; fi
  done
  sleep 0.05
done
wait_bg
expect_status 0 "slow reader"
((most > 0)) || fail "slow reader: the agent was not found"
# (A sanitizer's shadow memory and quarantine make any bound on RSS meaningless.)
if ! ldd "$IPCRUN" 2>/dev/null | grep -q "libasan\|libtsan"; then
  ((most < 32768)) || fail "slow reader: the agent held ${most} KiB"
fi

# A reader that stops for longer than the link timeout loses nothing: ipcrun's
# heartbeats to its agents go on while its own stdout is blocked.
run sh -c "IPC_LINK_TIMEOUT=2 '$IPCRUN' -n 2 sh -c 'head -c 20000000 /dev/zero | tr \"\\\\0\" x | fold -w 99' | { sleep 5; wc -l; }"
expect_status 0 "stopped reader"
expect_file "$TMP/out" "404042" "stopped reader"
expect_file "$TMP/err" "" "stopped reader: nothing on stderr"
echo "PASS $TEST_NAME"
