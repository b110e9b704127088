// The parameters of the TCP transport, declared where they are used. The build
// gathers every transport's table (runtime/CMakeLists.txt), so that `ipcrun
// --list-params` and base::param() know them all.
#include "base/params.hpp"

namespace ipc::transport::tcp {
namespace {

constexpr base::Param kParams[] = {
    {"IPC_TCP_EAGER", "65536", "TCP: messages up to this many bytes go eagerly, larger ones by rendezvous"},
    {"IPC_TCP_BUFFER", "0", "TCP: socket send and receive buffer bytes (0: the kernel's autotuning)"},
    {"IPC_TCP_CC", "reno", "TCP: congestion control of the ranks' connections ('' keeps the system's default; docs/transports.md)"},
    {"IPC_TCP_ADDR", "127.0.0.1", "TCP: address the rank listens on (ipcrun sets it per host)"},
};

}  // namespace

extern const base::ParamTable params;
const base::ParamTable params = kParams;

}  // namespace ipc::transport::tcp
