#include "cli/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "cli/config_keys.hpp"

namespace iothub::cli {
namespace {

using detail::config_keys;
using detail::find_key;
using detail::key_spec;
using detail::value_error;

std::string location(const std::string& source, std::size_t line) {
    return line > 0 ? source + ":" + std::to_string(line) : source;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            row[j] =
                std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string unknown_key_message(std::string_view name, const toml::node& value) {
    std::string message = "unknown key '" + std::string(name) + "'";
    if (name == "config") {
        return message + ": the config file can only be named on the command line (--config)";
    }
    const key_spec* closest = nullptr;
    std::size_t best = 3;
    for (const auto& key : config_keys()) {
        auto distance = edit_distance(name, key.name);
        if (distance < best) {
            best = distance;
            closest = &key;
        }
    }
    if (closest != nullptr) {
        return message + " (did you mean '" + closest->name + "'?)";
    }
    if (value.is_table()) {
        return message + " (tables are not used: every key is at the top level)";
    }
    return message;
}

}  // namespace

std::string_view to_string(logging_level level) {
    switch (level) {
    case logging_level::trace: return "trace";
    case logging_level::debug: return "debug";
    case logging_level::info: return "info";
    case logging_level::warning: return "warning";
    case logging_level::error: return "error";
    case logging_level::critical: return "critical";
    case logging_level::off: return "off";
    }
    return "info";
}

std::string_view to_string(dev_hub_mode mode) {
    switch (mode) {
    case dev_hub_mode::automatic: return "auto";
    case dev_hub_mode::on: return "on";
    case dev_hub_mode::off: return "off";
    }
    return "auto";
}

std::string_view to_string(tls_version version) {
    switch (version) {
    case tls_version::v1_2: return "1.2";
    case tls_version::v1_3: return "1.3";
    }
    return "1.2";
}

unsigned config::worker_count() const {
    if (workers != 0) {
        return workers;
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

bool config::dev_hub_open() const {
    switch (dev_hub) {
    case dev_hub_mode::on: return true;
    case dev_hub_mode::off: return false;
    case dev_hub_mode::automatic: break;
    }
    return mqtt.is_loopback() && mqtts.is_loopback() && ws.is_loopback() && wss.is_loopback() &&
           api.is_loopback();
}

config_error::config_error(const std::string& message, std::string path, std::size_t line,
                           std::string key)
    : std::runtime_error(message), path_(std::move(path)), line_(line), key_(std::move(key)) {}

config parse_config(std::string_view toml_text, const std::string& source, config base) {
    toml::table table;
    try {
        table = toml::parse(toml_text, source);
    } catch (const toml::parse_error& e) {
        const auto& begin = e.source().begin;
        throw config_error(location(source, begin.line) + ":" + std::to_string(begin.column) +
                               ": " + std::string(e.description()),
                           source, begin.line, "");
    }

    // Report problems in the order they appear in the file.
    std::vector<std::pair<std::size_t, std::string>> entries;
    for (auto&& [key, value] : table) {
        entries.emplace_back(key.source().begin.line, std::string(key.str()));
    }
    std::sort(entries.begin(), entries.end());

    for (const auto& [line, name] : entries) {
        const toml::node& value = *table.get(name);
        const key_spec* spec = find_key(name);
        if (spec == nullptr) {
            throw config_error(location(source, line) + ": " + unknown_key_message(name, value),
                               source, line, name);
        }
        try {
            spec->from_toml(base, value);
        } catch (const value_error& e) {
            throw config_error(location(source, line) + ": " + name + ": " + e.what(), source, line,
                               name);
        }
    }
    return base;
}

config load_config_file(const std::string& path, config base) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw config_error("cannot read config file " + path + ": it is a directory", path, 0, "");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw config_error("cannot read config file " + path + ": " + std::strerror(errno), path, 0,
                           "");
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        throw config_error("cannot read config file " + path + ": " + std::strerror(errno), path, 0,
                           "");
    }
    return parse_config(text.str(), path, std::move(base));
}

config apply_flags(config base, const flag_values& flags) {
    for (const auto& flag : flags) {
        const key_spec* spec = find_key(flag.key);
        if (spec == nullptr) {
            throw config_error("unknown setting '" + flag.key + "'", "", 0, flag.key);
        }
        try {
            spec->from_text(base, flag.text);
        } catch (const value_error& e) {
            throw config_error(spec->flag() + ": " + e.what(), "", 0, flag.key);
        }
    }
    return base;
}

std::string describe(const config& cfg) {
    std::string out = "# iothub serve configuration\n";
    std::string group;
    for (const auto& key : config_keys()) {
        if (key.group != group) {
            group = key.group;
            out += "\n# " + group + "\n";
        }
        out += key.name + " = " + key.to_toml(cfg) + "\n";
    }
    return out;
}

std::string reference_markdown() {
    std::string out =
        "| key | flag | default | reload on SIGHUP | meaning |\n"
        "| --- | --- | --- | --- | --- |\n";
    out += "| | `" + std::string(detail::config_flag) +
           " FILE` | none | | TOML file with any of the keys below, all at the top level; "
           "flags given on the command line win over it |\n";
    for (const auto& key : config_keys()) {
        // Appended piece by piece: g++ 12 warns falsely (-Wrestrict) on "literal" + string&&.
        std::string flag = "`";
        flag += key.flag();
        if (key.is_switch()) {
            flag += "`, `--no-";
            flag += key.flag().substr(2);
            flag += "`";
        } else {
            flag += " ";
            flag += key.value_name;
            flag += "`";
        }
        std::string def = "`";
        def += key.to_toml(config{});
        def += "`";
        if (!key.default_note.empty()) {
            def += " (" + key.default_note + ")";
        }
        out += "| `" + key.name + "` | " + flag + " | " + def + " | " +
               (key.reloadable ? "yes" : "no, restart") + " | " + key.help + " |\n";
    }
    return out;
}

reload_result reload(const config& running, const std::string& path, const flag_values& flags) {
    config candidate = apply_flags(path.empty() ? config{} : load_config_file(path), flags);
    reload_result result{running, {}, {}};
    for (const auto& key : config_keys()) {
        if (key.to_toml(candidate) == key.to_toml(running)) {
            continue;
        }
        if (key.reloadable) {
            key.copy(result.next, candidate);
            result.applied.push_back(key.name);
        } else {
            result.ignored.push_back(key.name);
        }
    }
    return result;
}

}  // namespace iothub::cli
