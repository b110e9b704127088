// The job's TLS certificate (ipcrun --tls): made by ipcrun for one job, passed to every
// rank with its key, trusted by them as their only CA (transport/tcp/tls.hpp).
#pragma once

#include <string>

namespace ipc::wire {

/// A fresh self-signed certificate with a fresh key (EC P-256, SHA-256, valid from an
/// hour ago for `days` days, subject CN=`name`). @throws ipc::Error.
void make_certificate(const std::string& name, int days, std::string& cert_pem, std::string& key_pem);

/// Checks what a user gives for TLS before any rank starts: `cert_pem` holds a
/// certificate (chain), `key_pem` its private key, and the certificate chains to a
/// CA of `ca_pem` (and is valid now). @throws ipc::Error saying what is wrong.
void check_certificate(const std::string& cert_pem, const std::string& key_pem, const std::string& ca_pem);

}  // namespace ipc::wire
