#pragma once
// API keys: a secret key (a UUID, sent as X-Auth-Token) belongs to one project. Only the
// SHA-256 of the secret is stored.

#include <optional>
#include <string>
#include <string_view>

namespace iothub::store {
class registry_store;
}

namespace iothub::api {

struct created_key {
    std::string access_key;  // public id: "SCW" + 17 upper-case letters/digits
    std::string secret_key;  // shown once
    std::string project_id;
};

// Hex SHA-256 of a secret key.
std::string hash_secret(std::string_view secret);

// Creates and stores a key; an empty project id makes a new project.
created_key create_api_key(store::registry_store& db, std::string project_id,
                           std::string description);

// The project of a secret key, or nullopt when no key matches.
std::optional<std::string> project_of(store::registry_store& db, std::string_view secret);

// The admin token file inside the data directory (mode 0600): the secret key on the
// first line. Created with a key of a new project on first start when the store holds no
// key; returns its path and whether it was just created.
struct admin_token {
    std::string path;
    bool created = false;
};
admin_token ensure_admin_token(store::registry_store& db, const std::string& data_dir);

inline constexpr const char* admin_token_file = "api-token";

}  // namespace iothub::api
