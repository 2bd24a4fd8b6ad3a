#pragma once
// Integrity of one publisher -> subscriber stream from sequence numbers: lost (gaps never
// filled), duplicated and reordered (a gap filled late) deliveries.

#include <cstdint>
#include <iterator>
#include <map>

namespace iothub::bench {

struct integrity {
    std::uint64_t lost = 0;
    std::uint64_t duplicated = 0;
    std::uint64_t reordered = 0;
    void add(const integrity& o) noexcept {
        lost += o.lost;
        duplicated += o.duplicated;
        reordered += o.reordered;
    }
};

class stream_check {
public:
    // Returns false for a duplicate.
    bool on_receive(std::uint32_t seq) {
        if (seq == next_) {
            ++next_;
            return true;
        }
        if (seq > next_) {
            gaps_[next_] = seq;  // [next_, seq) missing so far
            missing_ += seq - next_;
            next_ = seq + 1;
            return true;
        }
        // seq < next_: fills a gap (reordered) or was already seen (duplicate).
        auto it = gaps_.upper_bound(seq);
        if (it == gaps_.begin()) {
            ++dup_;
            return false;
        }
        --it;
        const std::uint64_t start = it->first;
        const std::uint64_t end = it->second;
        if (seq >= end) {
            ++dup_;
            return false;
        }
        gaps_.erase(it);
        if (start < seq) {
            gaps_[start] = seq;
        }
        if (seq + 1 < end) {
            gaps_[seq + 1] = end;
        }
        --missing_;
        ++reordered_;
        return true;
    }

    std::uint64_t next() const noexcept { return next_; }

    // Final figures, given how many messages the publisher sent in all.
    integrity result(std::uint64_t sent) const noexcept {
        integrity r;
        r.lost = missing_ + (sent > next_ ? sent - next_ : 0);
        r.duplicated = dup_;
        r.reordered = reordered_;
        return r;
    }

private:
    std::uint64_t next_ = 0;
    std::uint64_t missing_ = 0;
    std::uint64_t dup_ = 0;
    std::uint64_t reordered_ = 0;
    std::map<std::uint64_t, std::uint64_t> gaps_;
};

}  // namespace iothub::bench
