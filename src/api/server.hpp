#pragma once
// The management API: HTTP/1.1 (Boost.Beast) on its own thread, speaking the Scaleway IoT
// API v1 wire format under /iot/v1/regions/{region}/… . Boost stays inside api/*.cpp.

#include <cstdint>
#include <memory>
#include <string>

namespace iothub::hub {
class registry;
}
namespace iothub::store {
class registry_store;
}

namespace iothub::api {

struct api_options {
    std::string region = "fr-par";      // the one region served; others answer not_found
    std::string endpoint = "127.0.0.1";  // public MQTT host name reported in hubs
    std::size_t max_body_bytes = 1024 * 1024;
    unsigned max_connections = 1024;
    unsigned idle_timeout_seconds = 60;
    // The CA that signs the MQTT server's TLS certificate (PEM), served without
    // authentication at GET /iot/v1/regions/{region}/server-ca so that devices can verify
    // the hub; empty: none (that path answers 404).
    std::string server_ca_pem;
};

class api_server {
public:
    api_server(hub::registry& reg, store::registry_store& keys, api_options options);
    ~api_server();
    api_server(const api_server&) = delete;
    api_server& operator=(const api_server&) = delete;

    // Binds; returns "host:port" (port 0 picks a free one). Throws std::runtime_error.
    std::string listen(const std::string& host, std::uint16_t port);
    void start();  // runs the API thread
    void stop();   // closes the listener and every connection, joins the thread

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace iothub::api
