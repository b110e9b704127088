// The parameters of the TCP transport, declared where they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::transport::tcp,
           {"IPC_TCP_EAGER", "65536", "TCP: messages up to this many bytes go eagerly, larger ones by rendezvous", count},
           {"IPC_TCP_BUFFER", "0", "TCP: socket send and receive buffer bytes (0: the kernel's autotuning)", count},
           {"IPC_TCP_CC", "reno", "TCP: congestion control of the ranks' connections ('' keeps the system's default; docs/transports.md)"},
           {"IPC_TCP_ADDR", "127.0.0.1", "TCP: address the rank listens on (ipcrun sets it per host)"},
           {"IPC_TCP_IFACE", "", "TCP: listen on this interface's address instead: a name (eth0) or an IPv4 network (10.1.0.0/16); ipcrun --iface sets it"},
           {"IPC_TCP_PORTS", "", "TCP: listen on the first free port of this range A-B ('' : any port); ipcrun --port-range sets it"},
           {"IPC_TCP_HANDSHAKE_TIMEOUT", "10", "TCP: seconds a connection to a rank has to authenticate before it is dropped", seconds},
           {"IPC_TCP_MAX_PENDING", "64", "TCP: connections without a handshake a rank keeps; a new one drops the oldest", count},
           {"IPC_TLS", "0", "TCP: 1 runs every connection over TLS 1.3 (ipcrun --tls sets it, with the next three)", boolean},
           {"IPC_TLS_CERT", "", "TCP: this rank's certificate, PEM text (ipcrun --tls: the job's own)"},
           {"IPC_TLS_KEY", "", "TCP: the certificate's private key, PEM text"},
           {"IPC_TLS_CA", "", "TCP: the CA a peer's certificate must chain to, PEM text (ipcrun --tls: the job's certificate)"},
           {"IPC_TLS_MODULE", "", "TCP: the TLS module (libipc-tls.so: OpenSSL) a rank loads for IPC_TLS; empty: found through the program's run path (the build's lib/ or the installation's lib/ipc/)"});
