#include "hub/access.hpp"

#include "hub/templates.hpp"

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/worker.hpp"
#include "pki/pki.hpp"

namespace iothub::hub {

namespace {

constexpr std::string_view dev_hub = "default";
// Certificates a client may present (leaf and intermediates); more is refused unread.
constexpr int max_certificate_chain = 8;

broker::topic_rule make_rule(const filter_rule& r, const hub_record& h, const device_record& d) {
    broker::topic_rule out;
    out.accept = r.policy == filter_policy::accept;
    out.filters.reserve(r.topics.size());
    for (const auto& t : r.topics) out.filters.push_back(expand_templates(t, h, d));
    return out;
}

const char* refusal_text(broker::refusal r) {
    switch (r) {
    case broker::refusal::retain_forbidden:
        return "service level: publishing retained messages is forbidden on a shared hub";
    case broker::refusal::publish_qos:
        return "service level: publishing QoS 2 messages is forbidden on a shared hub";
    case broker::refusal::subscribe_qos:
        return "service level: subscribing with QoS 1-2 is forbidden on a shared hub";
    case broker::refusal::payload_too_large:
        return "service level: message payload is too large";
    default:
        return nullptr;  // topic refusals name the topic
    }
}

}  // namespace

std::string expand_templates(std::string_view topic, const hub_record& h, const device_record& d) {
    std::string why;
    auto out = substitute_templates(
        topic,
        [&](std::string_view name) -> std::optional<std::string_view> {
            if (name == "hub.id") return h.id;
            if (name == "hub.name") return h.name;
            if (name == "device.id") return d.id;
            if (name == "device.name") return d.name;
            return std::nullopt;
        },
        why);
    // The registry stores only filters whose templates are known and closed; anything else
    // (a record from elsewhere) is kept as written, matching nothing it did not name.
    return out ? std::move(*out) : std::string(topic);
}

broker::identity_ptr make_identity(const hub_record& h, const device_record& d, bool insecure) {
    auto id = std::make_shared<broker::client_identity>();
    id->hub = h.id;
    id->device_id = d.id;
    id->publish = make_rule(d.filters.publish, h, d);
    id->subscribe = make_rule(d.filters.subscribe, h, d);
    id->reserved.filters.push_back(h.events_topic_prefix + "/#");
    if (h.plan == product_plan::plan_shared) {
        id->retain_allowed = false;
        id->max_publish_qos = 1;
        id->max_subscribe_qos = 0;
    }
    id->insecure = insecure;
    return id;
}

access::access(broker::broker& b, registry& reg, clock_fn clock)
    : broker_(b), registry_(reg), clock_(clock), events_(reg, clock) {}

broker::admission access::refuse(broker::worker& w, const std::string& hub_id,
                                 const std::string& device_id, const char* msg,
                                 const std::string& detail) {
    broker::admission adm;
    adm.rc = mqtt::reason_code::not_authorized;
    adm.reason = msg;
    if (!detail.empty()) adm.reason += ": " + detail;
    if (!hub_id.empty()) {
        hub_event e;
        e.object_id = device_id.empty() ? "unknown" : device_id;
        e.msg = msg;
        events_.publish(w, hub_id, std::move(e));
    }
    return adm;
}

// Who is connecting, in this order (DESIGN.md "Identity and tenancy"):
//   1. a client certificate: the device whose own certificate it is (fingerprint), else the
//      device named by its common name in a hub whose custom CA verifies the chain (or a
//      new device there, with auto-provisioning); such a client is secure;
//   2. without a certificate, the client id, then the username, as a device id: insecure,
//      so only for devices that allow it.
// A certificate that proves nothing is refused, never passed over for the client id: a
// certificate of one device does not let a client act as another.
broker::admission access::admit(broker::worker& w, const mqtt::connect& c,
                                const broker::link_info& link) {
    if (!link.certificates.empty()) return admit_certificate(w, c, link);
    // The client id names the device; failing that, the username does (for client
    // libraries that cap client ids at 23 characters).
    device_ptr dev;
    bool by_username = false;
    if (is_uuid(c.client_id)) dev = registry_.find_device(c.client_id);
    if (!dev && c.username && is_uuid(*c.username)) {
        dev = registry_.find_device(*c.username);
        by_username = dev != nullptr;
    }
    if (!dev) {
        broker::admission adm;
        if (w.owner().config()->dev_hub_open) {
            adm.hub = std::string(dev_hub);
            adm.client_id = c.client_id;
            return adm;
        }
        return refuse(w, {}, {}, "could not identify device");
    }
    return admit_device(w, c, dev,
                        by_username ? identified_by::username : identified_by::client_id);
}

broker::admission access::admit_device(broker::worker& w, const mqtt::connect& c,
                                       const device_ptr& dev, identified_by how) {
    const auto hub = registry_.find_hub(dev->hub_id);
    if (!hub) return refuse(w, {}, dev->id, "hub is deleted");
    if (!hub->enabled) return refuse(w, hub->id, dev->id, "hub is not ready");
    if (!dev->enabled) return refuse(w, hub->id, dev->id, "device is not enabled");
    const bool insecure = how != identified_by::certificate;
    if (insecure && !dev->allow_insecure)
        return refuse(w, hub->id, dev->id, "mutual TLS authentication is required");
    if (hub->plan == product_plan::plan_shared) {
        const bool v5 = c.version == mqtt::protocol_version::v5;
        const bool keeps_state = !c.clean_start || (v5 && c.props.session_expiry_interval.value_or(0) != 0);
        if (keeps_state)
            return refuse(w, hub->id, dev->id,
                          "service level: \"clean session\" flag is mandatory to connect to a shared hub");
    }

    broker::admission adm;
    adm.hub = hub->id;
    switch (how) {
    case identified_by::client_id:
        adm.client_id = dev->id;
        break;
    case identified_by::username:
        // Each connection its own client id when several are allowed; empty: one is assigned.
        adm.client_id = dev->allow_multiple_connections ? c.client_id : dev->id;
        break;
    case identified_by::certificate:
        if (c.client_id == dev->id || !dev->allow_multiple_connections) {
            adm.client_id = dev->id;
        } else if (is_uuid(c.client_id) && registry_.find_device(c.client_id)) {
            // Its own client id, but not another device's: that would take its session.
            return refuse(w, {}, {}, "the client id is the id of another device");
        } else {
            adm.client_id = c.client_id;
        }
        break;
    }
    adm.identity = make_identity(*hub, *dev, insecure);
    return adm;
}

broker::admission access::refuse_certificate(broker::worker& w, const mqtt::connect& c,
                                             const std::string& hub_id, const char* msg,
                                             const std::string& detail) {
    if (!hub_id.empty()) return refuse(w, hub_id, {}, msg, detail);
    device_ptr named;
    if (is_uuid(c.client_id)) named = registry_.find_device(c.client_id);
    if (!named && c.username && is_uuid(*c.username)) named = registry_.find_device(*c.username);
    if (named) return refuse(w, named->hub_id, named->id, msg, detail);
    return refuse(w, {}, {}, msg, detail);
}

broker::admission access::admit_certificate(broker::worker& w, const mqtt::connect& c,
                                            const broker::link_info& link) {
    const std::uint64_t now = clock_();
    const auto& chain = link.certificates;
    if (chain.size() > static_cast<std::size_t>(max_certificate_chain)) {
        return refuse_certificate(w, c, {}, "invalid device certificate",
                                  "certificate chain too long");
    }
    std::string why;
    const auto leaf = pki::parse_der(chain.front(), &why);
    if (!leaf) return refuse_certificate(w, c, {}, "invalid device certificate", why);

    // Revocation lists, as they are now: a CONNECT uses one set throughout.
    const pki::crl_set_ptr crls = crls_.load();
    const pki::crl_set* revocation = crls && !crls->empty() ? crls.get() : nullptr;

    // 1. The device's own certificate, issued or custom: only its dates and revocation are
    //    checked (a custom one need not chain to anything known).
    if (const auto dev = registry_.find_device_by_certificate(leaf->fingerprint)) {
        if (now < leaf->not_before_ms) {
            return refuse(w, dev->hub_id, dev->id, "invalid device certificate",
                          "certificate is not yet valid");
        }
        if (now > leaf->not_after_ms) {
            return refuse(w, dev->hub_id, dev->id, "invalid device certificate",
                          "certificate has expired");
        }
        // Its issuer, when a hub's CA (an issued certificate, or a custom one under a hub's
        // custom CA), proves a CRL is its own; else one the client sent that signed it.
        if (revocation != nullptr) {
            std::vector<std::string> issuers;
            for (const auto& ca : registry_.cas_with_subject(leaf->issuer_hash)) {
                for (auto& cert : pki::parse_pem_bundle(ca->cert_pem))
                    issuers.push_back(std::move(cert.der));
            }
            const std::vector<std::string> sent(chain.begin() + 1, chain.end());
            std::string revoked;
            if (revocation->revoked(chain.front(), issuers, sent, &revoked))
                return refuse(w, dev->hub_id, dev->id, "invalid device certificate", revoked);
        }
        return admit_device(w, c, dev, identified_by::certificate);
    }

    // 2. A chain one of the hubs' CAs verifies. The candidates are the CAs named as issuer
    //    by a certificate of the chain (an index lookup, not a walk over every hub).
    std::vector<hub_ca_ptr> candidates;
    auto consider = [&](std::uint32_t issuer_hash) {
        for (auto& ca : registry_.cas_with_subject(issuer_hash)) {
            const bool seen =
                std::any_of(candidates.begin(), candidates.end(),
                            [&](const hub_ca_ptr& x) { return x->hub_id == ca->hub_id; });
            if (!seen) candidates.push_back(std::move(ca));
        }
    };
    consider(leaf->issuer_hash);
    for (std::size_t i = 1; i < chain.size(); ++i) {
        if (const auto cert = pki::parse_der(chain[i])) consider(cert->issuer_hash);
    }
    if (candidates.empty()) {
        return refuse_certificate(w, c, {}, "invalid device certificate",
                                  "no hub's certificate authority issued it");
    }
    std::vector<hub_ca_ptr> verified;
    std::string failure;
    std::string failure_hub = candidates.front()->hub_id;
    bool revoked = false;
    for (const auto& ca : candidates) {
        const auto v =
            pki::verify_client_chain(chain, ca->cert_pem, now, max_certificate_chain, revocation);
        if (v.result == pki::verdict::ok) {
            verified.push_back(ca);
        } else if (failure.empty() || (v.result == pki::verdict::revoked && !revoked)) {
            // A revocation is the reason worth telling (to the hub whose CA it concerns),
            // whatever another CA said.
            failure = v.detail;
            revoked = v.result == pki::verdict::revoked;
            if (revoked) failure_hub = ca->hub_id;
        }
    }
    if (verified.empty()) {
        return refuse_certificate(w, c, failure_hub, "invalid device certificate", failure);
    }
    // iothub's own CAs identify devices by fingerprint only: a certificate they signed that
    // no device holds any more (renewed, deleted) is refused.
    std::vector<hub_ca_ptr> custom;
    for (const auto& ca : verified) {
        if (ca->custom) custom.push_back(ca);
    }
    if (custom.empty()) {
        // Its subject still names the device it was issued to (renewed since): the event
        // is about that device, so its operator sees the stale certificate.
        const auto& hub_id = verified.front()->hub_id;
        const auto dev = leaf->common_name.empty()
                             ? nullptr
                             : registry_.find_device_by_name(hub_id, leaf->common_name);
        return refuse(w, hub_id, dev ? dev->id : std::string(), "invalid device certificate",
                      "the certificate is no longer a device's (renewed or replaced)");
    }
    const std::string& name = leaf->common_name;
    if (name.empty()) {
        return refuse(w, custom.front()->hub_id, {}, "certificate common name cannot be empty");
    }
    for (const auto& ca : custom) {
        if (const auto dev = registry_.find_device_by_name(ca->hub_id, name))
            return admit_device(w, c, dev, identified_by::certificate);
    }

    // 3. Auto-provisioning: the first such hub (in hub id order) gets a device named after
    //    the certificate. Idempotent: admit runs again on the session's worker, and then
    //    finds the device by name above.
    for (const auto& ca : custom) {
        const auto hub = registry_.find_hub(ca->hub_id);
        if (!hub || !hub->has_custom_ca || !hub->enable_device_auto_provisioning) continue;
        if (!hub->enabled) return refuse(w, hub->id, {}, "hub is not ready");
        provisioned_device p;
        try {
            p = registry_.provision_device(hub->id, name, "auto-provisioned from " + link.peer);
        } catch (const registry_error& e) {
            return refuse(w, hub->id, {}, "could not identify device",
                          std::string("auto-provisioning failed: ") + e.what());
        } catch (const std::exception& e) {
            // The store failed: the device does not exist, the client may retry.
            return refuse(w, {}, {}, "could not identify device",
                          std::string("auto-provisioning failed: ") + e.what());
        }
        if (p.created) {
            hub_event e;
            e.severity = "info";
            e.object_id = p.device->id;
            e.msg = "device was auto-provisioned";
            e.extra = {{"object-name", name}, {"source-address", link.peer}};
            events_.publish(w, hub->id, std::move(e));
        }
        return admit_device(w, c, p.device, identified_by::certificate);
    }
    return refuse(w, custom.front()->hub_id, {}, "could not identify device");
}

void access::refused(broker::worker& w, const broker::client_identity& id, broker::refusal r,
                     std::string_view topic) {
    hub_event e;
    e.object_id = id.device_id;
    if (const char* text = refusal_text(r)) {
        e.msg = text;
    } else {
        e.msg = "unauthorized topic " + std::string(topic);
    }
    events_.publish(w, id.hub, std::move(e));
}

void access::connected(broker::worker& w, const broker::client_identity& id,
                       std::string_view client_id, std::string_view peer) {
    const auto now = clock_();
    {
        std::lock_guard lock(presence_mutex_);
        auto& p = presence_[id.device_id];
        p.hub_id = id.hub;
        if (p.connections++ == 0) ++connected_per_hub_[id.hub];
        p.last_activity_ms = now;
    }
    registry_.record_activity(id.device_id, now);
    hub_event e;
    e.severity = "info";
    e.object_id = id.device_id;
    e.msg = "device connected";
    e.extra = {{"client-id", std::string(client_id)}, {"source-address", std::string(peer)}};
    events_.publish(w, id.hub, std::move(e), true);
}

void access::disconnected(broker::worker& w, const broker::client_identity& id,
                          std::string_view client_id, std::string_view reason) {
    const auto now = clock_();
    {
        std::lock_guard lock(presence_mutex_);
        auto it = presence_.find(id.device_id);
        if (it != presence_.end() && it->second.connections > 0) {
            it->second.last_activity_ms = now;
            if (--it->second.connections == 0) {
                auto h = connected_per_hub_.find(it->second.hub_id);
                if (h != connected_per_hub_.end() && --h->second == 0) connected_per_hub_.erase(h);
            }
        }
    }
    registry_.record_activity(id.device_id, now);
    hub_event e;
    e.severity = "info";
    e.object_id = id.device_id;
    e.msg = "device disconnected";
    e.extra = {{"client-id", std::string(client_id)}, {"reason", std::string(reason)}};
    events_.publish(w, id.hub, std::move(e), true);
}

void access::protocol_error(broker::worker& w, const broker::client_identity& id,
                            std::string_view text) {
    hub_event e;
    e.object_id = id.device_id;
    e.msg = std::string(text);
    events_.publish(w, id.hub, std::move(e));
}

bool access::is_connected(std::string_view device_id) const {
    std::lock_guard lock(presence_mutex_);
    auto it = presence_.find(std::string(device_id));
    return it != presence_.end() && it->second.connections > 0;
}

std::uint64_t access::last_activity_ms(std::string_view device_id) const {
    std::lock_guard lock(presence_mutex_);
    auto it = presence_.find(std::string(device_id));
    return it == presence_.end() ? 0 : it->second.last_activity_ms;
}

std::uint64_t access::connected_devices(std::string_view hub_id) const {
    std::lock_guard lock(presence_mutex_);
    auto it = connected_per_hub_.find(std::string(hub_id));
    return it == connected_per_hub_.end() ? 0 : it->second;
}

void access::for_connections(std::string hub_id, std::string device_id,
                             std::function<void(broker::worker&, broker::connection&)> fn) {
    auto* d = broker_.get_dispatcher();
    if (d == nullptr) return;
    for (unsigned i = 0; i < broker_.worker_count(); ++i) {
        d->post_task(i, [hub_id, device_id, fn](broker::worker& w) {
            for (auto* c : w.connections()) {
                const auto& id = c->identity();
                if (!id || c->closing() || id->hub != hub_id) continue;
                if (!device_id.empty() && id->device_id != device_id) continue;
                fn(w, *c);
            }
        });
    }
}

void access::hub_changed(const hub_ptr& before, const hub_ptr& after) {
    if (!before) return;  // a new hub has no connections yet
    const char* reason = !after                           ? "hub is deleted"
                         : before->enabled && !after->enabled ? "hub is not ready"
                         : before->plan != after->plan        ? "hub product plan has changed"
                                                              : nullptr;
    if (reason != nullptr) {
        for_connections(before->id, {}, [this, reason](broker::worker& w, broker::connection& c) {
            hub_event e;
            e.object_type = "device";
            e.object_id = c.identity()->device_id;
            e.msg = reason;
            events_.publish(w, c.identity()->hub, std::move(e));
            c.close_with(mqtt::reason_code::not_authorized, reason);
        });
        if (!after) forget(before->id, {});
        return;
    }
    if (before->events_topic_prefix != after->events_topic_prefix || before->name != after->name) {
        // Rules derived from the hub (templates, the reserved events prefix) change.
        for_connections(before->id, {}, [this, after](broker::worker&, broker::connection& c) {
            if (auto dev = registry_.find_device(c.identity()->device_id))
                c.set_identity(make_identity(*after, *dev, c.identity()->insecure));
        });
    }
}

void access::device_changed(const device_ptr& before, const device_ptr& after) {
    if (!before) return;  // a new device has no connections yet
    auto hub = after ? registry_.find_hub(after->hub_id) : hub_ptr{};
    for_connections(before->hub_id, before->id,
                    [this, before, after, hub](broker::worker& w, broker::connection& c) {
        const auto& id = *c.identity();
        const char* reason = nullptr;
        if (!after) {
            reason = "device is deleted";
        } else if (!after->enabled) {
            reason = "device is not enabled";
        } else if (after->hub_id != before->hub_id || !hub ||
                   (id.insecure && !after->allow_insecure) ||
                   (before->allow_multiple_connections && !after->allow_multiple_connections) ||
                   before->certificate_fingerprint != after->certificate_fingerprint) {
            // A new certificate (renewed, custom, or deleted by a custom hub CA) ends every
            // connection of the device, which authenticates again.
            reason = "device security has changed, requires authentication";
        }
        if (reason != nullptr) {
            hub_event e;
            e.object_id = id.device_id;
            e.msg = reason;
            events_.publish(w, id.hub, std::move(e));
            c.close_with(mqtt::reason_code::not_authorized, reason);
            return;
        }
        c.set_identity(make_identity(*hub, *after, id.insecure));
    });
    if (!after || after->hub_id != before->hub_id) forget(before->hub_id, before->id);
}

void access::forget(const std::string& hub_id, const std::string& client_id) {
    auto* d = broker_.get_dispatcher();
    if (d == nullptr) return;
    // Posted after the tasks that close the connections, so those run first on each worker.
    for (unsigned i = 0; i < broker_.worker_count(); ++i) {
        d->post_task(i, [hub_id, client_id](broker::worker& w) {
            w.drop_sessions(hub_id, client_id);
            if (client_id.empty() && w.index() == 0) w.owner().clear_retained(w.owner().hub(hub_id));
        });
    }
}

}  // namespace iothub::hub
