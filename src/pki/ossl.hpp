#pragma once
// Owning handles for the OpenSSL objects pki/ uses, and the conversions between them and
// PEM / DER strings. Private to pki/*.cpp: nothing outside pki/ includes OpenSSL headers.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "pki/pki.hpp"

namespace iothub::pki::ossl {

template <auto free_fn>
struct deleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        free_fn(p);
    }
};

using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
using name_ptr = std::unique_ptr<X509_NAME, deleter<X509_NAME_free>>;
using store_ptr = std::unique_ptr<X509_STORE, deleter<X509_STORE_free>>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, deleter<X509_STORE_CTX_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, deleter<GENERAL_NAMES_free>>;
using general_name_ptr = std::unique_ptr<GENERAL_NAME, deleter<GENERAL_NAME_free>>;
using asn1_integer_ptr = std::unique_ptr<ASN1_INTEGER, deleter<ASN1_INTEGER_free>>;
using crl_ptr = std::unique_ptr<X509_CRL, deleter<X509_CRL_free>>;
using revoked_ptr = std::unique_ptr<X509_REVOKED, deleter<X509_REVOKED_free>>;

// A stack of certificates that frees them with itself.
struct x509_stack_deleter {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_pop_free(s, X509_free); }
};
using x509_stack_ptr = std::unique_ptr<STACK_OF(X509), x509_stack_deleter>;

// OpenSSL's most recent error queue entries as one line (the queue is emptied).
std::string last_error();
// Throws pki::error "<what>: <OpenSSL's reason>".
[[noreturn]] void fail(const std::string& what);

// A read-only memory BIO over `data` (which must outlive it).
bio_ptr memory_reader(std::string_view data);
// Everything written to a memory BIO so far.
std::string contents(BIO* b);

// Null (with the reason in `why`, when given) when the text holds no certificate.
x509_ptr read_pem_cert(std::string_view pem, std::string* why = nullptr);
x509_ptr read_der_cert(std::string_view der, std::string* why = nullptr);
pkey_ptr read_private_key(std::string_view pem);  // throws
std::string der_of(X509* x);
std::string pem_of(X509* x);

// A name on one line, RFC 2253 ("CN=a,O=b"), for logs and messages.
std::string name_text(const X509_NAME* n);
// OpenSSL's hash of the canonical name (X509_NAME_hash_ex): equal names hash equal.
std::uint32_t name_hash(const X509_NAME* n);
// Unix milliseconds; 0 for a null or unreadable time.
std::uint64_t to_unix_ms(const ASN1_TIME* t);
// Hex digits of `n` bytes.
std::string to_hex(const unsigned char* p, std::size_t n, bool upper);
// SHA-384 under a P-384 key, SHA-256 otherwise.
const EVP_MD* digest_for(EVP_PKEY* signer);

}  // namespace iothub::pki::ossl
