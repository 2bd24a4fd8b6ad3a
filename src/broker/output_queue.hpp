#pragma once
// What a connection has to send, in order: bytes it owns (packet headers, acks, small
// payloads) and payloads of shared messages, sent by reference. A payload delivered to many
// subscribers is therefore never copied per subscriber; the transport writes the pieces with
// one gathering system call. An idle connection's queue is one empty string: the list of
// shared payloads is made when the first one is queued.

#include <cstddef>
#include <memory>
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
        if (!shared_) shared_ = std::make_unique<shared_payloads>();
        shared_->refs.push_back({bytes_.size(), m});
        shared_->size += m->payload.size();
    }

    std::size_t size() const noexcept { return bytes_.size() + (shared_ ? shared_->size : 0); }
    bool empty() const noexcept { return bytes_.empty() && (!shared_ || shared_->refs.empty()); }
    void clear() {
        bytes_.clear();
        if (shared_) {
            shared_->refs.clear();
            shared_->size = 0;
        }
    }
    void swap(output_queue& o) noexcept {
        bytes_.swap(o.bytes_);
        shared_.swap(o.shared_);
    }
    // Gives back memory that grew for a burst.
    void trim() {
        if (bytes_.capacity() > 256 * 1024) std::string().swap(bytes_);
        if (shared_ && shared_->refs.empty() && shared_->refs.capacity() > 1024) shared_.reset();
    }

    // Calls f(std::string_view) for each piece, in order.
    template <class F>
    void for_each_piece(F&& f) const {
        std::size_t at = 0;
        if (shared_) {
            for (const auto& r : shared_->refs) {
                if (r.offset > at) f(std::string_view(bytes_).substr(at, r.offset - at));
                f(std::string_view(r.msg->payload));
                at = r.offset;
            }
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
    struct shared_payloads {
        std::vector<shared_payload> refs;
        std::size_t size = 0;  // bytes of their payloads
    };
    std::string bytes_;
    std::unique_ptr<shared_payloads> shared_;
};

}  // namespace iothub::broker
