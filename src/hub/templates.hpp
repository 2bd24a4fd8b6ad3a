#pragma once
// Filter templates: {{ hub.id }}, {{ hub.name }}, {{ device.id }}, {{ device.name }} (spaces
// inside the braces allowed). One scanner serves the API's check and the per-device expansion.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace iothub::hub {

// The value of a template name, or nullopt when the name is unknown.
using template_value = std::function<std::optional<std::string_view>(std::string_view name)>;

// `topic` with each template replaced by its value. Nullopt (and `why`) for an unclosed or
// unknown template.
std::optional<std::string> substitute_templates(std::string_view topic, const template_value& value,
                                                std::string& why);

}  // namespace iothub::hub
