#include "cli/config.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "temp_file.hpp"

namespace iothub::cli {
namespace {

using testing::temp_file;
using keys = std::vector<std::string>;

TEST(reload, unchanged_file_changes_nothing) {
    temp_file file("max_inflight = 5\n");
    auto running = load_config_file(file.path());
    auto result = reload(running, file.path(), {});
    EXPECT_EQ(result.next, running);
    EXPECT_TRUE(result.applied.empty());
    EXPECT_TRUE(result.ignored.empty());
}

TEST(reload, reloadable_keys_are_applied) {
    temp_file file("max_inflight = 5\n");
    auto running = load_config_file(file.path());
    file.write(
        "max_inflight = 6\nlog_level = \"debug\"\nmax_packet_size = 2048\n"
        "drop_log_interval = 1\nretain_available = false\n");
    auto result = reload(running, file.path(), {});
    EXPECT_EQ(result.applied, (keys{"max_packet_size", "max_inflight", "retain_available",
                                    "log_level", "drop_log_interval"}));
    EXPECT_TRUE(result.ignored.empty());
    EXPECT_EQ(result.next.limits.max_inflight, 6);
    EXPECT_EQ(result.next.limits.max_packet_size, 2048u);
    EXPECT_FALSE(result.next.limits.retain_available);
    EXPECT_EQ(result.next.log_level, logging_level::debug);
    EXPECT_EQ(result.next.drop_log_interval, 1u);
}

TEST(reload, tls_keys_are_applied) {
    temp_file file("");
    auto running = load_config_file(file.path());
    file.write(
        "tls_cert_file = \"/etc/new.pem\"\ntls_key_file = \"/etc/new.key\"\n"
        "tls_min_version = \"1.3\"\ntls_handshake_timeout = 2\n");
    auto result = reload(running, file.path(), {});
    EXPECT_EQ(result.applied,
              (keys{"tls_cert_file", "tls_key_file", "tls_min_version", "tls_handshake_timeout"}));
    EXPECT_TRUE(result.ignored.empty());
    EXPECT_EQ(result.next.tls_cert_file, "/etc/new.pem");
    EXPECT_EQ(result.next.tls_key_file, "/etc/new.key");
    EXPECT_EQ(result.next.tls_min_version, tls_version::v1_3);
    EXPECT_EQ(result.next.tls_handshake_timeout, 2u);
}

TEST(reload, restart_keys_are_ignored_and_keep_running_values) {
    temp_file file("");
    auto running = load_config_file(file.path());
    file.write(
        "data_dir = \"/elsewhere\"\nmqtt = \"0.0.0.0:1884\"\nworkers = 3\npersistence = false\n"
        "dev_hub = true\nready_file = \"/tmp/r\"\nmax_retained = 7\nmqtts = \"0.0.0.0:1\"\n");
    auto result = reload(running, file.path(), {});
    EXPECT_EQ(result.ignored, (keys{"workers", "ready_file", "mqtt", "mqtts", "dev_hub", "data_dir",
                                    "persistence"}));
    EXPECT_EQ(result.applied, (keys{"max_retained"}));
    auto expected = running;
    expected.limits.max_retained = 7;
    EXPECT_EQ(result.next, expected);
}

TEST(reload, removed_keys_return_to_defaults) {
    temp_file file("max_connections = 10\nlog_level = \"trace\"\n");
    auto running = load_config_file(file.path());
    file.write("");
    auto result = reload(running, file.path(), {});
    EXPECT_EQ(result.applied, (keys{"max_connections", "log_level"}));
    EXPECT_EQ(result.next, config{});
}

TEST(reload, flags_still_win) {
    temp_file file("max_inflight = 5\nmax_connections = 1\n");
    flag_values flags{{"max_inflight", "9"}, {"workers", "2"}};
    auto running = apply_flags(load_config_file(file.path()), flags);
    file.write("max_inflight = 50\nmax_connections = 2\nworkers = 16\n");
    auto result = reload(running, file.path(), flags);
    EXPECT_EQ(result.applied, (keys{"max_connections"}));
    EXPECT_TRUE(result.ignored.empty());
    EXPECT_EQ(result.next.limits.max_inflight, 9);
    EXPECT_EQ(result.next.limits.max_connections, 2u);
    EXPECT_EQ(result.next.workers, 2u);
}

TEST(reload, bad_file_throws_and_leaves_running_alone) {
    temp_file file("max_inflight = 5\n");
    const auto running = load_config_file(file.path());
    const auto before = running;
    file.write("max_inflight = 6\nmax_inflight_typo = 7\n");
    EXPECT_THROW(reload(running, file.path(), {}), config_error);
    file.write("max_inflight = [");
    EXPECT_THROW(reload(running, file.path(), {}), config_error);
    EXPECT_EQ(running, before);
}

TEST(reload, vanished_file_throws) {
    std::string path;
    config running;
    {
        temp_file file("");
        path = file.path();
        running = load_config_file(path);
    }
    EXPECT_THROW(reload(running, path, {}), config_error);
}

TEST(reload, without_a_file_only_flags_and_defaults_count) {
    config running = apply_flags(config{}, {{"log_level", "error"}});
    auto result = reload(running, "", {{"log_level", "error"}});
    EXPECT_TRUE(result.applied.empty());
    EXPECT_EQ(result.next, running);
}

}  // namespace
}  // namespace iothub::cli
