#include "broker/session.hpp"

namespace iothub::broker {

std::uint16_t session::next_packet_id() {
    // Ids in use are those of the in-flight window, which is at most 65535 long.
    for (int tries = 0; tries < 65536; ++tries) {
        last_packet_id = static_cast<std::uint16_t>(last_packet_id + 1);
        if (last_packet_id == 0) last_packet_id = 1;
        bool used = false;
        // The window is ordered by send time and acks mostly arrive in order, so the
        // candidate is almost always far from the ids still in flight.
        for (const auto& m : inflight) {
            if (m.packet_id == last_packet_id) {
                used = true;
                break;
            }
        }
        if (!used) return last_packet_id;
    }
    return 0;  // cannot happen: the window never holds 65535 messages
}

std::uint64_t session::expires_at_ms() const noexcept {
    if (expiry_interval == 0xFFFFFFFF) return 0;
    return disconnected_at_ms + static_cast<std::uint64_t>(expiry_interval) * 1000;
}

}  // namespace iothub::broker
