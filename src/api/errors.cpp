#include "api/errors.hpp"

#include <string>

namespace iothub::api {

using nlohmann::json;

namespace {

std::string or_default(const std::string& s, std::string_view fallback) {
    return s.empty() ? std::string(fallback) : s;
}

}  // namespace

error_reply map_registry_error(const hub::registry_error& e, std::string_view action,
                               const quota_info* quota) {
    const std::string message = e.what();
    switch (e.kind) {
    case hub::error_kind::not_found:
        // ResourceNotFoundError needs `resource` and `resource_id` (strings).
        return {404, json{{"type", "not_found"},
                          {"message", or_default(message, "resource is not found")},
                          {"resource", e.resource},
                          {"resource_id", e.resource_id}}};
    case hub::error_kind::invalid_arguments: {
        // InvalidArgumentsError needs `details: [{argument_name, reason, help_message?}]`.
        json details = json::array();
        for (const auto& d : e.details) {
            details.push_back(json{{"argument_name", d.argument_name},
                                   {"reason", d.reason.empty() ? "constraint" : d.reason},
                                   {"help_message", d.help_message}});
        }
        return {400, json{{"type", "invalid_arguments"},
                          {"message", or_default(message, "invalid argument(s)")},
                          {"details", std::move(details)}}};
    }
    case hub::error_kind::precondition_failed:
        // PreconditionFailedError needs `precondition` and `help_message`.
        return {412, json{{"type", "precondition_failed"},
                          {"message", or_default(message, "precondition failed")},
                          {"precondition", or_default(e.precondition, "precondition_failed")},
                          {"help_message", or_default(e.help_message, message)}}};
    case hub::error_kind::permissions_denied:
        // PermissionsDeniedError needs `details: [{resource, action}]`.
        return {403, json{{"type", "permissions_denied"},
                          {"message", or_default(message, "insufficient permissions")},
                          {"details", json::array({json{{"resource", or_default(e.resource, "iot")},
                                                        {"action", std::string(action)}}})}}};
    case hub::error_kind::already_exists:
        // AlreadyExistsError needs `resource`, `resource_id` and `help_message`.
        return {409, json{{"type", "already_exists"},
                          {"message", or_default(message, "resource already exists")},
                          {"resource", e.resource},
                          {"resource_id", e.resource_id},
                          {"help_message",
                           or_default(e.help_message, "choose another name; " + e.resource +
                                                          " names are unique in their scope")}}};
    case hub::error_kind::quotas_exceeded: {
        // QuotasExceededError needs `details: [{resource, quota, current}]` (numbers), and
        // names the scope from `project_id`. Without the numbers the SDK would print an
        // empty list, so the body then has no details and the SDK shows the message.
        json body{{"type", "quotas_exceeded"}, {"message", or_default(message, "quota exceeded")}};
        if (!e.resource.empty()) body["resource"] = e.resource;
        if (quota != nullptr) {
            json d{{"resource", quota->resource},
                   {"quota", quota->quota},
                   {"current", quota->current}};
            if (!quota->project_id.empty()) d["project_id"] = quota->project_id;
            body["details"] = json::array({std::move(d)});
        }
        return {403, std::move(body)};
    }
    }
    return internal_error();
}

hub::registry_error invalid_argument(std::string argument, std::string reason, std::string help) {
    hub::registry_error e(hub::error_kind::invalid_arguments,
                          "invalid argument " + argument + ": " + help);
    e.details.push_back({std::move(argument), std::move(reason), std::move(help)});
    return e;
}

error_reply not_found_path(std::string_view method, std::string_view path) {
    return {404, json{{"type", "not_found"},
                      {"message",
                       "no such API path: " + std::string(method) + " " + std::string(path)}}};
}

error_reply wrong_region(std::string_view asked, std::string_view served) {
    return {404, json{{"type", "not_found"},
                      {"message", "region " + std::string(asked) +
                                      " is not served here; this server serves region " +
                                      std::string(served)}}};
}

error_reply method_not_allowed(std::string_view method, std::string_view path) {
    return {405, json{{"type", "method_not_allowed"},
                      {"message", "method " + std::string(method) + " is not allowed on " +
                                      std::string(path)}}};
}

error_reply not_implemented(std::string_view what) {
    return {501, json{{"type", "not_implemented"},
                      {"message", std::string(what) + " is not implemented yet"}}};
}

error_reply denied_authentication(std::string_view reason) {
    // DeniedAuthenticationError needs `method` and `reason`; the SDK builds its message
    // from them ("denied authentication: secret_key does not exist").
    const std::string message = reason == "not_found"
                                    ? "authentication denied: unknown secret key (X-Auth-Token)"
                                    : "authentication denied: a secret key (UUID) is required "
                                      "in the X-Auth-Token header";
    return {401, json{{"type", "denied_authentication"},
                      {"message", message},
                      {"method", "secret_key"},
                      {"reason", std::string(reason)}}};
}

error_reply body_too_large(std::size_t limit) {
    return {413, json{{"type", "request_too_large"},
                      {"message", "request body is larger than the limit of " +
                                      std::to_string(limit) + " bytes"}}};
}

error_reply bad_request(std::string_view message) {
    return {400, json{{"type", "bad_request"},
                      {"message", "malformed HTTP request: " + std::string(message)}}};
}

error_reply internal_error() {
    return {500, json{{"type", "internal_error"},
                      {"message", "internal server error; see the server's log"}}};
}

error_reply service_unavailable(std::string_view message) {
    return {503, json{{"type", "service_unavailable"}, {"message", std::string(message)}}};
}

}  // namespace iothub::api
