#include "store/operation.hpp"

#include <type_traits>

namespace iothub::store {

namespace {

constexpr std::size_t element_overhead = 64;

std::string make_key(char kind, const std::string& a, const std::string& b) {
    std::string key;
    key.reserve(2 + 20 + a.size() + b.size());
    key += kind;
    key += std::to_string(a.size());
    key += ':';
    key += a;
    key += b;
    return key;
}

}  // namespace

std::size_t queued_bytes(const operation& op) {
    return std::visit(
        [](const auto& w) -> std::size_t {
            using T = std::decay_t<decltype(w)>;
            std::size_t n = sizeof(operation);
            if constexpr (std::is_same_v<T, retained_record>) {
                n += w.hub.size() + w.topic.size() + w.payload.size() + w.properties.size();
            } else if constexpr (std::is_same_v<T, retained_key>) {
                n += w.hub.size() + w.topic.size();
            } else if constexpr (std::is_same_v<T, session_record>) {
                n += w.hub.size() + w.client_id.size() + 2 * w.incoming_qos2.size();
                for (const auto& s : w.subscriptions) n += element_overhead + s.filter.size();
                for (const auto& m : w.messages) {
                    n += element_overhead + m.topic.size() + m.payload.size() + m.properties.size();
                }
            } else if constexpr (std::is_same_v<T, session_key>) {
                n += w.hub.size() + w.client_id.size();
            }
            return n;
        },
        op.what);
}

std::string write_key(const operation& op) {
    return std::visit(
        [](const auto& w) -> std::string {
            using T = std::decay_t<decltype(w)>;
            if constexpr (std::is_same_v<T, retained_record> || std::is_same_v<T, retained_key>) {
                return make_key('r', w.hub, w.topic);
            } else if constexpr (std::is_same_v<T, session_record> ||
                                 std::is_same_v<T, session_key>) {
                return make_key('s', w.hub, w.client_id);
            } else {
                return {};
            }
        },
        op.what);
}

}  // namespace iothub::store
