#pragma once
// Small helpers of the certificate tests.

#include <chrono>
#include <cstdint>
#include <string>

#include "pki/pki.hpp"

namespace iothub::hub::testing {

// Certificates are dated by the wall clock, so their tests are too.
inline std::uint64_t wall_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

inline pki::subject named(std::string cn) {
    pki::subject s;
    s.common_name = std::move(cn);
    return s;
}

}  // namespace iothub::hub::testing
