#include "wire/certificate.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "base/errors.hpp"

namespace ipc::wire {
namespace {

template <class T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Free<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;

void free_chain(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }

[[noreturn]] void fail(const char* step) { throw Error(std::string("TLS certificate: ") + step + " failed"); }

std::string text_of(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

void make_certificate(const std::string& name, int days, std::string& cert_pem, std::string& key_pem) {
  Key key(EVP_EC_gen("P-256"));
  if (!key) fail("making a key");
  Cert cert(X509_new());
  if (!cert) fail("making a certificate");
  X509_set_version(cert.get(), 2);
  // A random serial: two jobs' certificates never look alike.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail("drawing a serial number");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()))) fail("setting the serial number");
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // clocks of hosts differ a little
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), subject);
  if (X509_set_pubkey(cert.get(), key.get()) != 1) fail("setting the public key");
  // A CA of its own (it signs itself, and the ranks trust it as their only CA).
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            {NID_key_usage, "critical,digitalSignature,keyCertSign"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (!ext || X509_add_ext(cert.get(), ext, -1) != 1) fail("adding an extension");
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) fail("signing");
  Bio c(BIO_new(BIO_s_mem())), k(BIO_new(BIO_s_mem()));
  if (!c || !k || PEM_write_bio_X509(c.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(k.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail("writing PEM");
  cert_pem = text_of(c.get());
  key_pem = text_of(k.get());
}

void check_certificate(const std::string& cert_pem, const std::string& key_pem, const std::string& ca_pem) {
  auto bio = [](const std::string& pem) { return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); };
  auto cb = bio(cert_pem);
  Cert leaf(cb ? PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!leaf) throw Error("the certificate is not a PEM certificate");
  std::unique_ptr<STACK_OF(X509), Free<STACK_OF(X509), free_chain>> chain(sk_X509_new_null());
  while (X509* more = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr)) sk_X509_push(chain.get(), more);
  auto kb = bio(key_pem);
  Key key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) throw Error("the key is not a PEM private key (or needs a passphrase)");
  if (X509_check_private_key(leaf.get(), key.get()) != 1) throw Error("the key is not the certificate's");
  std::unique_ptr<X509_STORE, Free<X509_STORE, X509_STORE_free>> store(X509_STORE_new());
  auto ab = bio(ca_pem);
  int cas = 0;
  while (X509* ca = ab ? PEM_read_bio_X509(ab.get(), nullptr, nullptr, nullptr) : nullptr) {
    X509_STORE_add_cert(store.get(), ca);
    X509_free(ca);
    ++cas;
  }
  if (cas == 0) throw Error("the CA is not a PEM certificate");
  std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX, X509_STORE_CTX_free>> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), chain.get()) != 1) fail("checking the chain");
  if (X509_verify_cert(ctx.get()) != 1)
    throw Error(std::string("the certificate does not chain to the CA: ") +
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  ERR_clear_error();
}

}  // namespace ipc::wire
