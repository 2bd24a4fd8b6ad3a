#pragma once
// The write path shared by every store: a bounded queue of operations drained by one writer
// thread, which commits each drained batch in one transaction (group commit) and then runs
// the batch's completions in order.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "store/operation.hpp"
#include "store/store.hpp"

namespace iothub::store {

struct batch_limits {
    std::size_t max_operations = 10000;
    std::size_t max_bytes = 64 * 1024 * 1024;  // one larger operation is still admitted alone
    int commit_attempts = 3;                    // per batch, before its writes are failed
};

class batch_writer {
public:
    // Writes the operations whose `live` flag is set, in order, in one transaction; throws
    // (having rolled back) on failure. Operations not live are superseded by a later write to
    // the same key in the same batch.
    using commit_fn =
        std::function<void(std::span<const operation> batch, const std::vector<bool>& live)>;
    using error_fn = std::function<void(const std::string& message)>;

    batch_writer(batch_limits limits, commit_fn commit, error_fn on_error);
    ~batch_writer();
    batch_writer(const batch_writer&) = delete;
    batch_writer& operator=(const batch_writer&) = delete;

    // Queues `op`, waiting while the queue is full (never on the writer thread). After stop(),
    // completes `op` with `false` on the caller's thread instead.
    void push(operation op);
    // Blocks until everything pushed before the call is done. No-op after stop().
    void flush();
    // Drains the queue, then joins the writer thread. Idempotent.
    void stop();

    store_stats stats() const;

private:
    void run();
    void process(std::vector<operation>& batch);
    bool on_writer_thread() const;

    batch_limits limits_;
    commit_fn commit_;
    error_fn on_error_;

    mutable std::mutex mutex_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::vector<operation> queue_;
    std::size_t queue_bytes_ = 0;
    std::size_t waiting_producers_ = 0;
    bool stopping_ = false;

    std::atomic<std::uint64_t> committed_transactions_{0};
    std::atomic<std::uint64_t> committed_operations_{0};
    std::atomic<std::uint64_t> failed_transactions_{0};
    std::atomic<std::uint64_t> failed_operations_{0};
    std::atomic<std::uint64_t> producer_waits_{0};

    std::atomic<std::thread::id> writer_id_{};
    std::mutex stop_mutex_;
    std::thread thread_;
};

}  // namespace iothub::store
