#include "mqtt/topic.hpp"

#include <cstdint>
#include <cstring>

namespace iothub::mqtt {
namespace {

// Eight bytes at a time, for the ASCII texts topics almost always are.
constexpr std::uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL;
constexpr std::uint64_t high_bits = 0x8080808080808080ULL;

std::uint64_t load8(const unsigned char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

constexpr std::uint64_t repeat(unsigned char c) noexcept { return 0x0101010101010101ULL * c; }

// 0x80 in every byte of w that is zero, 0 elsewhere (exact: no borrow between bytes).
constexpr std::uint64_t zero_bytes(std::uint64_t w) noexcept {
    return ~(((w & low7) + low7) | w | low7);
}

bool is_continuation(unsigned char c) noexcept { return (c & 0xC0) == 0x80; }

// Calls f(level) for each '/'-separated level; stops early when f returns false.
template <typename F>
bool each_level(std::string_view s, F&& f) {
    std::size_t start = 0;
    for (;;) {
        const auto end = s.find('/', start);
        const auto level = s.substr(start, end == std::string_view::npos ? end : end - start);
        if (!f(level)) return false;
        if (end == std::string_view::npos) return true;
        start = end + 1;
    }
}

bool within_limits(std::string_view s, std::size_t max_length, std::size_t max_levels) noexcept {
    if (max_length != 0 && s.size() > max_length) return false;
    if (max_levels != 0) {
        std::size_t levels = 1;
        for (char c : s)
            if (c == '/' && ++levels > max_levels) return false;
    }
    return true;
}

}  // namespace

bool valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    // ASCII without NUL, word by word; the first word with anything else goes byte by byte.
    while (i + 8 <= n) {
        const std::uint64_t w = load8(p + i);
        if ((w & high_bits) != 0 || zero_bytes(w) != 0) break;
        i += 8;
    }
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            if (c == 0) return false;
            ++i;
            continue;
        }
        std::size_t extra = 0;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) lo = 0xA0;       // overlong
            else if (c == 0xED) hi = 0x9F;  // U+D800..U+DFFF
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) lo = 0x90;       // overlong
            else if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
        } else {
            return false;  // continuation byte, C0/C1 overlong lead, or F5..FF
        }
        if (n - i <= extra) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (std::size_t k = 2; k <= extra; ++k)
            if (!is_continuation(p[i + k])) return false;
        i += extra + 1;
    }
    return true;
}

bool valid_topic_name(std::string_view topic, std::size_t max_length,
                      std::size_t max_levels) noexcept {
    if (topic.empty()) return false;
    if (max_length != 0 && topic.size() > max_length) return false;
    // One pass over the bytes: wildcards, NUL, levels; UTF-8 is checked only when a byte
    // outside ASCII appears (topic names are almost always ASCII).
    std::size_t levels = 1;
    bool ascii = true;
    const auto* p = reinterpret_cast<const unsigned char*>(topic.data());
    std::size_t i = 0;
    // Words of plain ASCII (no wildcard, NUL or byte above 0x7F): only the '/' are counted.
    for (; i + 8 <= topic.size(); i += 8) {
        const std::uint64_t w = load8(p + i);
        if ((w & high_bits) != 0 ||
            (zero_bytes(w) | zero_bytes(w ^ repeat('+')) | zero_bytes(w ^ repeat('#'))) != 0)
            break;
        // One 0x80 per '/': shifted to 0x01 per byte and summed into the top byte.
        levels += static_cast<std::size_t>(((zero_bytes(w ^ repeat('/')) >> 7) * repeat(1)) >> 56);
    }
    for (char ch : topic.substr(i)) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x80) {
            ascii = false;
        } else if (c == '/') {
            ++levels;
        } else if (c == '+' || c == '#' || c == 0) {
            return false;
        }
    }
    if (max_levels != 0 && levels > max_levels) return false;
    return ascii || valid_utf8(topic);
}

bool valid_topic_filter(std::string_view filter, std::size_t max_length,
                        std::size_t max_levels) noexcept {
    if (filter.empty()) return false;
    if (!within_limits(filter, max_length, max_levels)) return false;
    bool after_hash = false;
    const bool levels_ok = each_level(filter, [&](std::string_view level) {
        if (after_hash) return false;  // '#' must be the last level
        if (level.find_first_of("+#") == std::string_view::npos) return true;
        if (level == "#") {
            after_hash = true;
            return true;
        }
        return level == "+";
    });
    return levels_ok && valid_utf8(filter);
}

bool parse_shared(std::string_view text, shared_filter& out) noexcept {
    constexpr std::string_view prefix = "$share/";
    if (!text.starts_with(prefix)) {
        out = {{}, text};
        return true;
    }
    const auto rest = text.substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return false;
    const auto group = rest.substr(0, slash);
    const auto filter = rest.substr(slash + 1);
    if (group.empty() || group.find_first_of("+#") != std::string_view::npos) return false;
    if (!valid_topic_filter(filter)) return false;
    out = {group, filter};
    return true;
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
    if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
        (filter.front() == '+' || filter.front() == '#'))
        return false;
    std::size_t fpos = 0;
    std::size_t tpos = 0;
    bool topic_done = false;
    for (;;) {
        const auto fend = filter.find('/', fpos);
        const auto flevel = filter.substr(fpos, fend == std::string_view::npos ? fend : fend - fpos);
        if (flevel == "#") return true;  // this level, every level below, and the parent
        if (topic_done) return false;
        const auto tend = topic.find('/', tpos);
        const auto tlevel = topic.substr(tpos, tend == std::string_view::npos ? tend : tend - tpos);
        if (flevel != "+" && flevel != tlevel) return false;
        topic_done = tend == std::string_view::npos;
        if (fend == std::string_view::npos) return topic_done;
        fpos = fend + 1;
        tpos = topic_done ? topic.size() : tend + 1;
    }
}

}  // namespace iothub::mqtt
