#include "hub/events.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>

#include "broker/broker.hpp"
#include "broker/worker.hpp"

namespace iothub::hub {

namespace {

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out.push_back(ch);
            }
        }
    }
    out.push_back('"');
}

void append_field(std::string& out, std::string_view key, std::string_view value) {
    if (out.size() > 1) out.push_back(',');
    append_json_string(out, key);
    out.push_back(':');
    append_json_string(out, value);
}

}  // namespace

std::string rfc3339_seconds(std::uint64_t unix_ms) {
    const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string event_payload(const hub_event& e, std::uint64_t now_ms) {
    std::string out = "{";
    append_field(out, "time", rfc3339_seconds(now_ms));
    append_field(out, "severity", e.severity);
    append_field(out, "object-type", e.object_type);
    append_field(out, "object-id", e.object_id);
    append_field(out, "msg", e.msg);
    for (const auto& [k, v] : e.extra) append_field(out, k, v);
    out.push_back('}');
    return out;
}

event_publisher::event_publisher(const registry& reg, clock_fn clock, event_limits limits)
    : registry_(reg), clock_(std::move(clock)), limits_(limits) {}

bool event_publisher::take(const std::string& key, std::uint64_t now_ms, std::uint64_t& held_back) {
    std::lock_guard lock(mutex_);
    auto [it, fresh] = buckets_.try_emplace(key);
    auto& b = it->second;
    if (fresh) {
        b.tokens = limits_.burst;
    } else if (now_ms > b.last_ms) {
        b.tokens = std::min(limits_.burst,
                            b.tokens + static_cast<double>(now_ms - b.last_ms) / 1000.0 * limits_.per_second);
    }
    b.last_ms = std::max(b.last_ms, now_ms);
    if (b.tokens < 1.0) {
        ++b.suppressed;
        ++suppressed_total_;
        return false;
    }
    b.tokens -= 1.0;
    held_back = b.suppressed;
    b.suppressed = 0;
    // Forget objects that are quiet and full again, so the map stays small.
    if (buckets_.size() > 100000) {
        std::erase_if(buckets_, [&](const auto& kv) {
            return kv.second.suppressed == 0 && now_ms - kv.second.last_ms > 60000;
        });
    }
    return true;
}

void event_publisher::publish(broker::worker& w, const std::string& hub_id, hub_event e,
                              bool presence) {
    const auto hub = registry_.find_hub(hub_id);
    if (!hub || hub->disable_events) return;
    if (presence && !hub->presence_events) return;
    const auto now = clock_();
    std::uint64_t held_back = 0;
    if (!take(hub_id + '\0' + e.object_type + '\0' + e.object_id, now, held_back)) return;
    if (held_back > 0) e.extra.emplace_back("suppressed-events", std::to_string(held_back));

    auto m = std::make_shared<broker::message>();
    m->topic = hub->events_topic_prefix + '/' + e.severity + '/' + e.object_type + '/' + e.object_id;
    m->payload = event_payload(e, now);
    m->qos = 0;
    m->retain = false;
    m->origin = 0;  // the server: no-local never hides it
    w.publish(w.owner().hub(hub_id), m);
}

std::uint64_t event_publisher::suppressed_total() const {
    std::lock_guard lock(mutex_);
    return suppressed_total_;
}

}  // namespace iothub::hub
