#pragma once
// Checks of the registry's API arguments: names, the events topic prefix, message filters.
// Each returns what is wrong as the API's argument errors; nothing here reads registry state.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/model.hpp"
#include "hub/registry.hpp"

namespace iothub::hub::checks {

// UTF-8, 1..255 characters, no control characters.
std::optional<argument_error> hub_name(std::string_view name);
// As a hub name, and without '/', '+' or '#': a device name is substituted into topic
// filters ({{ device.name }}), so it must not bring levels or wildcards with it.
std::optional<argument_error> device_name(std::string_view name);
// A non-empty MQTT topic name (no wildcards).
std::optional<argument_error> events_topic_prefix(std::string_view prefix);

// Appends the problems of both rules, named from `field`: "<field>.publish.policy",
// "<field>.subscribe.topics[2]". A topic is a non-empty MQTT filter of at most 65535 bytes
// once each {{ hub.id | hub.name | device.id | device.name }} template is read as a value;
// a policy other than accept / reject is allowed only with no topics.
void message_filters_of(const message_filters& f, const std::string& field,
                        std::vector<argument_error>& errors);
// The filters to store for a request that passed the check: an unknown policy (necessarily
// with no topics) is the default, reject nothing.
message_filters normalized(message_filters f);

}  // namespace iothub::hub::checks
