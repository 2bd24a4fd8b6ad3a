#include "cli/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "temp_file.hpp"

namespace iothub::cli {
namespace {

using testing::temp_file;

// The message of the config_error that parsing `text` throws.
config_error parse_error_of(const std::string& text) {
    try {
        parse_config(text, "test.toml");
    } catch (const config_error& e) {
        return e;
    }
    ADD_FAILURE() << "no error for: " << text;
    return config_error("no error", "", 0, "");
}

TEST(config, defaults) {
    config cfg;
    EXPECT_EQ(cfg.data_dir, "./data");
    EXPECT_EQ(cfg.mqtt.host, "127.0.0.1");
    EXPECT_EQ(cfg.mqtt.port, 1883);
    EXPECT_EQ(cfg.mqtts, (listen_address{"127.0.0.1", 8883}));
    EXPECT_EQ(cfg.tls_cert_file, "");
    EXPECT_EQ(cfg.tls_key_file, "");
    EXPECT_EQ(cfg.tls_min_version, tls_version::v1_2);
    EXPECT_EQ(cfg.tls_handshake_timeout, 10u);
    EXPECT_EQ(cfg.workers, 0u);
    EXPECT_GE(cfg.worker_count(), 1u);
    EXPECT_EQ(cfg.log_level, logging_level::info);
    EXPECT_EQ(cfg.ready_file, "");
    EXPECT_EQ(cfg.dev_hub, dev_hub_mode::automatic);
    EXPECT_TRUE(cfg.persistence);
    EXPECT_EQ(cfg.drop_log_interval, 10u);
    EXPECT_EQ(cfg.limits.max_packet_size, 1048576u);
    EXPECT_EQ(cfg.limits.max_queued_messages, 1000u);
    EXPECT_EQ(cfg.limits.max_queued_bytes, 16777216u);
    EXPECT_EQ(cfg.limits.max_inflight, 1000);
    EXPECT_EQ(cfg.limits.receive_maximum, 100);
    EXPECT_EQ(cfg.limits.topic_alias_maximum, 32);
    EXPECT_EQ(cfg.limits.max_topic_length, 65535);
    EXPECT_EQ(cfg.limits.max_topic_levels, 128u);
    EXPECT_EQ(cfg.limits.max_connections, 0u);
    EXPECT_EQ(cfg.limits.max_keep_alive, 65535);
    EXPECT_EQ(cfg.limits.max_session_expiry, 4294967295u);
    EXPECT_EQ(cfg.limits.max_retained, 1000000u);
    EXPECT_TRUE(cfg.limits.retain_available);
}

TEST(config, empty_file_gives_defaults) {
    EXPECT_EQ(parse_config("", "empty.toml"), config{});
}

TEST(config, file_sets_every_key) {
    temp_file file(R"(
data_dir = "/var/lib/iothub"
mqtt = "[::1]:0"
mqtts = "0.0.0.0:8884"
tls_cert_file = "/etc/iothub/server.pem"
tls_key_file = "/etc/iothub/server.key"
tls_min_version = "1.3"
tls_handshake_timeout = 3
workers = 4
log_level = "debug"
ready_file = "/run/iothub.ready"
dev_hub = false
persistence = false
drop_log_interval = 60
max_packet_size = 4096
max_queued_messages = 50
max_queued_bytes = 65536
max_inflight = 10
receive_maximum = 200
topic_alias_maximum = 0
max_topic_length = 1024
max_topic_levels = 16
max_connections = 5000
max_keep_alive = 600
max_session_expiry = 86400
max_retained = 0
retain_available = false
)");
    auto cfg = load_config_file(file.path());
    EXPECT_EQ(cfg.data_dir, "/var/lib/iothub");
    EXPECT_EQ(cfg.mqtt, (listen_address{"::1", 0}));
    EXPECT_EQ(cfg.mqtts, (listen_address{"0.0.0.0", 8884}));
    EXPECT_EQ(cfg.tls_cert_file, "/etc/iothub/server.pem");
    EXPECT_EQ(cfg.tls_key_file, "/etc/iothub/server.key");
    EXPECT_EQ(cfg.tls_min_version, tls_version::v1_3);
    EXPECT_EQ(cfg.tls_handshake_timeout, 3u);
    EXPECT_EQ(cfg.workers, 4u);
    EXPECT_EQ(cfg.worker_count(), 4u);
    EXPECT_EQ(cfg.log_level, logging_level::debug);
    EXPECT_EQ(cfg.ready_file, "/run/iothub.ready");
    EXPECT_EQ(cfg.dev_hub, dev_hub_mode::off);
    EXPECT_FALSE(cfg.persistence);
    EXPECT_EQ(cfg.drop_log_interval, 60u);
    EXPECT_EQ(cfg.limits.max_packet_size, 4096u);
    EXPECT_EQ(cfg.limits.max_queued_messages, 50u);
    EXPECT_EQ(cfg.limits.max_queued_bytes, 65536u);
    EXPECT_EQ(cfg.limits.max_inflight, 10);
    EXPECT_EQ(cfg.limits.receive_maximum, 200);
    EXPECT_EQ(cfg.limits.topic_alias_maximum, 0);
    EXPECT_EQ(cfg.limits.max_topic_length, 1024);
    EXPECT_EQ(cfg.limits.max_topic_levels, 16u);
    EXPECT_EQ(cfg.limits.max_connections, 5000u);
    EXPECT_EQ(cfg.limits.max_keep_alive, 600);
    EXPECT_EQ(cfg.limits.max_session_expiry, 86400u);
    EXPECT_EQ(cfg.limits.max_retained, 0u);
    EXPECT_FALSE(cfg.limits.retain_available);
}

TEST(config, file_keeps_base_for_absent_keys) {
    config base;
    base.workers = 3;
    auto cfg = parse_config("max_inflight = 7", "t.toml", base);
    EXPECT_EQ(cfg.workers, 3u);
    EXPECT_EQ(cfg.limits.max_inflight, 7);
}

TEST(config, log_levels_and_alias) {
    EXPECT_EQ(parse_config("log_level = \"trace\"", "t").log_level, logging_level::trace);
    EXPECT_EQ(parse_config("log_level = \"info\"", "t").log_level, logging_level::info);
    EXPECT_EQ(parse_config("log_level = \"warning\"", "t").log_level, logging_level::warning);
    EXPECT_EQ(parse_config("log_level = \"warn\"", "t").log_level, logging_level::warning);
    EXPECT_EQ(parse_config("log_level = \"ERROR\"", "t").log_level, logging_level::error);
    EXPECT_EQ(parse_config("log_level = \"critical\"", "t").log_level, logging_level::critical);
    EXPECT_EQ(parse_config("log_level = \"off\"", "t").log_level, logging_level::off);
    auto e = parse_error_of("log_level = \"verbose\"");
    EXPECT_STREQ(e.what(),
                 "test.toml:1: log_level: expected one of trace, debug, info, warning, error, "
                 "critical, off; got 'verbose'");
}

TEST(config, dev_hub_accepts_auto_true_false) {
    EXPECT_EQ(parse_config("dev_hub = \"auto\"", "t").dev_hub, dev_hub_mode::automatic);
    EXPECT_EQ(parse_config("dev_hub = true", "t").dev_hub, dev_hub_mode::on);
    EXPECT_EQ(parse_config("dev_hub = false", "t").dev_hub, dev_hub_mode::off);
    EXPECT_STREQ(parse_error_of("dev_hub = \"sometimes\"").what(),
                 "test.toml:1: dev_hub: expected \"auto\", true or false, got 'sometimes'");
    EXPECT_STREQ(parse_error_of("dev_hub = 1").what(),
                 "test.toml:1: dev_hub: expected \"auto\", true or false, got an integer");
}

TEST(config, dev_hub_auto_opens_only_on_loopback) {
    config cfg;
    EXPECT_TRUE(cfg.dev_hub_open());
    cfg.mqtts = parse_listen_address("0.0.0.0:8883");
    EXPECT_FALSE(cfg.dev_hub_open());
    cfg.mqtts = parse_listen_address("[::1]:8883");
    EXPECT_TRUE(cfg.dev_hub_open());
    cfg.mqtt = parse_listen_address("0.0.0.0:1883");
    EXPECT_FALSE(cfg.dev_hub_open());
    cfg.dev_hub = dev_hub_mode::on;
    EXPECT_TRUE(cfg.dev_hub_open());
    cfg.mqtt = parse_listen_address("[::1]:1883");
    cfg.dev_hub = dev_hub_mode::off;
    EXPECT_FALSE(cfg.dev_hub_open());
}

TEST(config, dev_hub_auto_closes_when_the_api_is_public) {
    config cfg;
    cfg.api = parse_listen_address("0.0.0.0:8080");
    EXPECT_FALSE(cfg.dev_hub_open());
}

TEST(config, region_must_have_the_sdk_form) {
    EXPECT_EQ(parse_config("region = \"nl-ams\"", "t").region, "nl-ams");
    for (const char* bad : {"\"fr_par\"", "\"FR-PAR\"", "\"fr-paris\"", "\"\""}) {
        EXPECT_THROW(parse_config(std::string("region = ") + bad, "t"), config_error) << bad;
    }
}

TEST(config, unknown_key_names_key_and_line) {
    auto e = parse_error_of("workers = 2\n\nmax_packet_sise = 10\n");
    EXPECT_STREQ(e.what(),
                 "test.toml:3: unknown key 'max_packet_sise' (did you mean 'max_packet_size'?)");
    EXPECT_EQ(e.path(), "test.toml");
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.key(), "max_packet_sise");
}

TEST(config, unknown_key_without_suggestion) {
    EXPECT_STREQ(parse_error_of("colour = \"blue\"").what(), "test.toml:1: unknown key 'colour'");
}

TEST(config, first_problem_in_file_order_is_reported) {
    auto e = parse_error_of("zzz = 1\naaa = 2\n");
    EXPECT_EQ(e.key(), "zzz");
    EXPECT_EQ(e.line(), 1u);
}

TEST(config, tables_are_unknown_keys) {
    auto e = parse_error_of("[limits]\nmax_inflight = 5\n");
    EXPECT_STREQ(e.what(),
                 "test.toml:1: unknown key 'limits' (tables are not used: every key is at the top "
                 "level)");
}

TEST(config, config_key_is_flag_only) {
    auto e = parse_error_of("config = \"other.toml\"");
    EXPECT_STREQ(e.what(),
                 "test.toml:1: unknown key 'config': the config file can only be named on the "
                 "command line (--config)");
}

TEST(config, tls_min_version_accepts_1_2_and_1_3) {
    EXPECT_EQ(parse_config("tls_min_version = \"1.2\"", "t").tls_min_version, tls_version::v1_2);
    EXPECT_EQ(parse_config("tls_min_version = \"1.3\"", "t").tls_min_version, tls_version::v1_3);
    // Unquoted, TOML reads a number: taken as meant.
    EXPECT_EQ(parse_config("tls_min_version = 1.3", "t").tls_min_version, tls_version::v1_3);
    EXPECT_EQ(parse_config("tls_min_version = 1.2", "t").tls_min_version, tls_version::v1_2);
    EXPECT_STREQ(parse_error_of("tls_min_version = \"1.1\"").what(),
                 "test.toml:1: tls_min_version: expected \"1.2\" or \"1.3\", got '1.1'");
    EXPECT_STREQ(parse_error_of("tls_min_version = 1.0").what(),
                 "test.toml:1: tls_min_version: expected \"1.2\" or \"1.3\", got a "
                 "floating-point number");
    EXPECT_STREQ(parse_error_of("tls_min_version = true").what(),
                 "test.toml:1: tls_min_version: expected \"1.2\" or \"1.3\", got a boolean");
}

TEST(config, wrong_types_are_errors) {
    EXPECT_STREQ(parse_error_of("workers = \"4\"").what(),
                 "test.toml:1: workers: expected an integer between 0 and 1024, got a string");
    EXPECT_STREQ(parse_error_of("max_packet_size = 1.5").what(),
                 "test.toml:1: max_packet_size: expected an integer between 64 and 268435455, "
                 "got a floating-point number");
    EXPECT_STREQ(parse_error_of("persistence = \"yes\"").what(),
                 "test.toml:1: persistence: expected true or false, got a string");
    EXPECT_STREQ(parse_error_of("retain_available = 1").what(),
                 "test.toml:1: retain_available: expected true or false, got an integer");
    EXPECT_STREQ(parse_error_of("data_dir = 5").what(),
                 "test.toml:1: data_dir: expected a string, got an integer");
    EXPECT_STREQ(parse_error_of("mqtt = [\"127.0.0.1:1\"]").what(),
                 "test.toml:1: mqtt: expected a string, got an array");
    EXPECT_STREQ(parse_error_of("log_level = 2").what(),
                 "test.toml:1: log_level: expected a string, got an integer");
}

struct range_case {
    const char* text;
    const char* message;
};

class config_range : public ::testing::TestWithParam<range_case> {};

TEST_P(config_range, out_of_range_values_are_errors) {
    EXPECT_STREQ(parse_error_of(GetParam().text).what(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    every_bounded_key, config_range,
    ::testing::Values(
        range_case{"workers = 1025", "test.toml:1: workers: must be between 0 and 1024, got 1025"},
        range_case{"workers = -1", "test.toml:1: workers: must be between 0 and 1024, got -1"},
        range_case{"max_packet_size = 63",
                   "test.toml:1: max_packet_size: must be between 64 and 268435455, got 63"},
        range_case{"max_packet_size = 268435456",
                   "test.toml:1: max_packet_size: must be between 64 and 268435455, got "
                   "268435456"},
        range_case{"max_queued_messages = 0",
                   "test.toml:1: max_queued_messages: must be between 1 and 4294967295, got 0"},
        range_case{"max_queued_bytes = 0",
                   "test.toml:1: max_queued_bytes: must be between 1 and 9223372036854775807, "
                   "got 0"},
        range_case{"max_inflight = 0",
                   "test.toml:1: max_inflight: must be between 1 and 65535, got 0"},
        range_case{"max_inflight = 65536",
                   "test.toml:1: max_inflight: must be between 1 and 65535, got 65536"},
        range_case{"receive_maximum = 0",
                   "test.toml:1: receive_maximum: must be between 1 and 65535, got 0"},
        range_case{"topic_alias_maximum = 65536",
                   "test.toml:1: topic_alias_maximum: must be between 0 and 65535, got 65536"},
        range_case{"max_topic_length = 0",
                   "test.toml:1: max_topic_length: must be between 1 and 65535, got 0"},
        range_case{"max_topic_levels = 0",
                   "test.toml:1: max_topic_levels: must be between 1 and 65535, got 0"},
        range_case{"max_connections = 4294967296",
                   "test.toml:1: max_connections: must be between 0 and 4294967295, got "
                   "4294967296"},
        range_case{"max_keep_alive = 0",
                   "test.toml:1: max_keep_alive: must be between 1 and 65535, got 0"},
        range_case{"max_session_expiry = 4294967296",
                   "test.toml:1: max_session_expiry: must be between 0 and 4294967295, got "
                   "4294967296"},
        range_case{"max_retained = -5",
                   "test.toml:1: max_retained: must be between 0 and 4294967295, got -5"},
        range_case{"drop_log_interval = 0",
                   "test.toml:1: drop_log_interval: must be between 1 and 86400, got 0"},
        range_case{"tls_handshake_timeout = 0",
                   "test.toml:1: tls_handshake_timeout: must be between 1 and 3600, got 0"},
        range_case{"tls_handshake_timeout = 3601",
                   "test.toml:1: tls_handshake_timeout: must be between 1 and 3600, got 3601"},
        range_case{"mqtts = \"127.0.0.1:65536\"",
                   "test.toml:1: mqtts: port 65536 is out of range (0..65535)"},
        range_case{"mqtt = \"127.0.0.1:65536\"",
                   "test.toml:1: mqtt: port 65536 is out of range (0..65535)"},
        range_case{"data_dir = \"\"", "test.toml:1: data_dir: must not be empty"}));

TEST(config, range_limits_are_inclusive) {
    auto cfg = parse_config(
        "max_packet_size = 268435455\nmax_inflight = 65535\nmax_session_expiry = 4294967295\n"
        "workers = 1024\nmax_queued_bytes = 9223372036854775807\n",
        "t");
    EXPECT_EQ(cfg.limits.max_packet_size, 268435455u);
    EXPECT_EQ(cfg.limits.max_inflight, 65535);
    EXPECT_EQ(cfg.limits.max_session_expiry, 4294967295u);
    EXPECT_EQ(cfg.workers, 1024u);
    EXPECT_EQ(cfg.limits.max_queued_bytes, 9223372036854775807u);
}

TEST(config, syntax_error_names_line_and_column) {
    auto e = parse_error_of("workers = 2\nmax_inflight = = 3\n");
    EXPECT_EQ(e.line(), 2u);
    EXPECT_EQ(std::string(e.what()).rfind("test.toml:2:", 0), 0u) << e.what();
    EXPECT_EQ(e.key(), "");
}

TEST(config, duplicate_key_is_a_syntax_error) {
    auto e = parse_error_of("workers = 2\nworkers = 3\n");
    EXPECT_EQ(e.line(), 2u);
}

TEST(config, missing_file_is_an_error) {
    try {
        load_config_file("/nonexistent/iothub.toml");
        FAIL() << "no error";
    } catch (const config_error& e) {
        EXPECT_STREQ(e.what(),
                     "cannot read config file /nonexistent/iothub.toml: No such file or directory");
        EXPECT_EQ(e.path(), "/nonexistent/iothub.toml");
    }
}

TEST(config, directory_is_an_error) {
    auto dir = std::filesystem::temp_directory_path().string();
    try {
        load_config_file(dir);
        FAIL() << "no error";
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()), "cannot read config file " + dir + ": it is a directory");
    }
}

TEST(config, file_errors_carry_the_path) {
    temp_file file("\nworkers = 5000\n");
    try {
        load_config_file(file.path());
        FAIL() << "no error";
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  file.path() + ":2: workers: must be between 0 and 1024, got 5000");
        EXPECT_EQ(e.path(), file.path());
        EXPECT_EQ(e.line(), 2u);
        EXPECT_EQ(e.key(), "workers");
    }
}

