#pragma once
// Runs the scenario the options name and fills a result.

#include "options.hpp"
#include "report.hpp"

namespace iothub::bench {

result run_scenario(const options& o);

}  // namespace iothub::bench
