#pragma once
// Log-linear latency histogram in nanoseconds: exact below 128 ns, then 64 buckets per power of
// two (under 1.6 % relative error). Fixed size, no allocation when recording.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace iothub::bench {

class histogram {
public:
    static constexpr std::size_t bucket_count = 128 + 64 * 58;

    void record(std::uint64_t ns) noexcept {
        ++counts_[index(ns)];
        ++total_;
        if (ns > max_) {
            max_ = ns;
        }
    }

    void merge(const histogram& o) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i) {
            counts_[i] += o.counts_[i];
        }
        total_ += o.total_;
        if (o.max_ > max_) {
            max_ = o.max_;
        }
    }

    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return max_; }

    // Value at quantile q (0..1), in ns; 0 when empty.
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) {
            return 0;
        }
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
        if (rank >= total_) {
            rank = total_ - 1;
        }
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen > rank) {
                const std::uint64_t v = middle(i);
                return v > max_ ? max_ : v;
            }
        }
        return max_;
    }

private:
    static std::size_t index(std::uint64_t v) noexcept {
        if (v < 128) {
            return static_cast<std::size_t>(v);
        }
        const int msb = 63 - std::countl_zero(v);
        const int shift = msb - 6;
        return static_cast<std::size_t>((shift + 1) * 64) + static_cast<std::size_t>((v >> shift) - 64);
    }
    static std::uint64_t middle(std::size_t i) noexcept {
        if (i < 128) {
            return i;
        }
        const std::size_t shift = i / 64 - 1;
        const std::uint64_t lower = static_cast<std::uint64_t>(i % 64 + 64) << shift;
        return lower + ((std::uint64_t{1} << shift) >> 1);
    }

    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace iothub::bench
