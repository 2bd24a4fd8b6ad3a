#include "api/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <nlohmann/json.hpp>

#include "api/errors.hpp"
#include "api/json_mapping.hpp"
#include "api/keys.hpp"
#include "hub/registry.hpp"
#include "store/registry_store.hpp"

namespace iothub::api {

using nlohmann::json;

// ---------------------------------------------------------------------------------------
// Small text helpers.

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            unsigned v = 0;
            const auto* first = s.data() + i + 1;
            const auto r = std::from_chars(first, first + 2, v, 16);
            if (r.ec != std::errc{} || r.ptr != first + 2) return std::nullopt;
            out.push_back(static_cast<char>(v));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const std::string_view part = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        if (part.empty()) continue;
        const auto eq = part.find('=');
        auto key = percent_decode(part.substr(0, eq), true);
        auto value = percent_decode(
            eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1), true);
        if (!key || !value) return std::nullopt;
        out.emplace_back(std::move(*key), std::move(*value));
    }
    return out;
}

std::string to_text(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------
// token_cache

token_cache::token_cache(store::registry_store& db, std::chrono::seconds ttl, clock_fn clock)
    : db_(db),
      ttl_(ttl),
      clock_(clock ? std::move(clock) : [] { return std::chrono::steady_clock::now(); }) {}

std::optional<std::string> token_cache::project_of(std::string_view secret) {
    const std::string hash = hash_secret(secret);
    const auto now = clock_();
    {
        std::lock_guard lock(mutex_);
        if (const auto it = entries_.find(hash); it != entries_.end()) {
            if (it->second.expires > now) return it->second.project_id;
            entries_.erase(it);
        }
    }
    // Unknown secrets are not remembered: the next request with a key created meanwhile
    // must work, and remembering misses would let anyone grow the cache.
    auto row = db_.find_api_key_by_hash(hash);
    if (!row) return std::nullopt;
    std::lock_guard lock(mutex_);
    if (entries_.size() >= 4096) entries_.clear();  // only valid keys get here: rare
    entries_[hash] = entry{row->project_id, now + ttl_};
    return row->project_id;
}

// ---------------------------------------------------------------------------------------
// Routing table.

namespace {

enum class op {
    list_hubs,
    create_hub,
    get_hub,
    update_hub,
    delete_hub,
    enable_hub,
    disable_hub,
    list_devices,
    create_device,
    get_device,
    update_device,
    delete_device,
    enable_device,
    disable_device,
    get_hub_ca,
    set_hub_ca,
    get_device_certificate,
    set_device_certificate,
    renew_device_certificate,
    server_ca,  // extension, public: the CA of the MQTT server's TLS certificate
    later,      // an operation of the IoT API not implemented yet: 501
};

struct route {
    std::string_view method;
    std::array<std::string_view, 4> pattern;  // "{…}" matches one segment; "" ends it
    op what;
    std::string_view feature;  // for op::later
};

// Every path of the IoT API v1 (api.gen.js of @scaleway/sdk-iot), after
// /iot/v1/regions/{region}/.
constexpr route routes[] = {
    {"GET", {"hubs"}, op::list_hubs, ""},
    {"POST", {"hubs"}, op::create_hub, ""},
    {"GET", {"hubs", "{hub_id}"}, op::get_hub, ""},
    {"PATCH", {"hubs", "{hub_id}"}, op::update_hub, ""},
    {"DELETE", {"hubs", "{hub_id}"}, op::delete_hub, ""},
    {"POST", {"hubs", "{hub_id}", "enable"}, op::enable_hub, ""},
    {"POST", {"hubs", "{hub_id}", "disable"}, op::disable_hub, ""},
    {"GET", {"hubs", "{hub_id}", "metrics"}, op::later, "hub metrics (GetHubMetrics)"},
    {"POST", {"hubs", "{hub_id}", "ca"}, op::set_hub_ca, ""},
    {"GET", {"hubs", "{hub_id}", "ca"}, op::get_hub_ca, ""},
    {"GET", {"devices"}, op::list_devices, ""},
    {"POST", {"devices"}, op::create_device, ""},
    {"GET", {"devices", "{device_id}"}, op::get_device, ""},
    {"PATCH", {"devices", "{device_id}"}, op::update_device, ""},
    {"DELETE", {"devices", "{device_id}"}, op::delete_device, ""},
    {"POST", {"devices", "{device_id}", "enable"}, op::enable_device, ""},
    {"POST", {"devices", "{device_id}", "disable"}, op::disable_device, ""},
    {"POST", {"devices", "{device_id}", "renew-certificate"}, op::renew_device_certificate, ""},
    {"PUT", {"devices", "{device_id}", "certificate"}, op::set_device_certificate, ""},
    {"GET", {"devices", "{device_id}", "certificate"}, op::get_device_certificate, ""},
    {"GET", {"devices", "{device_id}", "metrics"}, op::later, "device metrics (GetDeviceMetrics)"},
    {"GET", {"routes"}, op::later, "routes (ListRoutes)"},
    {"POST", {"routes"}, op::later, "routes (CreateRoute)"},
    {"GET", {"routes", "{route_id}"}, op::later, "routes (GetRoute)"},
    {"PATCH", {"routes", "{route_id}"}, op::later, "routes (UpdateRoute)"},
    {"DELETE", {"routes", "{route_id}"}, op::later, "routes (DeleteRoute)"},
    {"GET", {"networks"}, op::later, "networks (ListNetworks)"},
    {"POST", {"networks"}, op::later, "networks (CreateNetwork)"},
    {"GET", {"networks", "{network_id}"}, op::later, "networks (GetNetwork)"},
    {"DELETE", {"networks", "{network_id}"}, op::later, "networks (DeleteNetwork)"},
    {"GET", {"twins", "{twin_id}"}, op::later, "cloud twins (ListTwinDocuments)"},
    {"DELETE", {"twins", "{twin_id}"}, op::later, "cloud twins (DeleteTwinDocuments)"},
    {"GET",
     {"twins", "{twin_id}", "documents", "{document_name}"},
     op::later,
     "cloud twins (GetTwinDocument)"},
    {"PUT",
     {"twins", "{twin_id}", "documents", "{document_name}"},
     op::later,
     "cloud twins (PutTwinDocument)"},
    {"PATCH",
     {"twins", "{twin_id}", "documents", "{document_name}"},
     op::later,
     "cloud twins (PatchTwinDocument)"},
    {"DELETE",
     {"twins", "{twin_id}", "documents", "{document_name}"},
     op::later,
     "cloud twins (DeleteTwinDocument)"},
    // Not in the IoT API: the server CA, which Scaleway publishes as a file instead.
    {"GET", {"server-ca"}, op::server_ca, ""},
};

bool matches(const route& r, const std::vector<std::string>& segs) {
    std::size_t n = 0;
    while (n < r.pattern.size() && !r.pattern[n].empty()) ++n;
    if (n != segs.size()) return false;
    for (std::size_t i = 0; i < n; ++i) {
        const auto p = r.pattern[i];
        if (p.front() == '{') {
            if (segs[i].empty()) return false;
        } else if (p != segs[i]) {
            return false;
        }
    }
    return true;
}

constexpr std::string_view prefix = "/iot/v1/regions/";

constexpr std::array<std::string_view, 10> hub_orders = {
    "name_asc",          "name_desc",      "status_asc",      "status_desc",    "product_plan_asc",
    "product_plan_desc", "created_at_asc", "created_at_desc", "updated_at_asc", "updated_at_desc"};
constexpr std::array<std::string_view, 12> device_orders = {
    "name_asc",       "name_desc",       "status_asc",         "status_desc",
    "hub_id_asc",     "hub_id_desc",     "created_at_asc",     "created_at_desc",
    "updated_at_asc", "updated_at_desc", "allow_insecure_asc", "allow_insecure_desc"};

response json_reply(unsigned status, const json& body) {
    return response{status, to_text(body), {}};
}

response error_response(const error_reply& e) {
    return json_reply(e.status, e.body);
}

// What a handler works with: the caller's scope, the path's ids, the query.
struct context {
    hub::registry& reg;
    const resource_context& res;
    hub::scope sc;
    std::string id;  // the {hub_id} / {device_id} of the path, if any
    std::vector<std::pair<std::string, std::string>> query;
    const std::string& body;

    const std::string* param(std::string_view name) const {
        const std::string* found = nullptr;
        for (const auto& [k, v] : query) {
            if (k == name) found = &v;  // the last one wins
        }
        return found;
    }

    std::optional<bool> bool_param(std::string_view name) const {
        const std::string* v = param(name);
        if (v == nullptr || v->empty()) return std::nullopt;
        if (*v == "true" || *v == "1") return true;
        if (*v == "false" || *v == "0") return false;
        throw invalid_argument(std::string(name), "format", "must be true or false");
    }

    template <std::size_t N>
    hub::paging paging(const std::array<std::string_view, N>& orders) const {
        hub::paging p;
        auto number = [&](std::string_view name, std::uint32_t& out, std::uint32_t lo,
                          std::uint32_t hi) {
            const std::string* v = param(name);
            if (v == nullptr || v->empty()) return;
            std::uint32_t n = 0;
            const auto r = std::from_chars(v->data(), v->data() + v->size(), n);
            if (r.ec != std::errc{} || r.ptr != v->data() + v->size()) {
                throw invalid_argument(std::string(name), "format", "must be a whole number");
            }
            if (n < lo || n > hi) {
                throw invalid_argument(
                    std::string(name), "constraint",
                    "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
            }
            out = n;
        };
        number("page", p.page, 1, 1'000'000'000);
        number("page_size", p.page_size, 1, 100);
        if (const std::string* o = param("order_by"); o != nullptr && !o->empty()) {
            if (std::find(orders.begin(), orders.end(), *o) == orders.end()) {
                std::string help = "must be one of";
                for (std::size_t i = 0; i < N; ++i)
                    help += (i ? ", " : " ") + std::string(orders[i]);
                throw invalid_argument("order_by", "format", help);
            }
            p.order_by = *o;
        }
        return p;
    }

    std::optional<std::string> uuid_param(std::string_view name) const {
        const std::string* v = param(name);
        if (v == nullptr || v->empty()) return std::nullopt;
        if (!hub::is_uuid(*v)) {
            throw invalid_argument(std::string(name), "format",
                                   "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
        }
        return *v;
    }
};

quota_info hub_quota(const context& c, const std::string& project_id) {
    hub::hub_filter f;
    f.project_id = project_id;
    hub::paging p;
    p.page_size = 1;
    const auto n = c.reg.list_hubs(c.sc, f, p).total_count;
    return quota_info{"hubs", n, n, project_id};
}

quota_info device_quota(const context& c, const std::string& hub_id) {
    hub::device_filter f;
    f.hub_id = hub_id;
    hub::paging p;
    p.page_size = 1;
    const auto n = c.reg.list_devices(c.sc, f, p).total_count;
    return quota_info{"devices", n, n, c.sc.project_id};
}

// quotas_exceeded from the registry, with the numbers the SDK wants filled in.
[[noreturn]] void rethrow_quota(const hub::registry_error& e,
                                const std::function<quota_info()>& info) {
    std::optional<quota_info> q;
    try {
        q = info();
    } catch (...) {
        // Without the numbers the body carries only the message.
    }
    throw api_failure(map_registry_error(e, "write", q ? &*q : nullptr));
}

response list_hubs(context& c) {
    hub::hub_filter f;
    f.project_id = c.uuid_param("project_id");
    f.organization_id = c.uuid_param("organization_id");
    if (const std::string* n = c.param("name"); n != nullptr && !n->empty()) f.name = *n;
    const auto page = c.reg.list_hubs(c.sc, f, c.paging(hub_orders));
    json hubs = json::array();
    for (const auto& v : page.items) hubs.push_back(hub_to_json(v, c.res));
    return json_reply(200, json{{"total_count", page.total_count}, {"hubs", std::move(hubs)}});
}

response create_hub(context& c) {
    const auto req = parse_hub_create(parse_body(c.body));
    try {
        return json_reply(200, hub_to_json(c.reg.create_hub(c.sc, req), c.res));
    } catch (const hub::registry_error& e) {
        if (e.kind != hub::error_kind::quotas_exceeded) throw;
        rethrow_quota(e, [&] {
            return hub_quota(c, req.project_id.empty() ? c.sc.project_id : req.project_id);
        });
    }
}

response list_devices(context& c) {
    hub::device_filter f;
    f.hub_id = c.uuid_param("hub_id");
    if (const std::string* n = c.param("name"); n != nullptr && !n->empty()) f.name = *n;
    f.allow_insecure = c.bool_param("allow_insecure");
    if (const std::string* s = c.param("status"); s != nullptr && !s->empty()) {
        f.status = hub::parse_device_status(*s);
        if (!f.status) {
            throw invalid_argument("status", "format",
                                   "must be one of unknown, error, enabled, disabled");
        }
    }
    const auto page = c.reg.list_devices(c.sc, f, c.paging(device_orders));
    json devices = json::array();
    for (const auto& v : page.items) devices.push_back(device_to_json(v, c.res));
    return json_reply(200,
                      json{{"total_count", page.total_count}, {"devices", std::move(devices)}});
}

// {device, certificate?}: the answer of CreateDevice and RenewDeviceCertificate. The
// certificate is left out on a hub with a custom CA.
json created_to_json(const hub::device_created& d, const resource_context& res) {
    json j{{"device", device_to_json(d, res)}};
    if (d.certificate) j["certificate"] = credentials_to_json(*d.certificate);
    return j;
}

json certificate_to_json(const hub::device_certificate_view& v, const resource_context& res) {
    return json{{"device", device_to_json(v.device, res)}, {"certificate_pem", v.certificate_pem}};
}

response create_device(context& c) {
    const auto req = parse_device_create(parse_body(c.body));
    try {
        return json_reply(200, created_to_json(c.reg.create_device(c.sc, req), c.res));
    } catch (const hub::registry_error& e) {
        if (e.kind != hub::error_kind::quotas_exceeded) throw;
        rethrow_quota(e, [&] { return device_quota(c, req.hub_id); });
    }
}

response update_device(context& c) {
    const json body = parse_body(c.body);
    hub::message_filters current;
    if (body.contains("message_filters")) {
        // Rules left out of message_filters keep their value.
        current = c.reg.get_device(c.sc, c.id).device->filters;
    }
    const auto req = parse_device_update(body, current);
    try {
        return json_reply(200, device_to_json(c.reg.update_device(c.sc, c.id, req), c.res));
    } catch (const hub::registry_error& e) {
        if (e.kind != hub::error_kind::quotas_exceeded || !req.hub_id) throw;
        rethrow_quota(e, [&] { return device_quota(c, *req.hub_id); });
    }
}

response run(op what, context& c) {
    switch (what) {
    case op::list_hubs:
        return list_hubs(c);
    case op::create_hub:
        return create_hub(c);
    case op::get_hub:
        return json_reply(200, hub_to_json(c.reg.get_hub(c.sc, c.id), c.res));
    case op::update_hub: {
        const auto req = parse_hub_update(parse_body(c.body));
        return json_reply(200, hub_to_json(c.reg.update_hub(c.sc, c.id, req), c.res));
    }
    case op::delete_hub: {
        const bool delete_devices = c.bool_param("delete_devices").value_or(false);
        c.reg.delete_hub(c.sc, c.id, delete_devices);
        return response{204, {}, {}};
    }
    case op::enable_hub:
        return json_reply(200, hub_to_json(c.reg.enable_hub(c.sc, c.id), c.res));
    case op::disable_hub:
        return json_reply(200, hub_to_json(c.reg.disable_hub(c.sc, c.id), c.res));
    case op::list_devices:
        return list_devices(c);
    case op::create_device:
        return create_device(c);
    case op::get_device:
        return json_reply(200, device_to_json(c.reg.get_device(c.sc, c.id), c.res));
    case op::update_device:
        return update_device(c);
    case op::delete_device:
        c.reg.delete_device(c.sc, c.id);
        return response{204, {}, {}};
    case op::enable_device:
        return json_reply(200, device_to_json(c.reg.enable_device(c.sc, c.id), c.res));
    case op::disable_device:
        return json_reply(200, device_to_json(c.reg.disable_device(c.sc, c.id), c.res));
    case op::get_hub_ca:
        return json_reply(200, json{{"ca_cert_pem", c.reg.get_hub_ca(c.sc, c.id)}});
    case op::set_hub_ca: {
        const auto req = parse_set_hub_ca(parse_body(c.body));
        return json_reply(
            200, hub_to_json(c.reg.set_hub_ca(c.sc, c.id, req.ca_cert_pem, req.challenge_cert_pem),
                             c.res));
    }
    case op::get_device_certificate:
        return json_reply(200,
                          certificate_to_json(c.reg.get_device_certificate(c.sc, c.id), c.res));
    case op::set_device_certificate: {
        const auto pem = parse_set_device_certificate(parse_body(c.body));
        return json_reply(
            200, certificate_to_json(c.reg.set_device_certificate(c.sc, c.id, pem), c.res));
    }
    case op::renew_device_certificate:
        return json_reply(200, created_to_json(c.reg.renew_device_certificate(c.sc, c.id), c.res));
    case op::server_ca:
    case op::later:
        break;
    }
    return error_response(internal_error());
}

}  // namespace

// ---------------------------------------------------------------------------------------
// router

router::router(hub::registry& reg, store::registry_store& keys, api_options options)
    : reg_(reg), options_(std::move(options)), tokens_(keys, std::chrono::seconds(30)) {}

response router::handle(const request& req) noexcept {
    try {
        try {
            return dispatch(req);
        } catch (const api_failure& f) {
            return error_response(f.reply);
        } catch (const hub::registry_error& e) {
            return error_response(map_registry_error(e, req.method == "GET" ? "read" : "write"));
        } catch (const std::exception& e) {
            spdlog::error("api: {} {}: {}", req.method, req.target, e.what());
            return error_response(internal_error());
        }
    } catch (...) {
        // Even building the error failed (out of memory): a fixed answer.
        return response{500, R"({"message":"internal server error","type":"internal_error"})", {}};
    }
}

response router::dispatch(const request& req) {
    const std::string_view target = req.target;
    const auto qpos = target.find('?');
    const std::string_view path = target.substr(0, qpos);
    const std::string_view query =
        qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);

    if (path.substr(0, prefix.size()) != prefix) {
        return error_response(not_found_path(req.method, path));
    }
    // Segments after the prefix: {region}/rest…; a single trailing slash is tolerated.
    std::vector<std::string> segs;
    {
        std::string_view rest = path.substr(prefix.size());
        if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
        while (true) {
            const auto slash = rest.find('/');
            auto seg = percent_decode(rest.substr(0, slash), false);
            if (!seg) {
                return error_response(map_registry_error(
                    invalid_argument("path", "format", "bad %-escape in the path")));
            }
            segs.push_back(std::move(*seg));
            if (slash == std::string_view::npos) break;
            rest = rest.substr(slash + 1);
        }
    }
    const std::string region = segs.front();
    segs.erase(segs.begin());

    const route* found = nullptr;
    std::string allowed;
    for (const auto& r : routes) {
        if (!matches(r, segs)) continue;
        if (!allowed.empty()) allowed += ", ";
        allowed += r.method;
        if (r.method == req.method) found = &r;
    }
    if (allowed.empty()) return error_response(not_found_path(req.method, path));
    if (region != options_.region) return error_response(wrong_region(region, options_.region));
    if (found == nullptr) {
        auto r = error_response(method_not_allowed(req.method, path));
        r.headers.emplace_back("Allow", allowed);
        return r;
    }

    // Public: what devices need to verify the server.
    if (found->what == op::server_ca) {
        if (options_.server_ca_pem.empty()) {
            return json_reply(404, json{{"type", "not_found"},
                                        {"message",
                                         "this server has no server CA: its TLS "
                                         "certificate comes from its configuration"},
                                        {"resource", "server_ca"},
                                        {"resource_id", ""}});
        }
        return json_reply(200, json{{"ca_cert_pem", options_.server_ca_pem}});
    }

    // Who is calling.
    if (!req.token || req.token->empty() || !hub::is_uuid(*req.token)) {
        return error_response(denied_authentication("invalid_argument"));
    }
    auto project = tokens_.project_of(*req.token);
    if (!project) return error_response(denied_authentication("not_found"));

    if (found->what == op::later) return error_response(not_implemented(found->feature));

    resource_context res{options_.region, options_.endpoint};
    auto q = parse_query(query);
    if (!q) {
        return error_response(
            map_registry_error(invalid_argument("query", "format", "bad %-escape in the query")));
    }
    context c{reg_, res, hub::scope{std::move(*project)}, {}, std::move(*q), req.body};
    if (segs.size() >= 2) {
        const std::string_view name = found->pattern[1];  // "{hub_id}" | "{device_id}"
        if (!hub::is_uuid(segs[1])) {
            const std::string arg(name.substr(1, name.size() - 2));
            return error_response(map_registry_error(invalid_argument(
                arg, "format", "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")));
        }
        c.id = segs[1];
    }
    try {
        return run(found->what, c);
    } catch (const hub::registry_error& e) {
        hub::registry_error named = e;
        if (named.resource.empty()) named.resource = segs[0] == "hubs" ? "hub" : "device";
        return error_response(map_registry_error(named, req.method == "GET" ? "read" : "write"));
    }
}

}  // namespace iothub::api
