#pragma once
// Hub events: messages the hub publishes on itself, on
// `{events_topic_prefix}/{severity}/{object-type}/{object-id}`, with a JSON payload
// {"time","severity","object-type","object-id","msg",…}. Rate-limited per object so a
// misbehaving device cannot flood its hub; what is held back is counted in the next event.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hub/registry.hpp"

namespace iothub::broker {
class worker;
}

namespace iothub::hub {

struct hub_event {
    std::string severity = "error";  // info | warning | error
    std::string object_type = "device";  // hub | device | route
    std::string object_id;
    std::string msg;
    std::vector<std::pair<std::string, std::string>> extra;  // further string fields
};

// The payload as published; `now_ms` is unix ms.
std::string event_payload(const hub_event& e, std::uint64_t now_ms);
// RFC 3339 UTC with seconds ("2020-01-17T15:01:29Z").
std::string rfc3339_seconds(std::uint64_t unix_ms);

struct event_limits {
    double burst = 20;         // events an object may raise at once
    double per_second = 5;     // sustained rate afterwards
};

class event_publisher {
public:
    event_publisher(const registry& reg, clock_fn clock, event_limits limits = {});

    // Publishes `e` on hub `hub_id` from worker `w`'s thread, unless the hub disables events
    // or the object is over its rate. `presence` events also need the hub's presence_events.
    void publish(broker::worker& w, const std::string& hub_id, hub_event e, bool presence = false);

    std::uint64_t suppressed_total() const;

private:
    struct bucket {
        double tokens = 0;
        std::uint64_t last_ms = 0;
        std::uint64_t suppressed = 0;
    };
    // True when the object may raise an event now; `held_back` gets the count suppressed
    // since its last event.
    bool take(const std::string& key, std::uint64_t now_ms, std::uint64_t& held_back);

    const registry& registry_;
    clock_fn clock_;
    event_limits limits_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, bucket> buckets_;
    std::uint64_t suppressed_total_ = 0;
};

}  // namespace iothub::hub
