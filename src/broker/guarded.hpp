#pragma once
// A value reachable only while its lock is held. read() takes a shared lock (or the plain
// lock when the mutex has no shared mode) and hands out const access; write() takes the
// exclusive lock. The handle keeps the lock until it goes out of scope, so there is no way
// to reach the value without it. with_read / with_write return the callable's result by
// value, so no reference into the value outlives the lock.

#include <functional>
#include <mutex>
#include <shared_mutex>
#include <type_traits>
#include <utility>

namespace iothub::broker {

template <class Mutex>
concept shared_lockable = requires(Mutex& m) {
    m.lock_shared();
    m.unlock_shared();
};

template <class T, class Mutex = std::shared_mutex>
class guarded {
    using read_lock =
        std::conditional_t<shared_lockable<Mutex>, std::shared_lock<Mutex>, std::unique_lock<Mutex>>;
    using write_lock = std::unique_lock<Mutex>;

    template <class Lock, class Value>
    class handle {
    public:
        handle(handle&&) noexcept = default;
        handle& operator=(handle&&) noexcept = default;
        handle(const handle&) = delete;
        handle& operator=(const handle&) = delete;

        Value* operator->() const noexcept { return value_; }
        Value& operator*() const noexcept { return *value_; }

    private:
        friend class guarded;
        handle(Mutex& m, Value& v) : lock_(m), value_(&v) {}

        Lock lock_;
        Value* value_;
    };

public:
    using read_handle = handle<read_lock, const T>;
    using write_handle = handle<write_lock, T>;

    template <class... Args>
        requires std::is_constructible_v<T, Args...>
    explicit guarded(Args&&... args) : value_(std::forward<Args>(args)...) {}

    guarded(const guarded&) = delete;
    guarded& operator=(const guarded&) = delete;

    [[nodiscard]] read_handle read() const { return read_handle(mutex_, value_); }
    [[nodiscard]] write_handle write() { return write_handle(mutex_, value_); }

    template <class F>
    auto with_read(F&& f) const {
        read_handle h = read();
        return std::invoke(std::forward<F>(f), *h);
    }

    template <class F>
    auto with_write(F&& f) {
        write_handle h = write();
        return std::invoke(std::forward<F>(f), *h);
    }

private:
    mutable Mutex mutex_;
    T value_;
};

}  // namespace iothub::broker
