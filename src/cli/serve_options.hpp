#pragma once

#include <string>
#include <vector>

#include "cli/config.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace iothub::cli {

// The options of `iothub serve`. Construct it on the subcommand before
// parsing; after parsing, resolve() gives defaults <- config file <- flags.
// CLI11 keeps pointers into this object, so it stays where it was built.
class serve_options {
public:
    explicit serve_options(CLI::App& serve_cmd);
    serve_options(const serve_options&) = delete;
    serve_options& operator=(const serve_options&) = delete;

    // Throws config_error with a message fit to print as is.
    config resolve() const;
    // For SIGHUP: re-reads the config file; the flags still win. Throws
    // config_error on a bad file, and the caller keeps `running`.
    reload_result reload(const config& running) const;

    const std::string& config_file() const { return config_file_; }
    // The settings given as flags. Throws config_error if they contradict.
    flag_values flags() const;

private:
    struct bound_option {
        std::string key;
        CLI::Option* option = nullptr;
    };

    std::string config_file_;
    std::vector<bound_option> options_;
    CLI::Option* dev_hub_on_ = nullptr;
    CLI::Option* dev_hub_off_ = nullptr;
};

}  // namespace iothub::cli