TEST(config, describe_defaults) {
    EXPECT_EQ(describe(config{}),
              "# iothub serve configuration\n"
              "\n# General\n"
              "workers = 0\n"
              "ready_file = \"\"\n"
              "\n# Listeners\n"
              "mqtt = \"127.0.0.1:1883\"\n"
              "mqtts = \"127.0.0.1:8883\"\n"
              "ws = \"127.0.0.1:8083\"\n"
              "wss = \"127.0.0.1:8084\"\n"
              "ws_path = \"/mqtt\"\n"
              "ws_origins = \"\"\n"
              "api = \"127.0.0.1:8080\"\n"
              "dev_hub = \"auto\"\n"
              "region = \"fr-par\"\n"
              "endpoint = \"\"\n"
              "\n# TLS\n"
              "tls_cert_file = \"\"\n"
              "tls_key_file = \"\"\n"
              "tls_min_version = \"1.2\"\n"
              "tls_handshake_timeout = 10\n"
              "tls_crl_file = \"\"\n"
              "\n# Storage\n"
              "data_dir = \"./data\"\n"
              "persistence = true\n"
              "\n# Limits\n"
              "max_packet_size = 1048576\n"
              "max_queued_messages = 1000\n"
              "max_queued_bytes = 16777216\n"
              "max_inflight = 1000\n"
              "receive_maximum = 100\n"
              "topic_alias_maximum = 32\n"
              "max_topic_length = 65535\n"
              "max_topic_levels = 128\n"
              "max_connections = 0\n"
              "max_keep_alive = 65535\n"
              "max_session_expiry = 4294967295\n"
              "max_retained = 1000000\n"
              "retain_available = true\n"
              "\n# Logging\n"
              "log_level = \"info\"\n"
              "drop_log_interval = 10\n");
}

