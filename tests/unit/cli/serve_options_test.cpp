#include "cli/serve_options.hpp"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "temp_file.hpp"

namespace iothub::cli {
namespace {

using testing::temp_file;

// An `iothub serve` command line parsed by CLI11.
class serve_command {
public:
    serve_command() : serve_(app_.add_subcommand("serve")), options_(*serve_) {}

    const serve_options& parse(std::vector<std::string> args) {
        args.insert(args.begin(), {"iothub", "serve"});
        std::vector<const char*> argv;
        for (const auto& arg : args) {
            argv.push_back(arg.c_str());
        }
        app_.parse(static_cast<int>(argv.size()), argv.data());
        return options_;
    }
    std::string help() const { return serve_->help(); }

private:
    CLI::App app_{"iothub"};
    CLI::App* serve_;
    serve_options options_;
};

config resolve(std::vector<std::string> args) {
    serve_command command;
    return command.parse(std::move(args)).resolve();
}

std::string resolve_error(std::vector<std::string> args) {
    try {
        resolve(std::move(args));
    } catch (const config_error& e) {
        return e.what();
    }
    return "no error";
}

TEST(serve_options, no_flags_give_defaults) {
    serve_command command;
    const auto& options = command.parse({});
    EXPECT_EQ(options.resolve(), config{});
    EXPECT_EQ(options.config_file(), "");
    EXPECT_TRUE(options.flags().empty());
}

TEST(serve_options, every_flag_sets_its_key) {
    auto cfg = resolve({"--data-dir",
                        "/srv/hub",
                        "--mqtt",
                        "0.0.0.0:0",
                        "--mqtts",
                        "[::1]:0",
                        "--tls-cert-file",
                        "/etc/c.pem",
                        "--tls-key-file",
                        "/etc/k.pem",
                        "--tls-min-version",
                        "1.3",
                        "--tls-handshake-timeout",
                        "2",
                        "--workers",
                        "2",
                        "--log-level",
                        "warn",
                        "--ready-file",
                        "/tmp/r.json",
                        "--dev-hub",
                        "--persistence",
                        "false",
                        "--drop-log-interval",
                        "5",
                        "--max-packet-size",
                        "1024",
                        "--max-queued-messages",
                        "9",
                        "--max-queued-bytes",
                        "4096",
                        "--max-inflight",
                        "3",
                        "--receive-maximum",
                        "4",
                        "--topic-alias-maximum",
                        "0",
                        "--max-topic-length",
                        "100",
                        "--max-topic-levels",
                        "8",
                        "--max-connections",
                        "10",
                        "--max-keep-alive",
                        "30",
                        "--max-session-expiry",
                        "3600",
                        "--max-retained",
                        "5",
                        "--retain-available=no"});
    EXPECT_EQ(cfg.data_dir, "/srv/hub");
    EXPECT_EQ(cfg.mqtt, (listen_address{"0.0.0.0", 0}));
    EXPECT_EQ(cfg.mqtts, (listen_address{"::1", 0}));
    EXPECT_EQ(cfg.tls_cert_file, "/etc/c.pem");
    EXPECT_EQ(cfg.tls_key_file, "/etc/k.pem");
    EXPECT_EQ(cfg.tls_min_version, tls_version::v1_3);
    EXPECT_EQ(cfg.tls_handshake_timeout, 2u);
    EXPECT_EQ(cfg.workers, 2u);
    EXPECT_EQ(cfg.log_level, logging_level::warning);
    EXPECT_EQ(cfg.ready_file, "/tmp/r.json");
    EXPECT_EQ(cfg.dev_hub, dev_hub_mode::on);
    EXPECT_FALSE(cfg.persistence);
    EXPECT_EQ(cfg.drop_log_interval, 5u);
    EXPECT_EQ(cfg.limits.max_packet_size, 1024u);
    EXPECT_EQ(cfg.limits.max_queued_messages, 9u);
    EXPECT_EQ(cfg.limits.max_queued_bytes, 4096u);
    EXPECT_EQ(cfg.limits.max_inflight, 3);
    EXPECT_EQ(cfg.limits.receive_maximum, 4);
    EXPECT_EQ(cfg.limits.topic_alias_maximum, 0);
    EXPECT_EQ(cfg.limits.max_topic_length, 100);
    EXPECT_EQ(cfg.limits.max_topic_levels, 8u);
    EXPECT_EQ(cfg.limits.max_connections, 10u);
    EXPECT_EQ(cfg.limits.max_keep_alive, 30);
    EXPECT_EQ(cfg.limits.max_session_expiry, 3600u);
    EXPECT_EQ(cfg.limits.max_retained, 5u);
    EXPECT_FALSE(cfg.limits.retain_available);
}

TEST(serve_options, flags_override_the_file) {
    temp_file file("workers = 8\nmax_inflight = 50\nlog_level = \"debug\"\ndev_hub = true\n");
    auto cfg = resolve({"--config", file.path(), "--max-inflight", "5", "--no-dev-hub"});
    EXPECT_EQ(cfg.workers, 8u);
    EXPECT_EQ(cfg.limits.max_inflight, 5);
    EXPECT_EQ(cfg.log_level, logging_level::debug);
    EXPECT_EQ(cfg.dev_hub, dev_hub_mode::off);
}

TEST(serve_options, flag_order_does_not_matter) {
    temp_file file("max_inflight = 50\n");
    auto cfg = resolve({"--max-inflight", "5", "--config", file.path()});
    EXPECT_EQ(cfg.limits.max_inflight, 5);
}

TEST(serve_options, last_repeated_flag_wins) {
    EXPECT_EQ(resolve({"--workers", "2", "--workers", "3"}).workers, 3u);
}

TEST(serve_options, bad_flag_values_name_the_flag) {
    EXPECT_EQ(resolve_error({"--workers", "many"}), "--workers: expected an integer, got 'many'");
    EXPECT_EQ(resolve_error({"--max-packet-size", "10"}),
              "--max-packet-size: must be between 64 and 268435455, got 10");
    EXPECT_EQ(resolve_error({"--max-connections", "99999999999999999999"}),
              "--max-connections: must be between 0 and 4294967295, got 99999999999999999999");
    EXPECT_EQ(resolve_error({"--mqtt", "localhost:65536"}),
              "--mqtt: port 65536 is out of range (0..65535)");
    EXPECT_EQ(resolve_error({"--tls-min-version", "1.1"}),
              "--tls-min-version: expected \"1.2\" or \"1.3\", got '1.1'");
    EXPECT_EQ(resolve_error({"--persistence", "maybe"}),
              "--persistence: expected true or false, got 'maybe'");
    EXPECT_EQ(resolve_error({"--log-level", "loud"}),
              "--log-level: expected one of trace, debug, info, warning, error, critical, off; "
              "got 'loud'");
}

TEST(serve_options, bad_file_is_reported_before_flags) {
    temp_file file("max_inflight = 0\n");
    EXPECT_EQ(resolve_error({"--config", file.path(), "--max-inflight", "5"}),
              file.path() + ":1: max_inflight: must be between 1 and 65535, got 0");
}

TEST(serve_options, dev_hub_switches) {
    EXPECT_EQ(resolve({}).dev_hub, dev_hub_mode::automatic);
    EXPECT_EQ(resolve({"--dev-hub"}).dev_hub, dev_hub_mode::on);
    EXPECT_EQ(resolve({"--no-dev-hub"}).dev_hub, dev_hub_mode::off);
    EXPECT_EQ(resolve_error({"--dev-hub", "--no-dev-hub"}),
              "--dev-hub and --no-dev-hub contradict each other");
}

TEST(serve_options, flags_lists_what_was_given) {
    serve_command command;
    const auto& options = command.parse({"--workers", "2", "--no-dev-hub", "--config", "x.toml"});
    auto flags = options.flags();
    ASSERT_EQ(flags.size(), 2u);
    EXPECT_EQ(flags[0].key, "workers");
    EXPECT_EQ(flags[0].text, "2");
    EXPECT_EQ(flags[1].key, "dev_hub");
    EXPECT_EQ(flags[1].text, "false");
    EXPECT_EQ(options.config_file(), "x.toml");
}

TEST(serve_options, help_groups_options_and_shows_defaults) {
    serve_command command;
    auto help = command.help();
    for (const char* group :
         {"General:", "Listeners:", "TLS:", "Storage:", "Limits:", "Logging:"}) {
        EXPECT_NE(help.find(group), std::string::npos) << group;
    }
    EXPECT_LT(help.find("Listeners:"), help.find("--mqtt ADDR:PORT"));
    EXPECT_LT(help.find("Limits:"), help.find("--max-packet-size BYTES"));
    EXPECT_NE(help.find("[default: 1048576 = 1 MiB]"), std::string::npos);
    EXPECT_NE(help.find("[default: 127.0.0.1:1883]"), std::string::npos);
    EXPECT_NE(help.find("[default: 127.0.0.1:8883]"), std::string::npos);
    EXPECT_LT(help.find("TLS:"), help.find("--tls-cert-file FILE"));
    EXPECT_NE(help.find("--max-keep-alive SECONDS"), std::string::npos);
    EXPECT_NE(help.find("--no-dev-hub"), std::string::npos);
    EXPECT_NE(help.find("--config FILE"), std::string::npos);
}

TEST(serve_options, apply_flags_rejects_empty_data_dir) {
    try {
        apply_flags(config{}, {{"data_dir", ""}});
        FAIL() << "no error";
    } catch (const config_error& e) {
        EXPECT_STREQ(e.what(), "--data-dir: must not be empty");
        EXPECT_EQ(e.key(), "data_dir");
    }
}

TEST(serve_options, apply_flags_rejects_unknown_keys) {
    try {
        apply_flags(config{}, {{"colour", "blue"}});
        FAIL() << "no error";
    } catch (const config_error& e) {
        EXPECT_STREQ(e.what(), "unknown setting 'colour'");
    }
}

}  // namespace
}  // namespace iothub::cli
