# Tests of ipcrun alone: real jobs of shell ranks, no runtime library needed.
# Included from tests/integration/CMakeLists.txt. Each script takes the ipcrun to
# test as its argument and checks exact output, exit statuses and that no rank
# outlives its job.
set(IPC_LAUNCHER_TESTS
  cli          # --version, --help, --list-params, usage errors, argument passing
  env          # the ranks' environment: contract variables, -x, transport options
  output       # line relay, --tag-output, stdout/stderr, stdin, EPIPE, lingering pipes
  exit         # exit status propagation, stopping the others, --keep-going
  signal_rank  # a rank killed by a signal
  timeout      # --timeout
  program      # program resolution (127/126) and exec failures
  interrupt    # SIGINT/SIGTERM to ipcrun, second signal
  jobcontrol   # SIGTSTP/SIGCONT to ipcrun stop and continue the ranks
  usrsignals   # SIGUSR1/SIGUSR2 to ipcrun reach every rank
  orphans      # ipcrun killed: its ranks die too
  hosts        # --hostfile, --host, --map-by, --oversubscribe, --display-map
)
foreach(name IN LISTS IPC_LAUNCHER_TESTS)
  add_test(NAME launcher.${name}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/launcher_${name}.sh $<TARGET_FILE:ipcrun>)
  set_tests_properties(launcher.${name} PROPERTIES TIMEOUT 30 LABELS launcher)
endforeach()
