// iothub-bench: an MQTT load generator. See bench/README.md.

#include <csignal>
#include <cstdio>

#include "options.hpp"
#include "report.hpp"
#include "scenarios.hpp"

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    const auto opt = iothub::bench::parse_options(argc, argv);
    const auto r = iothub::bench::run_scenario(opt);
    if (opt.json) {
        iothub::bench::print_json(opt, r);
    } else {
        iothub::bench::print_text(opt, r);
    }
    const bool ok = r.errors == 0 && r.integrity_ok;
    return ok ? 0 : 1;
}
