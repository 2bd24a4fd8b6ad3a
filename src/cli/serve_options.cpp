#include "cli/serve_options.hpp"

#include <CLI/CLI.hpp>

#include "cli/config_keys.hpp"

namespace iothub::cli {
namespace {

std::string help_with_default(const detail::key_spec& key) {
    auto text = key.default_text();
    if (text.empty()) {
        text = key.default_note;
    } else if (!key.default_note.empty()) {
        text += " = " + key.default_note;
    }
    return key.help + " [default: " + text + "]";
}

}  // namespace

serve_options::serve_options(CLI::App& serve_cmd) {
    serve_cmd
        .add_option(std::string(detail::config_flag), config_file_,
                    "Read settings from this TOML file; flags given here win over it")
        ->type_name("FILE")
        ->group("General");

    for (const auto& key : detail::config_keys()) {
        if (key.is_switch()) {
            // CLI11 takes a description by const reference only.
            const std::string on_help = key.help + " [default: auto]";
            const std::string off_help = "Keep the development hub closed, even on loopback";
            dev_hub_on_ = serve_cmd.add_flag(key.flag(), on_help)->group(key.group);
            dev_hub_off_ =
                serve_cmd.add_flag("--no-" + key.flag().substr(2), off_help)->group(key.group);
            continue;
        }
        const std::string help = help_with_default(key);
        auto* option = serve_cmd.add_option(key.flag(), help)
                           ->type_name(key.value_name)
                           ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
                           ->group(key.group);
        options_.push_back({key.name, option});
    }
}

flag_values serve_options::flags() const {
    flag_values result;
    for (const auto& bound : options_) {
        if (bound.option->count() > 0) {
            result.push_back({bound.key, bound.option->as<std::string>()});
        }
    }
    if (dev_hub_on_ != nullptr && dev_hub_on_->count() > 0 && dev_hub_off_->count() > 0) {
        throw config_error("--dev-hub and --no-dev-hub contradict each other", "", 0, "dev_hub");
    }
    if (dev_hub_on_ != nullptr && dev_hub_on_->count() > 0) {
        result.push_back({"dev_hub", "true"});
    } else if (dev_hub_off_ != nullptr && dev_hub_off_->count() > 0) {
        result.push_back({"dev_hub", "false"});
    }
    return result;
}

config serve_options::resolve() const {
    config base = config_file_.empty() ? config{} : load_config_file(config_file_);
    return apply_flags(std::move(base), flags());
}

reload_result serve_options::reload(const config& running) const {
    return cli::reload(running, config_file_, flags());
}

}  // namespace iothub::cli
