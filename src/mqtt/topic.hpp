#pragma once
// Topic names and filters (MQTT 3.1.1 section 4.7, 5.0 section 4.7 and 4.8.2).

#include <cstddef>
#include <string_view>

namespace iothub::mqtt {

// Well-formed UTF-8 without U+0000, no surrogates, no overlong forms (spec 1.5.3 / 1.5.4).
bool valid_utf8(std::string_view s) noexcept;

// A PUBLISH topic: non-empty, no '+' or '#'. Limits (0 = unlimited) on length in bytes and
// number of levels.
bool valid_topic_name(std::string_view topic, std::size_t max_length = 0,
                      std::size_t max_levels = 0) noexcept;

// A SUBSCRIBE filter: non-empty; '#' only alone as the last level; '+' only alone in a level.
bool valid_topic_filter(std::string_view filter, std::size_t max_length = 0,
                        std::size_t max_levels = 0) noexcept;

// "$share/{group}/{filter}": group non-empty without '/', '+', '#'; filter valid.
struct shared_filter {
    std::string_view group;   // empty when not a shared subscription
    std::string_view filter;  // the filter proper
};
// Returns false when the text starts with "$share/" but is not a valid shared filter.
bool parse_shared(std::string_view text, shared_filter& out) noexcept;

// Does `filter` (valid, without $share prefix) match `topic` (valid)? Topics starting with '$'
// are not matched by a filter starting with '+' or '#'.
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace iothub::mqtt
