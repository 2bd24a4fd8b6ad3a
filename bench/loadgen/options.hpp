#pragma once
// Command-line options of iothub-bench.

#include <cstdint>
#include <string>
#include <vector>

#include "transport.hpp"

namespace iothub::bench {

// handshake is connect with --transport tls by default.
enum class scenario { pairs, fanout, fanin, shared, idle, connect, subscriptions, retained, slow };

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    transport link = transport::tcp;
    std::string cafile;  // tls, wss: verify the server with it; empty = no verification
    std::string ws_path = "/mqtt";
    std::size_t ws_max_frame = 64 * 1024;  // payload bytes per WebSocket frame at most
    scenario kind = scenario::pairs;
    std::string scenario_name = "pairs";
    int threads = 1;
    int clients = 1;
    int publishers = 1;        // shared: publishers beside the --clients members
    int qos = 0;
    bool v5 = false;
    std::size_t payload = 64;
    std::string topic;         // %i = client index; default depends on the scenario
    std::string sub_topic;     // subscribers' filter; default: the topic itself
    double duration = 10;
    double warmup = 2;
    std::uint32_t window = 1000;
    double rate = 0;           // total msg/s; 0 = closed loop (window)
    int broker_pid = 0;
    bool json = false;
    bool progress = true;
    std::uint16_t keep_alive = 60;
    // Background subscriptions made by one extra client before the run.
    std::uint32_t subscriptions = 0;
    std::vector<std::string> subscription_filters = {"bench/subs/%i"};
    bool then_pairs = false;   // subscriptions: run pairs throughput with them present
    // retained
    std::uint32_t retained = 100000;
    std::uint32_t lookups = 1000;
    // slow subscriber: bytes per second it reads
    std::uint64_t slow_read_rate = 64 * 1024;
    double drain = 3;          // seconds to wait for stragglers after the run
    std::string label;         // copied into the JSON line
};

// Parses argv; prints usage and exits on --help or a bad option.
options parse_options(int argc, char** argv);

}  // namespace iothub::bench
