#include "broker/gatekeeper.hpp"

#include "mqtt/topic.hpp"

namespace iothub::broker {

namespace {

// Splits off the next level of a topic or filter; `rest` becomes what follows the '/'.
std::string_view next_level(std::string_view& rest, bool& more) {
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
        more = false;
        const auto level = rest;
        rest = {};
        return level;
    }
    more = true;
    const auto level = rest.substr(0, slash);
    rest.remove_prefix(slash + 1);
    return level;
}

// Whether every topic matched by `inner` is matched by `outer`.
bool covers(std::string_view outer, std::string_view inner) {
    bool outer_more = true;
    bool inner_more = true;
    while (outer_more && inner_more) {
        const auto o = next_level(outer, outer_more);
        if (o == "#") return true;
        const auto i = next_level(inner, inner_more);
        if (i == "#") return false;
        if (o == "+") continue;
        if (i == "+" || o != i) return false;
    }
    if (!outer_more && !inner_more) return true;
    // "a/#" also matches "a" itself.
    return !inner_more && outer_more && outer == "#";
}

// Whether some topic is matched by both filters.
bool overlaps(std::string_view a, std::string_view b) {
    bool a_more = true;
    bool b_more = true;
    while (a_more && b_more) {
        const auto x = next_level(a, a_more);
        const auto y = next_level(b, b_more);
        if (x == "#" || y == "#") return true;
        if (x == "+" || y == "+" || x == y) continue;
        return false;
    }
    if (!a_more && !b_more) return true;
    return (a_more && a == "#") || (b_more && b == "#");
}

}  // namespace

bool topic_rule::allows(std::string_view topic) const {
    for (const auto& f : filters) {
        if (mqtt::topic_matches(f, topic)) return accept;
    }
    return !accept;
}

bool topic_rule::allows_filter(std::string_view filter) const {
    if (accept) {
        for (const auto& f : filters) {
            if (covers(f, filter)) return true;
        }
        return false;
    }
    for (const auto& f : filters) {
        if (overlaps(f, filter)) return false;
    }
    return true;
}

}  // namespace iothub::broker
