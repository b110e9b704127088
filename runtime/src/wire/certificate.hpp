// The job's TLS certificate (ipcrun --tls): made by ipcrun for one job, passed to every
// rank with its key, trusted by them as their only CA (transport/tcp/tls.hpp).
#pragma once

#include <string>

namespace ipc::wire {

/// A fresh self-signed certificate with a fresh key (EC P-256, SHA-256, valid from an
/// hour ago for `days` days, subject CN=`name`). @throws ipc::Error.
void make_certificate(const std::string& name, int days, std::string& cert_pem, std::string& key_pem);

}  // namespace ipc::wire
