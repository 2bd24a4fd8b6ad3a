#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cli/listen_address.hpp"

namespace iothub::cli {

// Same order and meaning as spdlog's levels.
enum class logging_level { trace, debug, info, warning, error, critical, off };
std::string_view to_string(logging_level level);

// auto: open the development hub only when every listener is on loopback.
enum class dev_hub_mode { automatic, on, off };
std::string_view to_string(dev_hub_mode mode);

// The oldest TLS version the mqtts listener accepts.
enum class tls_version { v1_2, v1_3 };
std::string_view to_string(tls_version version);

// Applied to new connections; a reload changes them without a restart.
struct limits_config {
    std::uint32_t max_packet_size = 1048576;    // bytes
    std::uint32_t max_queued_messages = 1000;   // per client
    std::uint64_t max_queued_bytes = 16777216;  // per client
    // In-flight QoS 1/2 deliveries to a 3.1/3.1.1 client; a v5 client uses
    // its own Receive Maximum.
    std::uint16_t max_inflight = 1000;
    std::uint16_t receive_maximum = 100;  // announced to v5 clients
    std::uint16_t topic_alias_maximum = 32;
    std::uint16_t max_topic_length = 65535;  // bytes
    std::uint32_t max_topic_levels = 128;
    std::uint32_t max_connections = 0;              // 0 = unlimited
    std::uint16_t max_keep_alive = 65535;           // seconds
    std::uint32_t max_session_expiry = 4294967295;  // seconds; the maximum means never
    std::uint32_t max_retained = 1000000;           // per hub; 0 = unlimited
    bool retain_available = true;

    friend bool operator==(const limits_config&, const limits_config&) = default;
};

// The settings of `iothub serve`. Each field is a top-level key of the
// config file and a flag of the same name ('_' becomes '-').
struct config {
    std::string data_dir = "./data";
    listen_address mqtt{"127.0.0.1", 1883};
    listen_address mqtts{"127.0.0.1", 8883};  // MQTT over TLS
    listen_address ws{"127.0.0.1", 8083};     // MQTT over WebSocket; may be off
    listen_address wss{"127.0.0.1", 8084};    // MQTT over WebSocket over TLS; may be off
    std::string ws_path = "/mqtt";            // the WebSocket listeners' request path
    std::string ws_origins;  // comma-separated Origin values accepted; empty = any
    listen_address api{"127.0.0.1", 8080};
    std::string region = "fr-par";  // the IoT API region served
    std::string endpoint;           // public MQTT host name in hubs; empty = the mqtt host
    std::uint32_t workers = 0;  // 0 = one per core
    logging_level log_level = logging_level::info;
    std::string ready_file;  // empty = none
    dev_hub_mode dev_hub = dev_hub_mode::automatic;
    // The server's TLS certificate chain and key (PEM files); both empty = the server identity
    // iothub keeps in data_dir. Re-read on every SIGHUP.
    std::string tls_cert_file;
    std::string tls_key_file;
    tls_version tls_min_version = tls_version::v1_2;
    std::uint32_t tls_handshake_timeout = 10;  // seconds
    // PEM file of certificate revocation lists checked against client certificates; re-read
    // on every SIGHUP. Empty = none.
    std::string tls_crl_file;
    limits_config limits;
    bool persistence = true;
    std::uint32_t drop_log_interval = 10;  // seconds

    // workers, with 0 resolved to the number of cores (at least 1).
    unsigned worker_count() const;
    // Whether to open the development hub, resolving "auto".
    bool dev_hub_open() const;

    friend bool operator==(const config&, const config&) = default;
};

// A configuration that cannot be used. what() is a complete message, such as
// "/etc/iothub.toml:7: max_packet_size: must be between 64 and 268435455, got 10"
// or "--workers: expected an integer, got 'many'".
class config_error : public std::runtime_error {
public:
    config_error(const std::string& message, std::string path, std::size_t line, std::string key);

    const std::string& path() const { return path_; }  // empty for flags
    std::size_t line() const { return line_; }         // 0 when unknown
    const std::string& key() const { return key_; }    // empty for syntax errors

private:
    std::string path_;
    std::size_t line_;
    std::string key_;
};

// A setting given on the command line: the key (as in the file) and its text.
struct flag_value {
    std::string key;
    std::string text;
};
using flag_values = std::vector<flag_value>;

// Reads a TOML file over `base`; keys absent from the file keep base's value.
// Unknown keys, wrong types and out-of-range values throw config_error.
config load_config_file(const std::string& path, config base = {});
// The same for a document already in memory; `source` names it in errors.
config parse_config(std::string_view toml_text, const std::string& source, config base = {});
// Applies command-line settings over `base`; throws config_error naming the flag.
config apply_flags(config base, const flag_values& flags);

// The effective configuration as a TOML document that load_config_file
// reads back to the same config.
std::string describe(const config& cfg);

// A markdown table of every key: flag, default, whether SIGHUP reloads it, meaning.
std::string reference_markdown();

struct reload_result {
    // The running config with every reloadable change applied; keys that need a
    // restart keep their running value.
    config next;
    std::vector<std::string> applied;  // keys changed in `next`
    std::vector<std::string> ignored;  // keys that changed but need a restart
};

// Re-reads `path` (no file when empty) over the defaults, applies `flags` on
// top (the command line still wins) and compares with `running`. Throws
// config_error on a bad file; the caller then keeps `running`.
reload_result reload(const config& running, const std::string& path, const flag_values& flags);

}  // namespace iothub::cli
