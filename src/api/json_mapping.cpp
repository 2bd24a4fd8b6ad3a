#include "api/json_mapping.hpp"

#include <ctime>
#include <optional>
#include <utility>
#include <vector>

#include "api/errors.hpp"

namespace iothub::api {

using nlohmann::json;

namespace {

constexpr int max_body_depth = 64;
constexpr std::string_view never_active = "1970-01-01T00:00:00Z";

// Reads the fields of one JSON object, collecting an argument_error for every field of
// the wrong type instead of stopping at the first. A null field counts as absent.
class field_reader {
public:
    field_reader(const json& obj, std::string prefix, std::vector<hub::argument_error>& errors)
        : obj_(obj), prefix_(std::move(prefix)), errors_(errors) {}

    const json* find(const char* name) const {
        if (!obj_.is_object()) return nullptr;
        const auto it = obj_.find(name);
        if (it == obj_.end() || it->is_null()) return nullptr;
        return &*it;
    }

    std::string path(const char* name) const { return prefix_ + name; }

    void wrong(const char* name, std::string help, std::string reason = "format") {
        errors_.push_back({path(name), std::move(reason), std::move(help)});
    }

    std::optional<std::string> string(const char* name) {
        const json* v = find(name);
        if (v == nullptr) return std::nullopt;
        if (!v->is_string()) {
            wrong(name, "must be a string");
            return std::nullopt;
        }
        return v->get<std::string>();
    }

    std::optional<bool> boolean(const char* name) {
        const json* v = find(name);
        if (v == nullptr) return std::nullopt;
        if (!v->is_boolean()) {
            wrong(name, "must be true or false");
            return std::nullopt;
        }
        return v->get<bool>();
    }

    // An object field; absent gives null, wrong type records an error and gives null.
    const json* object(const char* name) {
        const json* v = find(name);
        if (v == nullptr) return nullptr;
        if (!v->is_object()) {
            wrong(name, "must be an object");
            return nullptr;
        }
        return v;
    }

