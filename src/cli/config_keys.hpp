#pragma once

// The table of config keys shared by the file reader, the flag parser,
// describe() and the reference. Not part of the public API.

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "cli/config.hpp"

namespace iothub::cli::detail {

// A value that does not fit its key; the caller adds where it came from.
class value_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct key_spec {
    std::string name;          // file key, as in max_packet_size
    std::string group;         // heading in --help and describe()
    std::string value_name;    // BYTES, N, ...; empty for an on/off switch pair
    std::string help;          // meaning, unit and range
    std::string default_note;  // shown after the default, as "1 MiB"
    bool reloadable = false;
    std::function<void(config&, const toml::node&)> from_toml;
    std::function<void(config&, std::string_view)> from_text;
    std::function<std::string(const config&)> to_toml;
    std::function<void(config&, const config&)> copy;  // destination, source

    bool is_switch() const { return value_name.empty(); }
    // "--max-packet-size".
    std::string flag() const;
    // The default as a reader would write it: 1048576, ./data, auto, true.
    std::string default_text() const;
};

// In the order of --help and describe().
const std::vector<key_spec>& config_keys();
const key_spec* find_key(std::string_view name);

// The flag-only option that names the config file.
inline constexpr std::string_view config_flag = "--config";

// A TOML basic string, quoted and escaped.
std::string toml_quote(std::string_view text);

}  // namespace iothub::cli::detail
