#pragma once
// The API's error bodies: Scaleway's `{"type": …, "message": …}` family, shaped so that
// @scaleway/sdk-client turns each into its typed error (InvalidArgumentsError,
// ResourceNotFoundError, …). Private to api/.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "hub/registry.hpp"

namespace iothub::api {

// An answer that is not a success: the HTTP status and its JSON body.
struct error_reply {
    unsigned status = 500;
    nlohmann::json body;
};

// Thrown by the request-level checks (routing, auth, parsing) and turned into a reply at
// the request boundary, as registry_error is.
class api_failure : public std::exception {
public:
    explicit api_failure(error_reply r) : reply(std::move(r)) {}
    const char* what() const noexcept override { return "api failure"; }
    error_reply reply;
};

// Details for quotas_exceeded, which the registry does not carry: filled in by the handler.
struct quota_info {
    std::string resource;  // "hubs" | "devices"
    std::uint64_t quota = 0;
    std::uint64_t current = 0;
    std::string project_id;
};

// The status and body for a registry error. `action` ("read" | "write") names what was
// refused for permissions_denied.
error_reply map_registry_error(const hub::registry_error& e, std::string_view action = "write",
                               const quota_info* quota = nullptr);

// A registry_error of kind invalid_arguments with one detail; its message names it.
hub::registry_error invalid_argument(std::string argument, std::string reason, std::string help);

// Request-level errors.
error_reply not_found_path(std::string_view method, std::string_view path);
error_reply wrong_region(std::string_view asked, std::string_view served);
error_reply method_not_allowed(std::string_view method, std::string_view path);
error_reply not_implemented(std::string_view what);
error_reply denied_authentication(std::string_view reason);  // "invalid_argument" | "not_found"
error_reply body_too_large(std::size_t limit);
error_reply bad_request(std::string_view message);  // malformed HTTP
error_reply internal_error();
error_reply service_unavailable(std::string_view message);

}  // namespace iothub::api
