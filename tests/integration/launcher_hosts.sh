# Hostfiles and --host: placement by slot and by node, oversubscription, --display-map,
# the ranks' node and local rank, and clear errors for bad input.
source "$(dirname "$0")/launcher_common.sh"

HF=$TMP/hosts
printf '# two nodes of this machine\nlocalhost slots=2\n\n127.0.0.1 slots=2   # the second\n' >"$HF"
ENV='echo "$IPC_RANK $IPC_NODE $IPC_LOCAL_RANK $IPC_LOCAL_SIZE"'

run "$IPCRUN" --hostfile "$HF" -n 4 --display-map sh -c "$ENV"
expect_status 0 "hostfile, by slot"
expect_sorted "$TMP/out" "0 localhost 0 2
1 localhost 1 2
2 127.0.0.1 0 2
3 127.0.0.1 1 2" "hostfile, by slot"
expect_file "$TMP/err" "[ipcrun] rank 0 on localhost (local rank 0)
[ipcrun] rank 1 on localhost (local rank 1)
[ipcrun] rank 2 on 127.0.0.1 (local rank 0)
[ipcrun] rank 3 on 127.0.0.1 (local rank 1)" "--display-map"

run "$IPCRUN" --hostfile "$HF" -n 3 --map-by node sh -c "$ENV"
expect_sorted "$TMP/out" "0 localhost 0 2
1 127.0.0.1 0 1
2 localhost 1 2" "by node"

# More ranks than slots: refused, then allowed.
run "$IPCRUN" --hostfile "$HF" -n 5 sh -c 'echo started'
expect_status 2 "5 ranks on 4 slots"
expect_file "$TMP/out" "" "5 ranks on 4 slots: nothing started"
expect_file "$TMP/err" "ipcrun: 5 ranks, but the 2 hosts given have 4 slots: ask for fewer ranks, give more slots, or allow more ranks than slots with --oversubscribe" "5 ranks on 4 slots"
run "$IPCRUN" --hostfile "$HF" -n 5 --oversubscribe sh -c "$ENV"
expect_status 0 "--oversubscribe"
[[ $(wc -l <"$TMP/out") == 5 ]] || fail "--oversubscribe: $(cat "$TMP/out")"

# --host lists.
run "$IPCRUN" --host localhost:1,127.0.0.1:1 -n 2 sh -c "$ENV"
expect_sorted "$TMP/out" "0 localhost 0 1
1 127.0.0.1 0 1" "--host"

# Bad input: one line, status 2, nothing started.
printf 'localhost slots=2\nlocalhost cpus=3\n' >"$TMP/bad"
run "$IPCRUN" --hostfile "$TMP/bad" -n 2 sh -c 'echo started'
expect_status 2 "bad hostfile"
expect_file "$TMP/err" "ipcrun: $TMP/bad:2: unknown attribute 'cpus=3' (a line is: host slots=N max_slots=M)" "bad hostfile"
run "$IPCRUN" --hostfile "$TMP/missing" -n 2 sh -c 'echo started'
expect_status 2 "missing hostfile"
grep -q "^ipcrun: hostfile $TMP/missing: cannot be read" "$TMP/err" || fail "missing hostfile: $(cat "$TMP/err")"
# Another host is reached through the launch agent; one that fails, or does not
# answer in time, gives one line naming the host, status 255, and nothing left.
run "$IPCRUN" --launch-agent /bin/false --host some-other-host:2 -n 2 sh -c 'echo started'
expect_status 255 "launch agent fails"
expect_file "$TMP/err" "ipcrun: cannot start the agent on some-other-host: its link closed" "launch agent fails"
printf '#!/bin/sh\necho "hang: on my way" >&2\nexec sleep 60\n' >"$TMP/hang"
chmod +x "$TMP/hang"
run "$IPCRUN" --launch-agent "$TMP/hang" --launch-timeout 0.5 --host localhost,some-other-host -n 2 sh -c 'echo started'
expect_status 255 "silent host"
expect_file "$TMP/err" "ipcrun: cannot start the agent on some-other-host: no answer within 0.5 s (launched with '$TMP/hang'): hang: on my way" "silent host"
expect_file "$TMP/out" "" "silent host: no rank started"
pgrep -f "^sleep 60 some-other-host" >/dev/null && fail "silent host: the launch agent outlived ipcrun"
run "$IPCRUN" --launch-agent " " --host some-other-host -n 1 true
expect_status 2 "empty launch agent"
expect_file "$TMP/err" "ipcrun: --launch-agent is empty" "empty launch agent"
run env IPC_LAUNCH_TIMEOUT=0 "$IPCRUN" -n 1 true
expect_status 2 "IPC_LAUNCH_TIMEOUT=0"
expect_file "$TMP/err" "ipcrun: IPC_LAUNCH_TIMEOUT='0' must be a positive number of seconds" "IPC_LAUNCH_TIMEOUT=0"
run env IPC_LINK_TIMEOUT=soon "$IPCRUN" -n 1 true
expect_status 2 "IPC_LINK_TIMEOUT=soon"
run "$IPCRUN" --launch-timeout 0 -n 1 true
expect_status 2 "--launch-timeout 0"
run "$IPCRUN" --launch-agent "$TMP/no-such-agent" --host some-other-host -n 1 true
expect_status 255 "missing launch agent"
grep -q "^ipcrun: cannot start the agent on some-other-host: launch agent program '$TMP/no-such-agent' not found" "$TMP/err" ||
  fail "missing launch agent: $(cat "$TMP/err")"
run "$IPCRUN" --hostfile "$HF" --host localhost -n 1 true
expect_status 2 "--hostfile and --host"
run "$IPCRUN" --map-by core -n 1 true
expect_status 2 "--map-by core"
expect_file "$TMP/out" "" "bad input: nothing started"
echo "PASS $TEST_NAME"
