#include "cli/config_keys.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

namespace iothub::cli::detail {
namespace {

constexpr std::string_view general = "General";
constexpr std::string_view listeners = "Listeners";
constexpr std::string_view tls = "TLS";
constexpr std::string_view storage = "Storage";
constexpr std::string_view limits = "Limits";
constexpr std::string_view logging = "Logging";

constexpr std::int64_t uint16_max = std::numeric_limits<std::uint16_t>::max();
constexpr std::int64_t uint32_max = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

struct key_meta {
    std::string_view name;
    std::string_view group;
    std::string_view value_name;
    std::string_view help;
    std::string_view default_note = {};
    bool reloadable = false;
};

key_spec make_spec(const key_meta& meta) {
    key_spec spec;
    spec.name = meta.name;
    spec.group = meta.group;
    spec.value_name = meta.value_name;
    spec.help = meta.help;
    spec.default_note = meta.default_note;
    spec.reloadable = meta.reloadable;
    return spec;
}

std::string type_of(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
    }
    return "nothing";
}

std::string lowercase(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return result;
}

std::string quoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

std::string range_text(std::int64_t min, std::int64_t max) {
    return "between " + std::to_string(min) + " and " + std::to_string(max);
}

std::int64_t check_range(std::int64_t value, std::int64_t min, std::int64_t max) {
    if (value < min || value > max) {
        throw value_error("must be " + range_text(min, max) + ", got " + std::to_string(value));
    }
    return value;
}

std::int64_t parse_integer(std::string_view text, std::int64_t min, std::int64_t max) {
    std::int64_t value = 0;
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(text.data(), last, value);
    if (ec == std::errc::result_out_of_range) {
        throw value_error("must be " + range_text(min, max) + ", got " + std::string(text));
    }
    if (ec != std::errc{} || end != last) {
        throw value_error("expected an integer, got " + quoted(text));
    }
    return check_range(value, min, max);
}

bool parse_bool(std::string_view text) {
    auto word = lowercase(text);
    if (word == "true" || word == "yes" || word == "on" || word == "1") {
        return true;
    }
    if (word == "false" || word == "no" || word == "off" || word == "0") {
        return false;
    }
    throw value_error("expected true or false, got " + quoted(text));
}

const std::string& expect_string(const toml::node& node) {
    if (const auto* value = node.as_string()) {
        return value->get();
    }
    throw value_error("expected a string, got " + type_of(node));
}

// `access` maps a config (const or not) to the field the key sets.
template <class Access>
key_spec integer_key(const key_meta& meta, Access access, std::int64_t min, std::int64_t max) {
    using field = std::remove_reference_t<decltype(access(std::declval<config&>()))>;
    static_assert(std::is_integral_v<field>);
    auto spec = make_spec(meta);
    spec.from_toml = [access, min, max](config& cfg, const toml::node& node) {
        const auto* value = node.as_integer();
        if (value == nullptr) {
            throw value_error("expected an integer " + range_text(min, max) + ", got " +
                              type_of(node));
        }
        access(cfg) = static_cast<field>(check_range(value->get(), min, max));
    };
    spec.from_text = [access, min, max](config& cfg, std::string_view text) {
        access(cfg) = static_cast<field>(parse_integer(text, min, max));
    };
    spec.to_toml = [access](const config& cfg) { return std::to_string(access(cfg)); };
    spec.copy = [access](config& to, const config& from) { access(to) = access(from); };
    return spec;
}

template <class Access>
key_spec bool_key(const key_meta& meta, Access access) {
    auto spec = make_spec(meta);
    spec.from_toml = [access](config& cfg, const toml::node& node) {
        const auto* value = node.as_boolean();
        if (value == nullptr) {
            throw value_error("expected true or false, got " + type_of(node));
        }
        access(cfg) = value->get();
    };
    spec.from_text = [access](config& cfg, std::string_view text) {
        access(cfg) = parse_bool(text);
    };
    spec.to_toml = [access](const config& cfg) {
        return std::string(access(cfg) ? "true" : "false");
    };
    spec.copy = [access](config& to, const config& from) { access(to) = access(from); };
    return spec;
}

// A key whose value is a string in the file; `parse` turns the text into the field.
template <class Access, class Parse, class Format>
key_spec string_key(const key_meta& meta, Access access, Parse parse, Format format) {
    auto spec = make_spec(meta);
    spec.from_toml = [access, parse](config& cfg, const toml::node& node) {
        access(cfg) = parse(expect_string(node));
    };
    spec.from_text = [access, parse](config& cfg, std::string_view text) {
        access(cfg) = parse(text);
    };
    spec.to_toml = [access, format](const config& cfg) { return toml_quote(format(access(cfg))); };
    spec.copy = [access](config& to, const config& from) { access(to) = access(from); };
    return spec;
}

// A listener address key: ADDR:PORT in the file and on the command line.
template <class Access>
key_spec address_key(const key_meta& meta, Access access, bool may_be_off = false) {
    return string_key(
        meta, access,
        [may_be_off](std::string_view text) {
            try {
                return parse_listen_address(text, may_be_off);
            } catch (const std::invalid_argument& e) {
                throw value_error(e.what());
            }
        },
        [](const listen_address& value) { return value.to_string(); });
}

logging_level parse_log_level(std::string_view text) {
    auto word = lowercase(text);
    if (word == "warn") {
        return logging_level::warning;
    }
    for (auto level :
         {logging_level::trace, logging_level::debug, logging_level::info, logging_level::warning,
          logging_level::error, logging_level::critical, logging_level::off}) {
        if (word == to_string(level)) {
            return level;
        }
    }
    throw value_error("expected one of trace, debug, info, warning, error, critical, off; got " +
                      quoted(text));
}

dev_hub_mode parse_dev_hub(std::string_view text) {
    if (lowercase(text) == "auto") {
        return dev_hub_mode::automatic;
    }
    try {
        return parse_bool(text) ? dev_hub_mode::on : dev_hub_mode::off;
    } catch (const value_error&) {
        throw value_error("expected \"auto\", true or false, got " + quoted(text));
    }
}

key_spec dev_hub_key() {
    auto spec = make_spec({
        .name = "dev_hub",
        .group = listeners,
        .value_name = "",
        .help = "Open the development hub (auto = only when every listener is on loopback); "
                "--dev-hub forces it on, --no-dev-hub off",
    });
    spec.from_toml = [](config& cfg, const toml::node& node) {
        if (const auto* value = node.as_boolean()) {
            cfg.dev_hub = value->get() ? dev_hub_mode::on : dev_hub_mode::off;
            return;
        }
        if (const auto* value = node.as_string()) {
            cfg.dev_hub = parse_dev_hub(value->get());
            return;
        }
        throw value_error("expected \"auto\", true or false, got " + type_of(node));
    };
    spec.from_text = [](config& cfg, std::string_view text) { cfg.dev_hub = parse_dev_hub(text); };
    spec.to_toml = [](const config& cfg) {
        switch (cfg.dev_hub) {
        case dev_hub_mode::on: return std::string("true");
        case dev_hub_mode::off: return std::string("false");
        case dev_hub_mode::automatic: break;
        }
        return std::string("\"auto\"");
    };
    spec.copy = [](config& to, const config& from) { to.dev_hub = from.dev_hub; };
    return spec;
}

tls_version parse_tls_version(std::string_view text) {
    if (text == "1.2") {
        return tls_version::v1_2;
    }
    if (text == "1.3") {
        return tls_version::v1_3;
    }
    throw value_error("expected \"1.2\" or \"1.3\", got " + quoted(text));
}

key_spec tls_min_version_key() {
    auto spec = make_spec({
        .name = "tls_min_version",
        .group = tls,
        .value_name = "VERSION",
        .help = "Oldest TLS version accepted on mqtts: 1.2 or 1.3 (1.3 is chosen whenever the "
                "client has it)",
        .reloadable = true,
    });
    spec.from_toml = [](config& cfg, const toml::node& node) {
        if (const auto* value = node.as_string()) {
            cfg.tls_min_version = parse_tls_version(value->get());
            return;
        }
        // tls_min_version = 1.3, unquoted, reads as a number.
        if (const auto* value = node.as_floating_point()) {
            const double v = value->get();
            if (v == 1.2) {
                cfg.tls_min_version = tls_version::v1_2;
                return;
            }
            if (v == 1.3) {
                cfg.tls_min_version = tls_version::v1_3;
                return;
            }
        }
        throw value_error("expected \"1.2\" or \"1.3\", got " + type_of(node));
    };
    spec.from_text = [](config& cfg, std::string_view text) {
        cfg.tls_min_version = parse_tls_version(text);
    };
    spec.to_toml = [](const config& cfg) { return toml_quote(to_string(cfg.tls_min_version)); };
    spec.copy = [](config& to, const config& from) { to.tls_min_version = from.tls_min_version; };
    return spec;
}

std::vector<key_spec> build_keys() {
    std::vector<key_spec> keys;
    keys.push_back(integer_key(
        {.name = "workers",
         .group = general,
         .value_name = "N",
         .help = "Worker threads, each with its own event loop; 0 = one per core (0..1024)",
         .default_note = "one per core"},
        [](auto& c) -> auto& { return c.workers; }, 0, 1024));
    keys.push_back(string_key(
        {.name = "ready_file",
         .group = general,
         .value_name = "FILE",
         .help = "Once every listener is bound, write their addresses to this file as JSON; "
                 "empty = no file",
         .default_note = "none"},
        [](auto& c) -> auto& { return c.ready_file; },
        [](std::string_view text) { return std::string(text); },
        [](const std::string& value) { return value; }));

    keys.push_back(address_key(
        {.name = "mqtt",
         .group = listeners,
         .value_name = "ADDR:PORT",
         .help = "MQTT over TCP: a.b.c.d:PORT, [IPv6]:PORT or localhost:PORT; port 0 picks a "
                 "free port"},
        [](auto& c) -> auto& { return c.mqtt; }));
    keys.push_back(address_key(
        {.name = "mqtts",
         .group = listeners,
         .value_name = "ADDR:PORT",
         .help = "MQTT over TLS; same forms as mqtt; port 0 picks a free port"},
        [](auto& c) -> auto& { return c.mqtts; }));
    keys.push_back(address_key(
        {.name = "ws",
         .group = listeners,
         .value_name = "ADDR:PORT",
         .help = "MQTT over WebSocket (subprotocol mqtt, path ws_path); same forms as mqtt, or "
                 "off"},
        [](auto& c) -> auto& { return c.ws; }, true));
    keys.push_back(address_key(
        {.name = "wss",
         .group = listeners,
         .value_name = "ADDR:PORT",
         .help = "MQTT over WebSocket over TLS, with mqtts' certificate; same forms as mqtt, "
                 "or off"},
        [](auto& c) -> auto& { return c.wss; }, true));
    keys.push_back(string_key(
        {.name = "ws_path",
         .group = listeners,
         .value_name = "PATH",
         .help = "Request path of the WebSocket listeners; other paths get 404",
         .reloadable = true},
        [](auto& c) -> auto& { return c.ws_path; },
        [](std::string_view text) {
            if (text.empty() || text.front() != '/' ||
                std::any_of(text.begin(), text.end(), [](char ch) {
                    return static_cast<unsigned char>(ch) <= ' ' || ch == '?' || ch == '#' ||
                           static_cast<unsigned char>(ch) >= 0x7f;
                }))
                throw value_error("expected a path such as /mqtt (no spaces, '?' or '#'), got " +
                                  quoted(text));
            return std::string(text);
        },
        [](const std::string& value) { return value; }));
    keys.push_back(string_key(
        {.name = "ws_origins",
         .group = listeners,
         .value_name = "LIST",
         .help = "Origins a browser may connect from over ws/wss, comma-separated, as "
                 "https://app.example.com; a request with another Origin header gets 403; "
                 "requests without one (devices) are always accepted; empty = any origin",
         .default_note = "any",
         .reloadable = true},
        [](auto& c) -> auto& { return c.ws_origins; },
        [](std::string_view text) { return std::string(text); },
        [](const std::string& value) { return value; }));
    keys.push_back(address_key(
        {.name = "api",
         .group = listeners,
         .value_name = "ADDR:PORT",
         .help = "The IoT API (HTTP); same forms as mqtt; port 0 picks a free port"},
        [](auto& c) -> auto& { return c.api; }));
    keys.push_back(dev_hub_key());
    keys.push_back(string_key(
        {.name = "region",
         .group = listeners,
         .value_name = "REGION",
         .help = "Region name served by the IoT API, as xx-xxx (the SDK's form)"},
        [](auto& c) -> auto& { return c.region; },
        [](std::string_view text) {
            const bool ok = text.size() == 6 && text[2] == '-' &&
                            std::all_of(text.begin(), text.end(), [](char ch) {
                                return ch == '-' || (ch >= 'a' && ch <= 'z');
                            });
            if (!ok) throw value_error("expected a region such as fr-par, got " + quoted(text));
            return std::string(text);
        },
        [](const std::string& value) { return value; }));
    keys.push_back(string_key(
        {.name = "endpoint",
         .group = listeners,
         .value_name = "HOST",
         .help = "Public host name of the MQTT listeners, reported as each hub's endpoint; "
                 "empty = the mqtt listener's host",
         .default_note = "the mqtt host"},
        [](auto& c) -> auto& { return c.endpoint; },
        [](std::string_view text) { return std::string(text); },
        [](const std::string& value) { return value; }));

    keys.push_back(string_key(
        {.name = "tls_cert_file",
         .group = tls,
         .value_name = "FILE",
         .help = "The mqtts server certificate, PEM: the server's certificate first, then any "
                 "intermediates; empty = one issued by iothub's own server CA, made in data_dir "
                 "on first start (server-ca.pem is what clients trust); re-read on SIGHUP",
         .default_note = "the server CA's",
         .reloadable = true},
        [](auto& c) -> auto& { return c.tls_cert_file; },
        [](std::string_view text) { return std::string(text); },
        [](const std::string& value) { return value; }));
    keys.push_back(string_key(
        {.name = "tls_key_file",
         .group = tls,
         .value_name = "FILE",
         .help = "The private key of tls_cert_file, PEM, unencrypted; give both or neither; "
                 "re-read on SIGHUP",
         .default_note = "the server CA's",
         .reloadable = true},
        [](auto& c) -> auto& { return c.tls_key_file; },
        [](std::string_view text) { return std::string(text); },
        [](const std::string& value) { return value; }));
    keys.push_back(tls_min_version_key());
    keys.push_back(integer_key(
        {.name = "tls_handshake_timeout",
         .group = tls,
         .value_name = "SECONDS",
         .help = "A TLS client that has not finished its handshake this many seconds after "
                 "connecting is disconnected (1..3600)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.tls_handshake_timeout; }, 1, 3600));
    keys.push_back(string_key(
        {.name = "tls_crl_file",
         .group = tls,
         .value_name = "FILE",
         .help = "Certificate revocation lists, PEM (one or more): a client certificate listed "
                 "by a CRL of its issuer is refused; empty = none; re-read on SIGHUP",
         .default_note = "none",
         .reloadable = true},
        [](auto& c) -> auto& { return c.tls_crl_file; },
        [](std::string_view text) { return std::string(text); },
        [](const std::string& value) { return value; }));

    keys.push_back(string_key(
        {.name = "data_dir",
         .group = storage,
         .value_name = "DIR",
         .help = "Directory of the SQLite store"},
        [](auto& c) -> auto& { return c.data_dir; },
        [](std::string_view text) {
            if (text.empty()) {
                throw value_error("must not be empty");
            }
            return std::string(text);
        },
        [](const std::string& value) { return value; }));
    keys.push_back(bool_key(
        {.name = "persistence",
         .group = storage,
         .value_name = "BOOL",
         .help = "Keep retained messages and persistent sessions in the store across restarts"},
        [](auto& c) -> auto& { return c.persistence; }));

    keys.push_back(integer_key(
        {.name = "max_packet_size",
         .group = limits,
         .value_name = "BYTES",
         .help = "Largest MQTT packet accepted, in bytes (64..268435455)",
         .default_note = "1 MiB",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_packet_size; }, 64, 268435455));
    keys.push_back(integer_key(
        {.name = "max_queued_messages",
         .group = limits,
         .value_name = "N",
         .help = "Messages queued for one client that cannot keep up (1..4294967295)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_queued_messages; }, 1, uint32_max));
    keys.push_back(integer_key(
        {.name = "max_queued_bytes",
         .group = limits,
         .value_name = "BYTES",
         .help = "Bytes queued for one client that cannot keep up, in bytes (at least 1)",
         .default_note = "16 MiB",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_queued_bytes; }, 1, int64_max));
    keys.push_back(integer_key(
        {.name = "max_inflight",
         .group = limits,
         .value_name = "N",
         .help = "Unacknowledged QoS 1/2 deliveries to an MQTT 3.1/3.1.1 client (1..65535); "
                 "MQTT 5 clients use their own Receive Maximum",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_inflight; }, 1, uint16_max));
    keys.push_back(integer_key(
        {.name = "receive_maximum",
         .group = limits,
         .value_name = "N",
         .help = "Receive Maximum announced to MQTT 5 clients: their unacknowledged QoS 1/2 "
                 "publishes (1..65535)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.receive_maximum; }, 1, uint16_max));
    keys.push_back(integer_key(
        {.name = "topic_alias_maximum",
         .group = limits,
         .value_name = "N",
         .help = "Topic aliases an MQTT 5 client may use towards the server; 0 = none (0..65535)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.topic_alias_maximum; }, 0, uint16_max));
    keys.push_back(integer_key(
        {.name = "max_topic_length",
         .group = limits,
         .value_name = "BYTES",
         .help = "Longest topic name or filter, in bytes (1..65535)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_topic_length; }, 1, uint16_max));
    keys.push_back(integer_key(
        {.name = "max_topic_levels",
         .group = limits,
         .value_name = "N",
         .help = "Most '/'-separated levels in a topic name or filter (1..65535)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_topic_levels; }, 1, uint16_max));
    keys.push_back(integer_key(
        {.name = "max_connections",
         .group = limits,
         .value_name = "N",
         .help = "Simultaneous client connections; 0 = unlimited (0..4294967295)",
         .default_note = "unlimited",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_connections; }, 0, uint32_max));
    keys.push_back(integer_key(
        {.name = "max_keep_alive",
         .group = limits,
         .value_name = "SECONDS",
         .help = "Longest keep-alive granted, in seconds; an MQTT 5 client asking for more is "
                 "sent Server Keep Alive (1..65535)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_keep_alive; }, 1, uint16_max));
    keys.push_back(integer_key(
        {.name = "max_session_expiry",
         .group = limits,
         .value_name = "SECONDS",
         .help = "Longest session expiry interval granted, in seconds; 4294967295 = never "
                 "(0..4294967295)",
         .default_note = "never",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_session_expiry; }, 0, uint32_max));
    keys.push_back(integer_key(
        {.name = "max_retained",
         .group = limits,
         .value_name = "N",
         .help = "Retained messages kept per hub; 0 = unlimited (0..4294967295)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.max_retained; }, 0, uint32_max));
    keys.push_back(bool_key(
        {.name = "retain_available",
         .group = limits,
         .value_name = "BOOL",
         .help = "Accept retained messages; false refuses them and tells MQTT 5 clients "
                 "Retain Available = 0",
         .reloadable = true},
        [](auto& c) -> auto& { return c.limits.retain_available; }));

    keys.push_back(string_key(
        {.name = "log_level",
         .group = logging,
         .value_name = "LEVEL",
         .help = "Least severe messages logged: trace, debug, info, warning (or warn), error, "
                 "critical or off",
         .reloadable = true},
        [](auto& c) -> auto& { return c.log_level; }, parse_log_level,
        [](logging_level level) { return std::string(to_string(level)); }));
    keys.push_back(integer_key(
        {.name = "drop_log_interval",
         .group = logging,
         .value_name = "SECONDS",
         .help = "Log dropped-message counters at most once per interval, in seconds (1..86400)",
         .reloadable = true},
        [](auto& c) -> auto& { return c.drop_log_interval; }, 1, 86400));
    return keys;
}

}  // namespace

std::string key_spec::flag() const {
    std::string result = "--" + name;
    std::replace(result.begin(), result.end(), '_', '-');
    return result;
}

std::string key_spec::default_text() const {
    auto text = to_toml(config{});
    if (text.size() >= 2 && text.front() == '"') {
        text = text.substr(1, text.size() - 2);
    }
    return text;
}

const std::vector<key_spec>& config_keys() {
    static const std::vector<key_spec> keys = build_keys();
    return keys;
}

const key_spec* find_key(std::string_view name) {
    for (const auto& key : config_keys()) {
        if (key.name == name) {
            return &key;
        }
    }
    return nullptr;
}

std::string toml_quote(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string result = "\"";
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        switch (c) {
        case '"': result += "\\\""; break;
        case '\\': result += "\\\\"; break;
        case '\n': result += "\\n"; break;
        case '\t': result += "\\t"; break;
        case '\r': result += "\\r"; break;
        default:
            if (byte < 0x20 || byte == 0x7f) {
                result += "\\u00";
                result += hex[byte >> 4];
                result += hex[byte & 0xf];
            } else {
                result += c;
            }
        }
    }
    result += '"';
    return result;
}

}  // namespace iothub::cli::detail
