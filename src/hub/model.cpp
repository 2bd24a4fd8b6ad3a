#include "hub/model.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace iothub::hub {

namespace {

// One table per enum keeps to_string and parse_* from drifting apart.
constexpr std::array<std::pair<hub_status, std::string_view>, 6> hub_status_names{{
    {hub_status::unknown, "unknown"},
    {hub_status::error, "error"},
    {hub_status::enabling, "enabling"},
    {hub_status::ready, "ready"},
    {hub_status::disabling, "disabling"},
    {hub_status::disabled, "disabled"},
}};

constexpr std::array<std::pair<product_plan, std::string_view>, 4> plan_names{{
    {product_plan::plan_unknown, "plan_unknown"},
    {product_plan::plan_shared, "plan_shared"},
    {product_plan::plan_dedicated, "plan_dedicated"},
    {product_plan::plan_ha, "plan_ha"},
}};

constexpr std::array<std::pair<device_status, std::string_view>, 4> device_status_names{{
    {device_status::unknown, "unknown"},
    {device_status::error, "error"},
    {device_status::enabled, "enabled"},
    {device_status::disabled, "disabled"},
}};

constexpr std::array<std::pair<filter_policy, std::string_view>, 3> policy_names{{
    {filter_policy::unknown, "unknown"},
    {filter_policy::accept, "accept"},
    {filter_policy::reject, "reject"},
}};

template <typename E, std::size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
    for (const auto& [e, name] : table) {
        if (e == value) return name;
    }
    return table[0].second;  // out-of-range values read as the enum's "unknown"
}

template <typename E, std::size_t N>
std::optional<E> value_of(const std::array<std::pair<E, std::string_view>, N>& table,
                          std::string_view text) {
    for (const auto& [e, name] : table) {
        if (name == text) return e;
    }
    return std::nullopt;
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void random_bytes(void* out, std::size_t size) {
    // getrandom(2) draws from the kernel CSPRNG: a device id is the only credential of an
    // insecure device, so it must not be guessable from earlier ids.
    auto* p = static_cast<unsigned char*>(out);
    while (size > 0) {
        const ssize_t got = ::getrandom(p, size, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        p += got;
        size -= static_cast<std::size_t>(got);
    }
}

}  // namespace

std::string_view to_string(hub_status s) {
    return name_of(hub_status_names, s);
}
std::string_view to_string(product_plan p) {
    return name_of(plan_names, p);
}
std::string_view to_string(device_status s) {
    return name_of(device_status_names, s);
}
std::string_view to_string(filter_policy p) {
    return name_of(policy_names, p);
}

std::optional<hub_status> parse_hub_status(std::string_view s) {
    return value_of(hub_status_names, s);
}
std::optional<product_plan> parse_product_plan(std::string_view s) {
    return value_of(plan_names, s);
}
std::optional<device_status> parse_device_status(std::string_view s) {
    return value_of(device_status_names, s);
}
std::optional<filter_policy> parse_filter_policy(std::string_view s) {
    return value_of(policy_names, s);
}

std::string make_uuid() {
    std::array<unsigned char, 16> b{};
    random_bytes(b.data(), b.size());
    b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += digits[b[i] >> 4];
        out += digits[b[i] & 0x0F];
    }
    return out;
}

bool is_uuid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_position ? s[i] != '-' : !is_hex(s[i])) return false;
    }
    return true;
}

}  // namespace iothub::hub
