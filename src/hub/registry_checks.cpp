#include "hub/registry_checks.hpp"

#include "hub/templates.hpp"

#include <algorithm>

#include "mqtt/topic.hpp"

namespace iothub::hub::checks {

namespace {

constexpr std::size_t max_name_length = 255;      // characters
constexpr std::size_t max_filter_length = 65535;  // bytes, as an MQTT string

std::size_t code_points(std::string_view utf8) {
    return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

// C0, DEL and C1 (U+0080..U+009F, encoded C2 80..C2 9F) controls.
bool has_control(std::string_view utf8) {
    for (std::size_t i = 0; i < utf8.size(); ++i) {
        const auto c = static_cast<unsigned char>(utf8[i]);
        if (c < 0x20 || c == 0x7F) return true;
        if (c == 0xC2 && i + 1 < utf8.size() && static_cast<unsigned char>(utf8[i + 1]) < 0xA0) {
            return true;
        }
    }
    return false;
}

// A name given by the caller: UTF-8, at most 255 characters, no control characters and
// none of `forbidden`.
std::optional<argument_error> check_name(std::string_view name, std::string_view forbidden) {
    if (!mqtt::valid_utf8(name)) return argument_error{"name", "format", "must be valid UTF-8"};
    if (code_points(name) > max_name_length) {
        return argument_error{"name", "constraint", "must be at most 255 characters"};
    }
    if (has_control(name)) {
        return argument_error{"name", "constraint", "must not contain control characters"};
    }
    if (name.find_first_of(forbidden) != std::string_view::npos) {
        return argument_error{"name", "constraint",
                              "must not contain any of '" + std::string(forbidden) + "'"};
    }
    return std::nullopt;
}

// Each {{ template }} read as one plain character standing for its value, so the rest can
// be checked as an MQTT filter.
std::optional<std::string> opaque_templates(std::string_view topic, std::string& why) {
    return substitute_templates(
        topic,
        [](std::string_view name) -> std::optional<std::string_view> {
            const bool known = name == "hub.id" || name == "hub.name" || name == "device.id" ||
                               name == "device.name";
            if (!known) return std::nullopt;
            return std::string_view("v");
        },
        why);
}

std::optional<argument_error> check_filter_topic(const std::string& topic, std::string field) {
    if (topic.empty()) return argument_error{std::move(field), "required", "must not be empty"};
    if (topic.size() > max_filter_length) {
        return argument_error{std::move(field), "constraint", "must be at most 65535 bytes"};
    }
    std::string why;
    const auto opaque = opaque_templates(topic, why);
    if (!opaque) return argument_error{std::move(field), "format", std::move(why)};
    if (!mqtt::valid_topic_filter(*opaque)) {
        return argument_error{std::move(field), "format", "must be a valid MQTT topic filter"};
    }
    return std::nullopt;
}

void check_rule(const filter_rule& rule, const std::string& field,
                std::vector<argument_error>& errors) {
    if (rule.policy != filter_policy::accept && rule.policy != filter_policy::reject &&
        !rule.topics.empty()) {
        errors.push_back({field + ".policy", "format", "must be accept or reject"});
    }
    for (std::size_t i = 0; i < rule.topics.size(); ++i) {
        const std::string name = field + ".topics[" + std::to_string(i) + "]";
        if (auto e = check_filter_topic(rule.topics[i], name)) errors.push_back(std::move(*e));
    }
}

}  // namespace

std::optional<argument_error> hub_name(std::string_view name) {
    // No level separators or wildcards: {{hub.name}} in a filter must stay one level.
    return check_name(name, "/+#");
}

std::optional<argument_error> device_name(std::string_view name) {
    return check_name(name, "/+#");
}

std::optional<argument_error> events_topic_prefix(std::string_view prefix) {
    if (mqtt::valid_topic_name(prefix, max_filter_length)) return std::nullopt;
    return argument_error{"events_topic_prefix", "format",
                          "must be a non-empty MQTT topic name without wildcards"};
}

void message_filters_of(const message_filters& f, const std::string& field,
                        std::vector<argument_error>& errors) {
    check_rule(f.publish, field + ".publish", errors);
    check_rule(f.subscribe, field + ".subscribe", errors);
}

message_filters normalized(message_filters f) {
    for (filter_rule* rule : {&f.publish, &f.subscribe}) {
        if (rule->policy != filter_policy::accept) rule->policy = filter_policy::reject;
    }
    return f;
}

}  // namespace iothub::hub::checks
