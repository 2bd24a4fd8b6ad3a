#pragma once
// What the pki tests share: the clock and subjects.

#include <chrono>
#include <cstdint>
#include <string>

#include "pki/pki.hpp"

namespace iothub::pki::test {

inline std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(now_s()) * 1000;
}

inline subject named(std::string cn) {
    subject s;
    s.common_name = std::move(cn);
    s.organization = "test";
    return s;
}

}  // namespace iothub::pki::test
