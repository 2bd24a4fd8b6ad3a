// The registry's certificates: each hub's CA, each device's certificate, the lookups the
// MQTT side authenticates with, and auto-provisioning.

#include <algorithm>
#include <cctype>
#include <mutex>
#include <shared_mutex>

#include "hub/registry.hpp"
#include "hub/registry_checks.hpp"
#include "hub/registry_internal.hpp"
#include "store/registry_store.hpp"

namespace iothub::hub {

using detail::already_exists;
using detail::invalid;
using detail::not_found;
using detail::precondition;
using detail::quota_exceeded;

namespace {

// A hub's own CA outlives every certificate it issues (10 years each) by a wide margin.
constexpr int hub_ca_years = 30;
constexpr int device_certificate_years = 10;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

namespace detail {

store::hub_ca_row make_hub_ca(const std::string& hub_id) {
    pki::subject s;
    s.common_name = "iothub hub CA " + hub_id;
    s.organization = std::string(issued_organization);
    // ECDSA P-384, as the hosted service's CA since its 2023-24 rotation.
    pki::cert_and_key ca = pki::make_ca(s, pki::key_type::ec_p384, hub_ca_years);
    return {hub_id, std::move(ca.cert_pem), std::move(ca.key_pem), false};
}

hub_ca_entry_ptr ca_entry_of(const store::hub_ca_row& row) {
    std::string why;
    const auto info = pki::parse_pem(row.cert_pem, &why);
    if (!info) throw std::runtime_error("registry: the CA of hub " + row.hub_id + ": " + why);
    auto pub = std::make_shared<hub_ca>();
    pub->hub_id = row.hub_id;
    pub->cert_pem = row.cert_pem;
    pub->custom = row.custom;
    pub->subject_hash = info->subject_hash;
    auto entry = std::make_shared<hub_ca_entry>();
    entry->pub = std::move(pub);
    entry->key_pem = row.key_pem;
    return entry;
}

device_credentials issue_device_certificate(const hub_ca_entry& ca, const std::string& name,
                                            pki::key_type k) {
    pki::subject s;
    s.common_name = name;
    s.organization = std::string(issued_organization);
    pki::cert_and_key c =
        pki::issue_client({ca.pub->cert_pem, ca.key_pem}, s, k, device_certificate_years);
    return {std::move(c.cert_pem), std::move(c.key_pem)};
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Lookups for the MQTT side

device_ptr registry::find_device_by_certificate(std::string_view fingerprint) const {
    std::shared_lock lock(mutex_);
    const auto it = idx_->device_by_fingerprint.find(std::string(fingerprint));
    if (it == idx_->device_by_fingerprint.end()) return nullptr;
    const auto d = devices_.find(it->second);
    return d == devices_.end() ? nullptr : d->second;
}

hub_ca_ptr registry::find_hub_ca(std::string_view hub_id) const {
    std::shared_lock lock(mutex_);
    const auto it = idx_->cas.find(std::string(hub_id));
    return it == idx_->cas.end() ? nullptr : it->second->pub;
}

std::vector<hub_ca_ptr> registry::cas_with_subject(std::uint32_t subject_hash) const {
    std::vector<hub_ca_ptr> out;
    std::shared_lock lock(mutex_);
    auto [first, last] = idx_->ca_by_subject.equal_range(subject_hash);
    for (auto i = first; i != last; ++i) {
        if (const auto it = idx_->cas.find(i->second); it != idx_->cas.end())
            out.push_back(it->second->pub);
    }
    // Hub ids in order: the same answer whatever the hash map's order.
    std::sort(out.begin(), out.end(),
              [](const hub_ca_ptr& a, const hub_ca_ptr& b) { return a->hub_id < b->hub_id; });
    return out;
}

void registry::set_device_key_type(pki::key_type k) {
    std::unique_lock writes(idx_->write_mutex);
    std::unique_lock lock(mutex_);
    idx_->device_key = k;
}

// ---------------------------------------------------------------------------------------
// Hub CAs

std::string registry::get_hub_ca(const scope& sc, std::string_view hub_id) const {
    std::shared_lock lock(mutex_);
    const hub_ptr h = hub_in_scope(sc, hub_id);
    const auto it = idx_->cas.find(h->id);
    if (it == idx_->cas.end()) throw not_found("ca", h->id);  // cannot happen after load()
    return it->second->pub->cert_pem;
}

hub_view registry::set_hub_ca(const scope& sc, std::string_view hub_id, const std::string& ca_pem,
                              const std::string& challenge_pem) {
    // What can be checked without the registry's state: the two certificates.
    std::vector<argument_error> errors;
    std::string why;
    std::optional<pki::cert_info> ca;
    if (ca_pem.empty()) {
        errors.push_back({"ca_cert_pem", "required", "a PEM certificate is required"});
    } else if (const auto bundle = pki::parse_pem_bundle(ca_pem); bundle.size() > 1) {
        errors.push_back({"ca_cert_pem", "constraint", "must hold one certificate, not a bundle"});
    } else if (ca = pki::parse_pem(ca_pem, &why); !ca) {
        errors.push_back({"ca_cert_pem", "format", "not a PEM certificate"});
    } else if (!ca->is_ca) {
        errors.push_back({"ca_cert_pem", "constraint",
                          "not a certificate authority (basicConstraints CA:TRUE is missing)"});
    }
    std::optional<pki::cert_info> challenge;
    if (challenge_pem.empty()) {
        errors.push_back({"challenge_cert_pem", "required", "a PEM certificate is required"});
    } else if (challenge = pki::parse_pem(challenge_pem, &why); !challenge) {
        errors.push_back({"challenge_cert_pem", "format", "not a PEM certificate"});
    } else if (ca && ca->is_ca) {
        if (!pki::signed_by(challenge_pem, ca_pem)) {
            errors.push_back({"challenge_cert_pem", "constraint",
                              "must be signed by the certificate authority of ca_cert_pem"});
        }
        if (lower(challenge->common_name) != lower(std::string(hub_id))) {
            errors.push_back({"challenge_cert_pem", "constraint",
                              "its common name must be the hub id (" + std::string(hub_id) +
                                  "), not '" + challenge->common_name + "'"});
        }
    }

    hub_ptr before;
    hub_ptr after;
    std::uint64_t devices = 0;
    std::vector<std::pair<device_ptr, device_ptr>> changed;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = hub_in_scope(sc, hub_id);  // an unknown hub is not_found before bad arguments
        if (!errors.empty()) throw invalid(std::move(errors));
        if (before->enabled) {
            throw precondition("resource_not_usable",
                               "the hub must be disabled to change its certificate authority");
        }
        devices = device_count(before->id);
        auto next = std::make_shared<hub_record>(*before);
        next->has_custom_ca = true;
        next->updated_at_ms = clock_();
        after = std::move(next);
        // The issued certificates go: their devices lose their fingerprint.
        if (const auto it = idx_->by_hub.find(before->id); it != idx_->by_hub.end()) {
            for (const auto& [name, d] : it->second) {
                const auto c = idx_->certificates.find(d->id);
                if (c == idx_->certificates.end() || !c->second.issued) continue;
                auto cleared = std::make_shared<device_record>(*d);
                cleared->certificate_fingerprint.clear();
                changed.emplace_back(d, std::move(cleared));
            }
        }
        const store::hub_ca_row row{before->id, pki::pem_of(ca->der), "", true};
        commit_hub_ca(after, row, true, changed);
    }
    notify(before, after);
    for (const auto& [b, a] : changed) notify(b, a);
    return hub_view_of(after, hub_status::disabled, devices);
}

// ---------------------------------------------------------------------------------------
// Device certificates

device_certificate_view registry::get_device_certificate(const scope& sc,
                                                         std::string_view id) const {
    device_ptr d;
    std::string pem;
    {
        std::shared_lock lock(mutex_);
        d = device_in_scope(sc, id);
        const auto it = idx_->certificates.find(d->id);
        if (it == idx_->certificates.end()) throw not_found("certificate", d->id);
        pem = it->second.pem;
    }
    return {device_view_of(std::move(d)), std::move(pem)};
}

device_created registry::renew_device_certificate(const scope& sc, std::string_view id) {
    device_ptr seen;
    detail::hub_ca_entry_ptr ca;
    pki::key_type key_type = pki::key_type::rsa_2048;
    {
        std::shared_lock lock(mutex_);
        seen = device_in_scope(sc, id);
        const auto it = idx_->cas.find(seen->hub_id);
        if (it == idx_->cas.end() || it->second->pub->custom) {
            throw precondition("resource_not_usable",
                               "the hub has a custom certificate authority: iothub issues no "
                               "device certificates for it");
        }
        ca = it->second;
        key_type = idx_->device_key;
    }
    // Made outside the locks (a key pair takes a while), then checked against what changed.
    device_credentials credentials = detail::issue_device_certificate(*ca, seen->name, key_type);
    const std::string fingerprint = pki::parse_pem(credentials.crt)->fingerprint;

    device_ptr before;
    device_ptr after;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = device_in_scope(sc, id);
        const auto it = idx_->cas.find(before->hub_id);
        if (before->name != seen->name || it == idx_->cas.end() || it->second != ca) {
            throw precondition("resource_not_usable",
                               "the device or its hub's certificate authority changed "
                               "meanwhile; try again");
        }
        auto next = std::make_shared<device_record>(*before);
        next->has_custom_certificate = false;
        next->certificate_fingerprint = fingerprint;
        next->updated_at_ms = clock_();
        after = std::move(next);
        commit_device_certificate(before, after, credentials.crt, true);
    }
    notify(before, after);  // the certificate changed: the device is disconnected
    device_created out;
    static_cast<device_view&>(out) = device_view_of(after);
    out.certificate = std::move(credentials);
    return out;
}

device_certificate_view registry::set_device_certificate(const scope& sc, std::string_view id,
                                                         const std::string& certificate_pem) {
    std::string why;
    std::optional<pki::cert_info> info;
    if (certificate_pem.empty()) {
        throw invalid("certificate_pem", "required", "a PEM certificate is required");
    }
    if (pki::parse_pem_bundle(certificate_pem).size() > 1) {
        throw invalid("certificate_pem", "constraint", "must hold one certificate, not a bundle");
    }
    info = pki::parse_pem(certificate_pem, &why);
    if (!info) throw invalid("certificate_pem", "format", "not a PEM certificate");
    const std::string pem = pki::pem_of(info->der);

    device_ptr before;
    device_ptr after;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = device_in_scope(sc, id);
        if (const auto it = idx_->device_by_fingerprint.find(info->fingerprint);
            it != idx_->device_by_fingerprint.end() && it->second != before->id) {
            registry_error e = already_exists("certificate", info->fingerprint);
            e.help_message =
                "another device already has this certificate; a certificate identifies one "
                "device across every hub";
            throw e;
        }
        auto next = std::make_shared<device_record>(*before);
        next->has_custom_certificate = true;
        next->certificate_fingerprint = info->fingerprint;
        next->updated_at_ms = clock_();
        after = std::move(next);
        commit_device_certificate(before, after, pem, false);
    }
    notify(before, after);
    return {device_view_of(after), pem};
}

// ---------------------------------------------------------------------------------------
// Auto-provisioning

provisioned_device registry::provision_device(std::string_view hub_id, const std::string& name,
                                              const std::string& description) {
    if (name.empty()) throw invalid("name", "required", "must not be empty");
    if (auto e = checks::device_name(name)) throw invalid({std::move(*e)});
    auto d = std::make_shared<device_record>();
    {
        std::unique_lock writes(idx_->write_mutex);
        const auto h = hubs_.find(std::string(hub_id));
        if (h == hubs_.end()) throw not_found("hub", hub_id);
        if (const auto it = idx_->by_hub.find(h->first); it != idx_->by_hub.end()) {
            if (const auto found = it->second.find(name); found != it->second.end())
                return {found->second, false};  // already provisioned (or made by the API)
        }
        if (device_count(h->first) >= limits_.max_devices_per_hub) {
            throw quota_exceeded("device",
                                 std::to_string(limits_.max_devices_per_hub) + " devices per hub");
        }
        d->id = make_uuid();
        d->hub_id = h->first;
        d->name = name;
        d->description = description;
        d->allow_insecure = false;
        d->allow_multiple_connections = false;
        d->created_at_ms = d->updated_at_ms = clock_();
        commit_device(nullptr, d);
        std::lock_guard activity_lock(idx_->activity_mutex);
        idx_->activity_of[d->id] = {};
    }
    notify(nullptr, d);
    return {d, true};
}

}  // namespace iothub::hub
