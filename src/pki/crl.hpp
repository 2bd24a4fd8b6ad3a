#pragma once
// Certificate revocation lists (X.509 v2 CRLs, RFC 5280) for client certificates: a set read
// once from PEM, immutable, shared by every worker and asked at CONNECT whether a certificate
// is revoked. OpenSSL types stay inside pki/*.cpp.
//
// What counts as revoked: a CRL issued by the certificate's issuer lists its serial number.
// "Issued by" is proven when the issuer's certificate is known (a hub's CA, a verified chain,
// or a certificate of the chain the client sent that did sign it): the CRL's issuer name is
// the certificate's issuer name and the CRL's signature verifies with that certificate's key.
// A CRL with the same issuer name that another key signed is not the issuer's, and is
// ignored (two customers' CAs may share a name). When no issuer certificate is known, the
// issuer name and, where both have one, the authority key identifier must match.
//
// Dates: revocation never expires. A CRL past its nextUpdate is still applied (the loader
// logs a warning, see expired()); a certificate's own expiry is checked elsewhere.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pki/pki.hpp"

namespace iothub::pki {

// One CRL of a set, for logs.
struct crl_info {
    std::string issuer;                // RFC 2253, one line
    std::size_t revoked = 0;           // entries listed
    std::uint64_t this_update_ms = 0;  // unix milliseconds
    std::uint64_t next_update_ms = 0;  // 0: the CRL names no next update
};

class crl_set {
public:
    // Empty: revokes nothing.
    crl_set();

    // Every CRL ("-----BEGIN X509 CRL-----") of a PEM bundle; other PEM blocks (certificates)
    // are skipped. Throws pki::error when the text holds no CRL, when a CRL does not parse,
    // when its signature algorithm is unknown (it could never be checked), or when it is a
    // delta CRL, an indirect CRL or has a critical extension not understood here.
    static crl_set from_pem(std::string_view pem);

    bool empty() const noexcept;
    const std::vector<crl_info>& crls() const noexcept;
    // The CRLs whose nextUpdate is before `now_ms` (still applied).
    std::vector<crl_info> expired(std::uint64_t now_ms) const;

    // Whether a CRL of `cert_der`'s issuer lists it. `issuers_der`: trusted certificates that
    // may be its issuer (a hub's CAs, the next certificate of a verified chain); `untrusted_der`:
    // certificates the client sent, used only when they signed `cert_der`. `why` (when given)
    // gets "certificate revoked (serial ..., CRL of ...)" for a revoked certificate.
    // Never throws for bad input: a certificate that does not parse is not revoked here (the
    // caller refuses it for that).
    bool revoked(std::string_view cert_der, const std::vector<std::string>& issuers_der,
                 const std::vector<std::string>& untrusted_der = {},
                 std::string* why = nullptr) const;

private:
    struct entry;
    std::shared_ptr<const std::vector<entry>> entries_;
    std::vector<crl_info> infos_;
};
using crl_set_ptr = std::shared_ptr<const crl_set>;

// A CRL signed by `ca` that lists these serial numbers (hex, as cert_info::serial), dated
// thisUpdate = v.not_before_s, nextUpdate = v.not_after_s; PEM. For tests and tools.
std::string issue_crl(const cert_and_key& ca, const std::vector<std::string>& serials,
                      const validity& v);

}  // namespace iothub::pki
