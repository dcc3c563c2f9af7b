#pragma once

// A throwaway certificate authority for TLS tests, built with OpenSSL's C API (no
// `openssl` binary, no network): a self-signed CA and server certificates it signs, as
// PEM files in a directory the test owns. EC P-256 keys, valid from an hour ago for a day.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace triplane::testing {

// A server's certificate chain and private key, as PEM file paths.
struct TlsIdentity {
  std::string cert_file;
  std::string key_file;
};

class TestCa {
 public:
  // Writes DIR/NAME-ca.pem. Throws std::runtime_error when OpenSSL fails (a test bug).
  TestCa(std::filesystem::path dir, const std::string& name) : dir_(std::move(dir)) {
    key_.reset(EVP_EC_gen("P-256"));
    cert_ = NewCertificate(name + " test CA", key_.get(), nullptr);
    AddExtension(cert_.get(), cert_.get(), NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert_.get(), cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    AddExtension(cert_.get(), cert_.get(), NID_subject_key_identifier, "hash");
    Sign(cert_.get(), key_.get());
    cert_file_ = (dir_ / (name + "-ca.pem")).string();
    WriteCertificate(cert_file_, cert_.get());
  }

  const std::string& cert_file() const { return cert_file_; }

  // Writes a server certificate for `subject_alt_names` (OpenSSL syntax:
  // "DNS:localhost,IP:127.0.0.1") signed by this CA, and its key, as DIR/NAME.pem and
  // DIR/NAME.key.
  TlsIdentity Issue(const std::string& name, const std::string& subject_alt_names) const {
    Key key(EVP_EC_gen("P-256"));
    Certificate cert = NewCertificate(name, key.get(), cert_.get());
    AddExtension(cert_.get(), cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert_.get(), cert.get(), NID_ext_key_usage, "serverAuth");
    AddExtension(cert_.get(), cert.get(), NID_subject_alt_name, subject_alt_names);
    Sign(cert.get(), key_.get());
    TlsIdentity identity{(dir_ / (name + ".pem")).string(), (dir_ / (name + ".key")).string()};
    WriteCertificate(identity.cert_file, cert.get());
    File out = Open(identity.key_file);
    Check(PEM_write_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr), "write key");
    return identity;
  }

 private:
  struct Deleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(std::FILE* p) const { std::fclose(p); }
  };
  using Key = std::unique_ptr<EVP_PKEY, Deleter>;
  using Certificate = std::unique_ptr<X509, Deleter>;
  using File = std::unique_ptr<std::FILE, Deleter>;

  static void Check(int ok, const char* what) {
    if (ok != 1) throw std::runtime_error(std::string("test PKI: cannot ") + what);
  }

  // A certificate for `key` named CN=`common_name`, issued by `issuer` (itself if null).
  static Certificate NewCertificate(const std::string& common_name, EVP_PKEY* key, X509* issuer) {
    static long serial = 1;
    Certificate cert(X509_new());
    Check(X509_set_version(cert.get(), 2), "set version");
    Check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++), "set serial");
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    Check(X509_set_pubkey(cert.get(), key), "set key");
    X509_NAME* subject = X509_get_subject_name(cert.get());
    Check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                     -1, 0),
          "set name");
    Check(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer ? issuer : cert.get())),
          "set issuer");
    return cert;
  }

  static void AddExtension(X509* issuer, X509* cert, int nid, const std::string& value) {
    X509V3_CTX context;
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    if (ext == nullptr) throw std::runtime_error("test PKI: bad extension " + value);
    const int added = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    Check(added, "add extension");
  }

  static void Sign(X509* cert, EVP_PKEY* key) {
    if (X509_sign(cert, key, EVP_sha256()) <= 0) throw std::runtime_error("test PKI: cannot sign");
  }

  static File Open(const std::string& path) {
    File file(std::fopen(path.c_str(), "wb"));
    if (!file) throw std::runtime_error("test PKI: cannot write " + path);
    return file;
  }

  static void WriteCertificate(const std::string& path, X509* cert) {
    File out = Open(path);
    Check(PEM_write_X509(out.get(), cert), "write certificate");
  }

  std::filesystem::path dir_;
  Key key_;
  Certificate cert_;
  std::string cert_file_;
};

}  // namespace triplane::testing