TEST(config, describe_reads_back_to_the_same_config) {
    config cfg;
    cfg.data_dir = "C:\\data \"quoted\"\n\x01";
    cfg.mqtt = parse_listen_address("[2001:db8::1]:8883");
    cfg.workers = 7;
    cfg.log_level = logging_level::critical;
    cfg.ready_file = "/tmp/ready.json";
    cfg.dev_hub = dev_hub_mode::on;
    cfg.api = parse_listen_address("0.0.0.0:0");
    cfg.region = "nl-ams";
    cfg.endpoint = "iot.example.com";
    cfg.mqtts = parse_listen_address("[::]:0");
    cfg.tls_cert_file = "/etc/iothub/chain \"1\".pem";
    cfg.tls_key_file = "key.pem";
    cfg.tls_min_version = tls_version::v1_3;
    cfg.tls_handshake_timeout = 3600;
    cfg.tls_crl_file = "/etc/iothub/revoked.pem";
    cfg.ws = parse_listen_address("off", true);
    cfg.wss = parse_listen_address("[::1]:443");
    cfg.ws_path = "/mqtt/v1";
    cfg.ws_origins = "https://a.example, https://b.example";
    cfg.persistence = false;
    cfg.limits.max_queued_bytes = 123456789012;
    cfg.limits.retain_available = false;
    cfg.limits.max_session_expiry = 0;
    EXPECT_EQ(parse_config(describe(cfg), "described"), cfg);
    EXPECT_EQ(parse_config(describe(config{}), "described"), config{});
}

