# TLS on one host: ipcrun --tls and its certificate options; a peer whose certificate
# the job does not trust is refused.
#   tls.sh IPCRUN ALLPAIRS_PROGRAM
source "$(dirname "$0")/launcher_common.sh"
ALLPAIRS=${2:?"usage: $0 ipcrun allpairs-program"}

expect_err() {  # pattern (grep -E), what
  grep -Eq -- "$1" "$TMP/err" || fail "$2: no line matching '$1'"
}
cert() {  # name: a self-signed CA certificate and key in $TMP/name.{cert,key}
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/$1.key" -out "$TMP/$1.cert" \
    -days 1 -subj "/CN=$1" -addext "basicConstraints=critical,CA:TRUE" >/dev/null 2>&1 || fail "openssl req"
}
cert a
cert b

run "$IPCRUN" -n 4 --tls --transports tcp "$ALLPAIRS" 1048576
expect_status 0 "--tls with the job's own certificate"
run "$IPCRUN" -n 3 --tls --tls-cert "$TMP/a.cert" --tls-key "$TMP/a.key" --transports tcp "$ALLPAIRS" 65536
expect_status 0 "--tls-cert, --tls-key"

# Usage errors, before any rank starts.
run "$IPCRUN" --tls-cert "$TMP/a.cert" --tls-key "$TMP/a.key" true
expect_status 2 "--tls-cert without --tls"
expect_err "^ipcrun: --tls-cert, --tls-key and --tls-ca go with --tls" "--tls-cert without --tls"
run "$IPCRUN" --tls --tls-cert "$TMP/a.cert" true
expect_status 2 "--tls-cert without --tls-key"
run "$IPCRUN" --tls --tls-cert "$TMP/a.cert" --tls-key "$TMP/b.key" true
expect_status 2 "a key of another certificate"
expect_err "^ipcrun: --tls-cert $TMP/a.cert, --tls-key $TMP/b.key: the key is not the certificate's$" "wrong key"
run "$IPCRUN" --tls --tls-cert "$TMP/a.cert" --tls-key "$TMP/a.key" --tls-ca "$TMP/b.cert" true
expect_status 2 "a CA that did not sign the certificate"
expect_err "the certificate does not chain to the CA" "wrong CA"
run "$IPCRUN" --tls --tls-cert "$TMP/none.cert" --tls-key "$TMP/a.key" true
expect_status 2 "a missing certificate file"
expect_err "^ipcrun: --tls-cert $TMP/none.cert: cannot be read$" "missing file"

# OpenSSL is in the TLS module, which only a job over TLS loads: a rank's program does
# not link it, and a module that cannot be loaded is named, with where it was looked for.
if ldd "$ALLPAIRS" | grep -Eq "libssl|libcrypto"; then fail "the program links OpenSSL"; fi
run env IPC_TLS_MODULE="$TMP/none.so" "$IPCRUN" -n 2 --tls --transports tcp "$ALLPAIRS" 64
[[ $status != 0 && $status != 124 ]] || fail "a missing TLS module: status $status"
expect_err "the TLS module of ipc \\(OpenSSL\\) cannot be loaded; tried:" "a missing TLS module"
expect_err "$TMP/none.so" "a missing TLS module: the file tried"
run env IPC_TLS_MODULE="$TMP/none.so" "$IPCRUN" -n 2 --transports tcp "$ALLPAIRS" 64
expect_status 0 "a job without TLS never loads the module"

# Ranks that do not trust each other's certificate never talk: the job fails, naming TLS.
run env IPC_TLS=1 IPC_TLS_CERT="$(cat "$TMP/a.cert")" IPC_TLS_KEY="$(cat "$TMP/a.key")" \
  IPC_TLS_CA="$(cat "$TMP/b.cert")" "$IPCRUN" -n 2 --timeout 60 --transports tcp "$ALLPAIRS" 64
[[ $status != 0 && $status != 124 ]] || fail "untrusted certificates: status $status"
expect_err "TLS handshake: .*certificate verify failed" "untrusted certificates"
echo ok
