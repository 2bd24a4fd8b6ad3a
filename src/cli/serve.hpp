#pragma once
// `iothub serve`: composes the broker, the store and the listeners, and runs until SIGTERM.

#include "cli/serve_options.hpp"

namespace iothub::cli {

// Returns the process exit code. Throws on a bad start (config, store, bind).
int run_serve(const serve_options& options);

}  // namespace iothub::cli