TEST(config, reference_lists_every_key) {
    auto reference = reference_markdown();
    std::istringstream described(describe(config{}));
    std::string line;
    int keys = 0;
    while (std::getline(described, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        auto key = line.substr(0, line.find(' '));
        EXPECT_NE(reference.find("| `" + key + "` |"), std::string::npos) << key;
        ++keys;
    }
    EXPECT_EQ(keys, 34);
    EXPECT_NE(reference.find("`--config FILE`"), std::string::npos);
    EXPECT_NE(reference.find("`--dev-hub`, `--no-dev-hub`"), std::string::npos);
}

// The README's configuration reference is the generated one.
TEST(config, readme_reference_is_current) {
    const auto path = std::filesystem::path(IOTHUB_SOURCE_DIR) / "README.md";
    std::ifstream in(path);
    ASSERT_TRUE(in) << "README.md not found at " << path;
    std::ostringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find(reference_markdown()), std::string::npos)
        << "regenerate the configuration table in README.md from reference_markdown()";
}

TEST(config, websocket_listeners_may_be_off) {
    auto cfg = apply_flags(config{}, {{"ws", "off"}, {"wss", "127.0.0.1:0"}, {"ws_path", "/ws"}});
    EXPECT_FALSE(cfg.ws.enabled());
    EXPECT_TRUE(cfg.ws.is_loopback());
    EXPECT_EQ(cfg.wss, parse_listen_address("127.0.0.1:0"));
    EXPECT_EQ(cfg.ws_path, "/ws");
    // Only the WebSocket listeners may be off.
    EXPECT_THROW(apply_flags(config{}, {{"mqtt", "off"}}), config_error);
    EXPECT_THROW(apply_flags(config{}, {{"ws_path", "mqtt"}}), config_error);
    EXPECT_THROW(apply_flags(config{}, {{"ws_path", "/a b"}}), config_error);
    EXPECT_THROW(apply_flags(config{}, {{"ws_path", "/a?b"}}), config_error);
    // A WebSocket listener on every interface closes the development hub, as the others do.
    EXPECT_FALSE(apply_flags(config{}, {{"ws", "0.0.0.0:8083"}}).dev_hub_open());
}

}  // namespace
}  // namespace iothub::cli
