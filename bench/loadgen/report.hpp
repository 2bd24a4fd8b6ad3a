#pragma once
// What one run measured, printed for people or as one JSON line.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "histogram.hpp"
#include "options.hpp"
#include "stream_check.hpp"

namespace iothub::bench {

struct result {
    double measured_s = 0;
    std::uint64_t sent = 0;      // in the measured window
    std::uint64_t received = 0;  // deliveries in the measured window
    std::uint64_t total_sent = 0;
    std::uint64_t total_received = 0;
    bool has_traffic = false;
    histogram latency;
    std::string latency_name = "latency";
    integrity checked;
    integrity slow_checked;  // slow scenario: the slow subscriber, for information
    bool integrity_checked = false;
    bool integrity_ok = true;
    std::string integrity_note;
    std::uint64_t stalls = 0;
    std::uint64_t errors = 0;
    std::vector<std::string> error_messages;
    bool broker = false;
    double cpu_user_s = 0;
    double cpu_sys_s = 0;
    std::uint64_t rss_before = 0;
    std::uint64_t rss_after = 0;
    std::uint64_t rss_max = 0;
    std::vector<std::pair<std::string, double>> extra;
    std::vector<std::pair<std::string, std::string>> text;  // e.g. the TLS parameters

    void set(const std::string& key, double value);
    void set_text(const std::string& key, const std::string& value);
};

void print_text(const options& o, const result& r);
void print_json(const options& o, const result& r);

}  // namespace iothub::bench
