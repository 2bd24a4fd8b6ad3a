#pragma once
// The start of a packet whose rest has not arrived yet. Whole packets are decoded straight
// from the transport's buffer, so this holds only an incomplete tail, in one allocation that
// is freed as soon as the tail is used up: an idle connection holds a null pointer.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <utility>
#include <vector>

namespace iothub::broker {

class input_buffer {
public:
    input_buffer() noexcept = default;
    input_buffer(const input_buffer&) = delete;
    input_buffer& operator=(const input_buffer&) = delete;
    ~input_buffer() { clear(); }

    bool empty() const noexcept { return block_ == nullptr; }  // never an empty allocation
    std::span<const std::uint8_t> bytes() const noexcept {
        if (block_ == nullptr) return {};
        return {block_->data(), block_->size};
    }

    void append(std::span<const std::uint8_t> data) {
        if (data.empty()) return;
        const std::size_t size = this->size();
        if (block_ == nullptr || block_->capacity - size < data.size()) grow(size + data.size());
        std::memcpy(block_->data() + size, data.data(), data.size());
        block_->size = static_cast<std::uint32_t>(size + data.size());
    }
    // Drops the first `n` bytes; the allocation goes when nothing is left.
    void consume(std::size_t n) noexcept {
        if (n == 0) return;
        const std::size_t left = size() - n;
        if (left == 0) {
            clear();
            return;
        }
        std::memmove(block_->data(), block_->data() + n, left);
        block_->size = static_cast<std::uint32_t>(left);
    }
    void clear() noexcept {
        ::operator delete(block_);
        block_ = nullptr;
    }
    // The bytes, as the transport takes them along when the connection moves.
    std::vector<std::uint8_t> take() {
        const auto b = bytes();
        std::vector<std::uint8_t> out(b.begin(), b.end());
        clear();
        return out;
    }

private:
    struct block {
        std::uint32_t size;
        std::uint32_t capacity;
        std::uint8_t* data() noexcept { return reinterpret_cast<std::uint8_t*>(this + 1); }
    };
    std::size_t size() const noexcept { return block_ != nullptr ? block_->size : 0; }
    void grow(std::size_t needed) {
        std::size_t capacity = block_ != nullptr ? std::size_t{block_->capacity} * 2 : 64;
        if (capacity < needed) capacity = needed;
        auto* bigger = ::new (::operator new(sizeof(block) + capacity))
            block{0, static_cast<std::uint32_t>(capacity)};
        if (block_ != nullptr) {
            std::memcpy(bigger->data(), block_->data(), block_->size);
            bigger->size = block_->size;
            ::operator delete(block_);
        }
        block_ = bigger;
    }

    block* block_ = nullptr;
};

}  // namespace iothub::broker
