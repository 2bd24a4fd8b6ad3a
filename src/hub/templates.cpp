#include "hub/templates.hpp"

namespace iothub::hub {

namespace {

std::string_view trim_spaces(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

}  // namespace

std::optional<std::string> substitute_templates(std::string_view topic, const template_value& value,
                                                std::string& why) {
    std::string out;
    out.reserve(topic.size());
    std::size_t pos = 0;
    for (;;) {
        const auto open = topic.find("{{", pos);
        if (open == std::string_view::npos) {
            out.append(topic.substr(pos));
            return out;
        }
        const auto close = topic.find("}}", open + 2);
        if (close == std::string_view::npos) {
            why = "a '{{' template is not closed by '}}'";
            return std::nullopt;
        }
        const auto name = trim_spaces(topic.substr(open + 2, close - open - 2));
        const auto v = value(name);
        if (!v) {
            why = "unknown template '" + std::string(name) +
                  "'; known: hub.id, hub.name, device.id, device.name";
            return std::nullopt;
        }
        out.append(topic.substr(pos, open - pos));
        out.append(*v);
        pos = close + 2;
    }
}

}  // namespace iothub::hub
