#include "mqtt/packet.hpp"

#include <type_traits>

namespace iothub::mqtt {

const char* to_string(packet_type t) noexcept {
    switch (t) {
        case packet_type::connect: return "CONNECT";
        case packet_type::connack: return "CONNACK";
        case packet_type::publish: return "PUBLISH";
        case packet_type::puback: return "PUBACK";
        case packet_type::pubrec: return "PUBREC";
        case packet_type::pubrel: return "PUBREL";
        case packet_type::pubcomp: return "PUBCOMP";
        case packet_type::subscribe: return "SUBSCRIBE";
        case packet_type::suback: return "SUBACK";
        case packet_type::unsubscribe: return "UNSUBSCRIBE";
        case packet_type::unsuback: return "UNSUBACK";
        case packet_type::pingreq: return "PINGREQ";
        case packet_type::pingresp: return "PINGRESP";
        case packet_type::disconnect: return "DISCONNECT";
        case packet_type::auth: return "AUTH";
    }
    return "RESERVED";
}

packet_type type_of(const packet& p) noexcept {
    return std::visit(
        [](const auto& pkt) -> packet_type {
            using T = std::decay_t<decltype(pkt)>;
            if constexpr (std::is_same_v<T, connect>) return packet_type::connect;
            else if constexpr (std::is_same_v<T, connack>) return packet_type::connack;
            else if constexpr (std::is_same_v<T, publish>) return packet_type::publish;
            else if constexpr (std::is_same_v<T, ack>) return pkt.type;
            else if constexpr (std::is_same_v<T, subscribe>) return packet_type::subscribe;
            else if constexpr (std::is_same_v<T, suback>) return packet_type::suback;
            else if constexpr (std::is_same_v<T, unsubscribe>) return packet_type::unsubscribe;
            else if constexpr (std::is_same_v<T, unsuback>) return packet_type::unsuback;
            else if constexpr (std::is_same_v<T, pingreq>) return packet_type::pingreq;
            else if constexpr (std::is_same_v<T, pingresp>) return packet_type::pingresp;
            else if constexpr (std::is_same_v<T, disconnect>) return packet_type::disconnect;
            else return packet_type::auth;
        },
        p);
}

}  // namespace iothub::mqtt
