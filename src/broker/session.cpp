#include "broker/session.hpp"

namespace iothub::broker {

std::uint16_t session::next_packet_id() {
    const auto advance = [](std::uint16_t id) -> std::uint16_t {
        return id == 65535 ? 1 : static_cast<std::uint16_t>(id + 1);
    };
    std::uint16_t candidate = advance(last_packet_id);
    if (!inflight.empty()) {
        // In-flight ids were allocated in order, oldest first, so they all lie in the cyclic
        // range from the oldest to the last one allocated; the next id falls outside that
        // range unless it covers the whole cycle. Only then is a search needed.
        const unsigned oldest = inflight.front().packet_id;
        const unsigned span = (last_packet_id + 65535u - oldest) % 65535u;
        if (span >= 65534u) {
            for (int tries = 0; tries < 65535; ++tries, candidate = advance(candidate)) {
                bool used = false;
                for (const auto& m : inflight) {
                    if (m.packet_id == candidate) {
                        used = true;
                        break;
                    }
                }
                if (!used) break;
            }
        }
    }
    last_packet_id = candidate;
    return candidate;
}

std::uint64_t session::expires_at_ms() const noexcept {
    if (expiry_interval == 0xFFFFFFFF) return 0;
    return disconnected_at_ms + static_cast<std::uint64_t>(expiry_interval) * 1000;
}

}  // namespace iothub::broker
