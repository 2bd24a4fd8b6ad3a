#pragma once
// The admin subcommands of iothub:
//   apikey create|list|delete    work on <data-dir>/iothub.db directly;
//   hub …, device …              call the management API over HTTP;
//   ca server                    prints the server CA of <data-dir> (made if missing).
// Construct on the application before parsing; CLI11 keeps pointers into this object, so
// it stays where it was built.

#include <memory>

namespace CLI {
class App;
}

namespace iothub::cli {

class admin_commands {
public:
    explicit admin_commands(CLI::App& app);
    ~admin_commands();
    admin_commands(const admin_commands&) = delete;
    admin_commands& operator=(const admin_commands&) = delete;

    // True when the command line named one of these subcommands.
    bool parsed() const;
    // Runs it: 0 on success, 1 on an error (already printed to stderr).
    int run() const;

    struct state;

private:
    std::unique_ptr<state> state_;
};

}  // namespace iothub::cli
