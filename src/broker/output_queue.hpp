#pragma once
// What a connection has to send, in order: bytes it owns (packet headers, acks, small
// payloads) and payloads of shared messages, sent by reference. A payload delivered to many
// subscribers is therefore never copied per subscriber; the transport writes the pieces with
// one gathering system call.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/message.hpp"

namespace iothub::broker {

class output_queue {
public:
    // Payloads at least this large are referenced rather than copied.
    // Below this, copying is cheaper than the extra pieces in the gathering write (which
    // takes at most 64 pieces per system call).
    static constexpr std::size_t share_threshold = 4096;

    // Owned bytes are appended here.
    std::string& bytes() noexcept { return bytes_; }
    // Appends the payload of `m` by reference (it stays alive while queued).
    void append_payload(const message_ptr& m) {
        if (m->payload.size() < share_threshold) {
            bytes_.append(m->payload);
            return;
        }
        refs_.push_back({bytes_.size(), m});
        shared_size_ += m->payload.size();
    }

    std::size_t size() const noexcept { return bytes_.size() + shared_size_; }
    bool empty() const noexcept { return bytes_.empty() && refs_.empty(); }
    void clear() {
        bytes_.clear();
        refs_.clear();
        shared_size_ = 0;
    }
    void swap(output_queue& o) noexcept {
        bytes_.swap(o.bytes_);
        refs_.swap(o.refs_);
        std::swap(shared_size_, o.shared_size_);
    }
    // Gives back memory that grew for a burst.
    void trim() {
        if (bytes_.capacity() > 256 * 1024) std::string().swap(bytes_);
        if (refs_.capacity() > 1024) decltype(refs_)().swap(refs_);
    }

    // Calls f(std::string_view) for each piece, in order.
    template <class F>
    void for_each_piece(F&& f) const {
        std::size_t at = 0;
        for (const auto& r : refs_) {
            if (r.offset > at) f(std::string_view(bytes_).substr(at, r.offset - at));
            f(std::string_view(r.msg->payload));
            at = r.offset;
        }
        if (bytes_.size() > at) f(std::string_view(bytes_).substr(at));
    }
    // The whole content as one string (tests and diagnostics).
    std::string flatten() const {
        std::string out;
        out.reserve(size());
        for_each_piece([&out](std::string_view piece) { out.append(piece); });
        return out;
    }

private:
    struct shared_payload {
        std::size_t offset;  // position in bytes_ the payload goes before
        message_ptr msg;
    };
    std::string bytes_;
    std::vector<shared_payload> refs_;
    std::size_t shared_size_ = 0;
};

}  // namespace iothub::broker
