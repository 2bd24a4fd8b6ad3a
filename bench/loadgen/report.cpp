#include "report.hpp"

#include <cmath>
#include <cstdio>
#include <string_view>

namespace iothub::bench {

void result::set(const std::string& key, double value) {
    for (auto& kv : extra) {
        if (kv.first == key) {
            kv.second = value;
            return;
        }
    }
    extra.emplace_back(key, value);
}

void result::set_text(const std::string& key, const std::string& value) {
    for (auto& kv : text) {
        if (kv.first == key) {
            kv.second = value;
            return;
        }
    }
    text.emplace_back(key, value);
}

namespace {

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += ch;
        }
    }
    out += '"';
    return out;
}

std::string json_number(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        std::snprintf(buf, sizeof buf, "%.3f", v);
    }
    return buf;
}

double per_second(std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0; }

}  // namespace

void print_text(const options& o, const result& r) {
    std::printf("scenario %s: clients %d, qos %d, payload %zu B, MQTT %s over %s, %s, threads %d\n",
                o.scenario_name.c_str(), o.clients, o.qos, o.payload, o.v5 ? "5" : "3.1.1",
                transport_name(o.link),
                o.rate > 0 ? ("rate " + json_number(o.rate) + " msg/s").c_str()
                           : ("window " + std::to_string(o.window)).c_str(),
                o.threads);
    if (r.has_traffic) {
        std::printf("  measured   %.2f s\n", r.measured_s);
        std::printf("  sent       %12.0f msg/s  (%llu in the window, %llu in all)\n",
                    per_second(r.sent, r.measured_s), static_cast<unsigned long long>(r.sent),
                    static_cast<unsigned long long>(r.total_sent));
        std::printf("  received   %12.0f msg/s  (deliveries; %llu in the window, %llu in all)\n",
                    per_second(r.received, r.measured_s),
                    static_cast<unsigned long long>(r.received),
                    static_cast<unsigned long long>(r.total_received));
    }
    if (r.latency.count() > 0) {
        std::printf("  %s us   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%llu samples)\n",
                    r.latency_name.c_str(), us(r.latency.quantile(0.5)), us(r.latency.quantile(0.9)),
                    us(r.latency.quantile(0.99)), us(r.latency.quantile(0.999)), us(r.latency.max()),
                    static_cast<unsigned long long>(r.latency.count()));
    }
    if (r.integrity_checked) {
        std::printf("  integrity  %s: lost %llu, duplicated %llu, reordered %llu%s%s\n",
                    r.integrity_ok ? "OK" : "FAILED",
                    static_cast<unsigned long long>(r.checked.lost),
                    static_cast<unsigned long long>(r.checked.duplicated),
                    static_cast<unsigned long long>(r.checked.reordered),
                    r.integrity_note.empty() ? "" : "; ", r.integrity_note.c_str());
    }
    if (r.stalls > 0) {
        std::printf("  stalls     %llu (a window freed after 1 s without deliveries)\n",
                    static_cast<unsigned long long>(r.stalls));
    }
    if (r.broker) {
        const double cpu = r.cpu_user_s + r.cpu_sys_s;
        std::printf("  broker     cpu %.2f s (user %.2f, sys %.2f)", cpu, r.cpu_user_s, r.cpu_sys_s);
        if (r.received > 0) {
            std::printf(", %.3f us/msg", cpu * 1e6 / static_cast<double>(r.received));
        }
        std::printf(", rss %.1f -> %.1f MiB (max %.1f)\n", static_cast<double>(r.rss_before) / 1048576.0,
                    static_cast<double>(r.rss_after) / 1048576.0,
                    static_cast<double>(r.rss_max) / 1048576.0);
    }
    for (const auto& [k, v] : r.extra) {
        std::printf("  %-26s %s\n", k.c_str(), json_number(v).c_str());
    }
    for (const auto& [k, v] : r.text) {
        std::printf("  %-26s %s\n", k.c_str(), v.c_str());
    }
    if (r.errors > 0) {
        std::printf("  ERRORS     %llu\n", static_cast<unsigned long long>(r.errors));
        for (const auto& e : r.error_messages) {
            std::printf("    %s\n", e.c_str());
        }
    }
    std::fflush(stdout);
}