    std::optional<std::string> uuid(const char* name) {
        auto s = string(name);
        if (s && !s->empty() && !hub::is_uuid(*s)) {
            wrong(name, "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
            return std::nullopt;
        }
        return s;
    }

    std::optional<hub::product_plan> plan(const char* name) {
        auto s = string(name);
        if (!s) return std::nullopt;
        auto p = hub::parse_product_plan(*s);
        if (!p) {
            wrong(name, "must be one of plan_shared, plan_dedicated, plan_ha");
            return std::nullopt;
        }
        return p;
    }

    // twins_graphite_config: {push_uri: string}
    std::optional<std::string> graphite(const char* name) {
        const json* o = object(name);
        if (o == nullptr) return std::nullopt;
        field_reader inner(*o, path(name) + ".", errors_);
        return inner.string("push_uri");
    }

    std::vector<hub::argument_error>& errors() { return errors_; }

private:
    const json& obj_;
    std::string prefix_;
    std::vector<hub::argument_error>& errors_;
};

void throw_if_any(std::vector<hub::argument_error>& errors) {
    if (errors.empty()) return;
    std::string message = "invalid argument(s):";
    for (std::size_t i = 0; i < errors.size(); ++i) {
        message += (i == 0 ? " " : "; ") + errors[i].argument_name + " " + errors[i].help_message;
    }
    hub::registry_error e(hub::error_kind::invalid_arguments, message);
    e.details = std::move(errors);
    throw e;
}

void parse_rule(field_reader& parent, const char* name, hub::filter_rule& rule) {
    const json* o = parent.object(name);
    if (o == nullptr) return;
    field_reader r(*o, parent.path(name) + ".", parent.errors());
    if (auto policy = r.string("policy")) {
        if (auto p = hub::parse_filter_policy(*policy); p && *p != hub::filter_policy::unknown) {
            rule.policy = *p;
        } else {
            r.wrong("policy", "must be accept or reject");
        }
    }
    if (const json* topics = r.find("topics")) {
        if (!topics->is_array()) {
            r.wrong("topics", "must be an array of strings");
            return;
        }
        std::vector<std::string> list;
        list.reserve(topics->size());
        for (const auto& t : *topics) {
            if (!t.is_string()) {
                r.wrong("topics", "must be an array of strings");
                return;
            }
            list.push_back(t.get<std::string>());
        }
        rule.topics = std::move(list);
    }
}

std::optional<hub::message_filters> parse_filters(field_reader& body,
                                                  const hub::message_filters& base) {
    const json* o = body.object("message_filters");
    if (o == nullptr) return std::nullopt;
    field_reader f(*o, "message_filters.", body.errors());
    hub::message_filters out = base;
    parse_rule(f, "publish", out.publish);
    parse_rule(f, "subscribe", out.subscribe);
    return out;
}

json rule_to_json(const hub::filter_rule& r) {
    return json{{"policy", std::string(hub::to_string(r.policy))}, {"topics", r.topics}};
}

}  // namespace

std::string format_time(std::uint64_t unix_ms) {
    const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[40];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[64];
    std::snprintf(out, sizeof out, "%.*s.%03uZ", static_cast<int>(n), buf,
                  static_cast<unsigned>(unix_ms % 1000));
    return out;
}

json hub_to_json(const hub::hub_view& v, const resource_context& ctx) {
    const hub::hub_record& h = *v.hub;
    json j{
        {"id", h.id},
        {"name", h.name},
        {"status", std::string(hub::to_string(v.status))},
        {"product_plan", std::string(hub::to_string(h.plan))},
        {"enabled", h.enabled},
        {"device_count", v.device_count},
        {"connected_device_count", v.connected_device_count},
        {"endpoint", ctx.endpoint},
        {"disable_events", h.disable_events},
        {"events_topic_prefix", h.events_topic_prefix},
        {"region", ctx.region},
        {"created_at", format_time(h.created_at_ms)},
        {"updated_at", format_time(h.updated_at_ms)},
        {"project_id", h.project_id},
        {"organization_id", h.organization_id},
        {"enable_device_auto_provisioning", h.enable_device_auto_provisioning},
        {"has_custom_ca", h.has_custom_ca},
        {"presence_events", h.presence_events},
    };
    if (h.twins_graphite_push_uri) {
        j["twins_graphite_config"] = json{{"push_uri", *h.twins_graphite_push_uri}};
    }
    return j;
}

json device_to_json(const hub::device_view& v, const resource_context& ctx) {
    const hub::device_record& d = *v.device;
    return json{
        {"id", d.id},
        {"name", d.name},
        {"description", d.description},
        {"status", std::string(hub::to_string(d.enabled ? hub::device_status::enabled
                                                        : hub::device_status::disabled))},
        {"hub_id", d.hub_id},
        {"last_activity_at", v.last_activity_at_ms == 0 ? std::string(never_active)
                                                        : format_time(v.last_activity_at_ms)},
        {"is_connected", v.is_connected},
        {"allow_insecure", d.allow_insecure},
        {"allow_multiple_connections", d.allow_multiple_connections},
        {"message_filters", json{{"publish", rule_to_json(d.filters.publish)},
                                 {"subscribe", rule_to_json(d.filters.subscribe)}}},
        {"has_custom_certificate", d.has_custom_certificate},
        {"created_at", format_time(d.created_at_ms)},
        {"updated_at", format_time(d.updated_at_ms)},
        {"region", ctx.region},
    };
}

json parse_body(std::string_view body) {
    // The parser is iterative, but a value nested a million levels deep is no request of
    // this API: refuse it before building it.
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    bool blank = true;
    for (const char c : body) {
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') blank = false;
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_body_depth) {
                throw invalid_argument("body", "format", "JSON nested deeper than 64 levels");
            }
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    if (blank) return json::object();
    json j;
    try {
        j = json::parse(body.begin(), body.end());
    } catch (const json::exception& e) {
        throw invalid_argument("body", "format", std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw invalid_argument("body", "format", "must be a JSON object");
    return j;
}

hub::hub_create parse_hub_create(const json& body) {
    std::vector<hub::argument_error> errors;
    field_reader r(body, "", errors);
    hub::hub_create req;
    if (auto v = r.string("name")) req.name = std::move(*v);
    if (auto v = r.uuid("project_id")) req.project_id = std::move(*v);
    if (auto v = r.plan("product_plan")) req.plan = *v;
    req.disable_events = r.boolean("disable_events");
    req.events_topic_prefix = r.string("events_topic_prefix");
    req.presence_events = r.boolean("presence_events");
    req.twins_graphite_push_uri = r.graphite("twins_graphite_config");
    throw_if_any(errors);
    return req;
}

hub::hub_update parse_hub_update(const json& body) {
    std::vector<hub::argument_error> errors;
    field_reader r(body, "", errors);
    hub::hub_update req;
    req.name = r.string("name");
    // plan_unknown is the SDK's "not set": the plan stays.
    if (auto p = r.plan("product_plan"); p && *p != hub::product_plan::plan_unknown) req.plan = p;
    req.disable_events = r.boolean("disable_events");
    req.events_topic_prefix = r.string("events_topic_prefix");
    req.enable_device_auto_provisioning = r.boolean("enable_device_auto_provisioning");
    req.presence_events = r.boolean("presence_events");
    req.twins_graphite_push_uri = r.graphite("twins_graphite_config");
    throw_if_any(errors);
    return req;
}

hub::device_create parse_device_create(const json& body) {
    std::vector<hub::argument_error> errors;
    field_reader r(body, "", errors);
    hub::device_create req;
    if (r.find("hub_id") == nullptr) {
        r.wrong("hub_id", "the hub of the device is required", "required");
    } else if (auto v = r.uuid("hub_id")) {
        if (v->empty()) {
            r.wrong("hub_id", "the hub of the device is required", "required");
        } else {
            req.hub_id = std::move(*v);
        }
    }
    if (auto v = r.string("name")) req.name = std::move(*v);
    if (auto v = r.string("description")) req.description = std::move(*v);
    if (auto v = r.boolean("allow_insecure")) req.allow_insecure = *v;
    if (auto v = r.boolean("allow_multiple_connections")) req.allow_multiple_connections = *v;
    req.filters = parse_filters(r, hub::message_filters{});
    throw_if_any(errors);
    return req;
}

hub::device_update parse_device_update(const json& body, const hub::message_filters& current) {
    std::vector<hub::argument_error> errors;
    field_reader r(body, "", errors);
    hub::device_update req;
    req.description = r.string("description");
    req.allow_insecure = r.boolean("allow_insecure");
    req.allow_multiple_connections = r.boolean("allow_multiple_connections");
    req.filters = parse_filters(r, current);
    if (auto v = r.uuid("hub_id"); v && !v->empty()) req.hub_id = std::move(*v);
    throw_if_any(errors);
    return req;
}

hub_ca_request parse_set_hub_ca(const json& body) {
    std::vector<hub::argument_error> errors;
    field_reader r(body, "", errors);
    hub_ca_request req;
    if (auto v = r.string("ca_cert_pem")) req.ca_cert_pem = std::move(*v);
    if (auto v = r.string("challenge_cert_pem")) req.challenge_cert_pem = std::move(*v);
    throw_if_any(errors);
    return req;
}

std::string parse_set_device_certificate(const json& body) {
    std::vector<hub::argument_error> errors;
    field_reader r(body, "", errors);
    std::string pem;
    if (auto v = r.string("certificate_pem")) pem = std::move(*v);
    throw_if_any(errors);
    return pem;
}

json credentials_to_json(const hub::device_credentials& c) {
    return json{{"crt", c.crt}, {"key", c.key}};
}

}  // namespace iothub::api
