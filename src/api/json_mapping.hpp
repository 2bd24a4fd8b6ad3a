#pragma once
// Hubs and devices to and from the IoT API v1 JSON (field names as @scaleway/sdk-iot's
// marshalling.gen.js reads and writes them). Request parsing throws hub::registry_error of
// kind invalid_arguments naming every field that is wrong; unknown fields are ignored.
// Used by api/ (and format_time by the admin CLI).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "hub/registry.hpp"

namespace iothub::api {

struct resource_context {
    std::string region;    // "fr-par"
    std::string endpoint;  // the MQTT host reported in hubs
};

// RFC 3339 UTC with milliseconds: "2025-01-23T10:26:24.158Z".
std::string format_time(std::uint64_t unix_ms);

nlohmann::json hub_to_json(const hub::hub_view& v, const resource_context& ctx);
nlohmann::json device_to_json(const hub::device_view& v, const resource_context& ctx);

// A request body as JSON: an empty body is `{}`; anything but an object, bad JSON or
// nesting deeper than 64 levels is invalid_arguments on "body".
nlohmann::json parse_body(std::string_view body);

hub::hub_create parse_hub_create(const nlohmann::json& body);
hub::hub_update parse_hub_update(const nlohmann::json& body);
hub::device_create parse_device_create(const nlohmann::json& body);
// Rules of `message_filters` that are left out keep their `current` value.
hub::device_update parse_device_update(const nlohmann::json& body,
                                       const hub::message_filters& current);

// SetHubCA: {ca_cert_pem, challenge_cert_pem} (strings; their content is the registry's to
// judge).
struct hub_ca_request {
    std::string ca_cert_pem;
    std::string challenge_cert_pem;
};
hub_ca_request parse_set_hub_ca(const nlohmann::json& body);
// SetDeviceCertificate: {certificate_pem}.
std::string parse_set_device_certificate(const nlohmann::json& body);
// The SDK's Certificate: {crt, key}.
nlohmann::json credentials_to_json(const hub::device_credentials& c);

}  // namespace iothub::api
