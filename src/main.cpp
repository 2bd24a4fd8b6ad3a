// iothub: an MQTT broker that knows its devices.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/admin_commands.hpp"
#include "cli/serve.hpp"

#ifdef IOTHUB_WITH_JEMALLOC
// Read by jemalloc at start-up; MALLOC_CONF in the environment still overrides it. A background
// thread gives freed pages back to the system within a second of a spike (the work malloc_trim
// does under glibc), so resident memory follows the load down again.
extern "C" {
const char* malloc_conf = "background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0";
}
#endif

int main(int argc, char** argv) {
    CLI::App app{"iothub: a self-hosted IoT hub and MQTT broker (MQTT 3.1, 3.1.1 and 5.0)"};
    app.require_subcommand(1);
    auto* serve = app.add_subcommand("serve", "Run the hub: MQTT listeners, store and hubs");
    iothub::cli::serve_options options(*serve);
    auto* version = app.add_subcommand("version", "Print the version");
    iothub::cli::admin_commands admin(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (version->parsed()) {
        std::printf("iothub 0.1.0\n");
        return 0;
    }
    if (admin.parsed()) return admin.run();
    try {
        return iothub::cli::run_serve(options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "iothub: %s\n", e.what());
        return 1;
    }
}
