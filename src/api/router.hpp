#pragma once
// The IoT API's request handling without any I/O: a request (method, target, token, body)
// in, a status and JSON body out. server.cpp feeds it from Beast; tests call it directly.
// handle() never throws. Private to api/.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/server.hpp"

namespace iothub::api {

struct request {
    std::string method;                // "GET", "POST", …
    std::string target;                // path and query, as sent
    std::optional<std::string> token;  // the X-Auth-Token header
    std::string body;
};

struct response {
    unsigned status = 200;
    std::string body;                                          // JSON; empty for 204
    std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Allow
};

// Secret keys already checked, so a request costs no store lookup; a miss asks the store,
// so a key created by `iothub apikey create` works at once. Entries expire after `ttl`,
// so a deleted key stops working within that time.
class token_cache {
public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
    token_cache(store::registry_store& db, std::chrono::seconds ttl, clock_fn clock = nullptr);

    std::optional<std::string> project_of(std::string_view secret);

private:
    struct entry {
        std::string project_id;
        std::chrono::steady_clock::time_point expires;
    };
    store::registry_store& db_;
    std::chrono::seconds ttl_;
    clock_fn clock_;
    std::mutex mutex_;
    std::unordered_map<std::string, entry> entries_;  // by SHA-256 of the secret
};

class router {
public:
    router(hub::registry& reg, store::registry_store& keys, api_options options);

    response handle(const request& req) noexcept;

    const api_options& options() const { return options_; }

private:
    struct call;
    response dispatch(const request& req);

    hub::registry& reg_;
    api_options options_;
    token_cache tokens_;
};

// "a=1&b=x%20y" → {{"a","1"},{"b","x y"}}; nullopt on a bad %-escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q);
// %-decodes one path segment; nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

// The JSON text of a value, never throwing on odd bytes in stored strings.
std::string to_text(const nlohmann::json& j);

}  // namespace iothub::api