void print_json(const options& o, const result& r) {
    std::string j = "{";
    auto field = [&](const char* k, const std::string& v) {
        if (j.size() > 1) {
            j += ',';
        }
        j += json_string(k);
        j += ':';
        j += v;
    };
    field("label", json_string(o.label));
    field("scenario", json_string(o.scenario_name));
    field("clients", json_number(o.clients));
    field("publishers", json_number(o.publishers));
    field("threads", json_number(o.threads));
    field("qos", json_number(o.qos));
    field("mqtt_version", json_string(o.v5 ? "5" : "3.1.1"));
    field("transport", json_string(transport_name(o.link)));
    field("payload", json_number(static_cast<double>(o.payload)));
    field("topic", json_string(o.topic));
    field("sub_topic", json_string(o.sub_topic));
    field("window", o.rate > 0 ? "null" : json_number(o.window));
    field("rate", o.rate > 0 ? json_number(o.rate) : "null");
    field("measured_s", json_number(r.measured_s));
    if (r.has_traffic) {
        field("sent", json_number(static_cast<double>(r.sent)));
        field("received", json_number(static_cast<double>(r.received)));
        field("sent_per_s", json_number(per_second(r.sent, r.measured_s)));
        field("received_per_s", json_number(per_second(r.received, r.measured_s)));
        field("total_sent", json_number(static_cast<double>(r.total_sent)));
        field("total_received", json_number(static_cast<double>(r.total_received)));
    }
    if (r.latency.count() > 0) {
        std::string l = "{";
        l += "\"what\":" + json_string(r.latency_name);
        l += ",\"samples\":" + json_number(static_cast<double>(r.latency.count()));
        l += ",\"p50_us\":" + json_number(us(r.latency.quantile(0.5)));
        l += ",\"p90_us\":" + json_number(us(r.latency.quantile(0.9)));
        l += ",\"p99_us\":" + json_number(us(r.latency.quantile(0.99)));
        l += ",\"p999_us\":" + json_number(us(r.latency.quantile(0.999)));
        l += ",\"max_us\":" + json_number(us(r.latency.max()));
        l += "}";
        field("latency", l);
    }
    if (r.integrity_checked) {
        std::string g = "{";
        g += "\"ok\":" + std::string(r.integrity_ok ? "true" : "false");
        g += ",\"lost\":" + json_number(static_cast<double>(r.checked.lost));
        g += ",\"duplicated\":" + json_number(static_cast<double>(r.checked.duplicated));
        g += ",\"reordered\":" + json_number(static_cast<double>(r.checked.reordered));
        g += ",\"note\":" + json_string(r.integrity_note);
        g += "}";
        field("integrity", g);
    }
    field("stalls", json_number(static_cast<double>(r.stalls)));
    field("errors", json_number(static_cast<double>(r.errors)));
    std::string errs = "[";
    for (std::size_t i = 0; i < r.error_messages.size(); ++i) {
        if (i > 0) {
            errs += ',';
        }
        errs += json_string(r.error_messages[i]);
    }
    errs += "]";
    field("error_messages", errs);
    if (r.broker) {
        const double cpu = r.cpu_user_s + r.cpu_sys_s;
        std::string b = "{";
        b += "\"cpu_s\":" + json_number(cpu);
        b += ",\"user_s\":" + json_number(r.cpu_user_s);
        b += ",\"sys_s\":" + json_number(r.cpu_sys_s);
        b += ",\"cpu_us_per_msg\":" +
             (r.received > 0 ? json_number(cpu * 1e6 / static_cast<double>(r.received)) : "null");
        b += ",\"rss_before\":" + json_number(static_cast<double>(r.rss_before));
        b += ",\"rss_after\":" + json_number(static_cast<double>(r.rss_after));
        b += ",\"rss_max\":" + json_number(static_cast<double>(r.rss_max));
        b += "}";
        field("broker", b);
    }
    for (const auto& [k, v] : r.extra) {
        field(k.c_str(), json_number(v));
    }
    for (const auto& [k, v] : r.text) {
        field(k.c_str(), json_string(v));
    }
    field("ok", (r.errors == 0 && r.integrity_ok) ? "true" : "false");
    j += "}\n";
    std::fputs(j.c_str(), stdout);
    std::fflush(stdout);
}

}  // namespace iothub::bench
