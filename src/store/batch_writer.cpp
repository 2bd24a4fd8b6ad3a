#include "store/batch_writer.hpp"

#include <chrono>
#include <exception>
#include <future>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace iothub::store {

batch_writer::batch_writer(batch_limits limits, commit_fn commit, error_fn on_error)
    : limits_(limits), commit_(std::move(commit)), on_error_(std::move(on_error)) {
    if (limits_.max_operations == 0) limits_.max_operations = 1;
    if (limits_.commit_attempts < 1) limits_.commit_attempts = 1;
    thread_ = std::thread([this] { run(); });
}

batch_writer::~batch_writer() { stop(); }

bool batch_writer::on_writer_thread() const {
    return std::this_thread::get_id() == writer_id_.load(std::memory_order_relaxed);
}

void batch_writer::push(operation op) {
    const std::size_t bytes = queued_bytes(op);
    const bool may_wait = !on_writer_thread();
    {
        std::unique_lock lock(mutex_);
        if (!stopping_) {
            auto full = [&] {
                return !queue_.empty() && (queue_.size() >= limits_.max_operations ||
                                           queue_bytes_ + bytes > limits_.max_bytes);
            };
            if (may_wait && full()) {
                producer_waits_.fetch_add(1, std::memory_order_relaxed);
                ++waiting_producers_;
                not_full_.wait(lock, [&] { return !full(); });
                --waiting_producers_;
            }
            const bool was_empty = queue_.empty();
            queue_.push_back(std::move(op));
            queue_bytes_ += bytes;
            if (was_empty) not_empty_.notify_one();
            return;
        }
    }
    if (op.done) op.done(false);
}

void batch_writer::flush() {
    if (on_writer_thread()) throw std::logic_error("store: flush() called from a completion");
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
    }
    std::promise<void> done;
    auto future = done.get_future();
    push(operation{barrier{}, [&done](bool) { done.set_value(); }});
    future.wait();
}

void batch_writer::stop() {
    if (on_writer_thread()) throw std::logic_error("store: close() called from a completion");
    std::lock_guard stop_lock(stop_mutex_);
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    not_empty_.notify_one();
    thread_.join();
}

store_stats batch_writer::stats() const {
    store_stats s;
    s.committed_transactions = committed_transactions_.load(std::memory_order_relaxed);
    s.committed_operations = committed_operations_.load(std::memory_order_relaxed);
    s.failed_transactions = failed_transactions_.load(std::memory_order_relaxed);
    s.failed_operations = failed_operations_.load(std::memory_order_relaxed);
    s.producer_waits = producer_waits_.load(std::memory_order_relaxed);
    return s;
}

void batch_writer::run() {
    writer_id_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    std::vector<operation> batch;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            // Producers already waiting when stop() came are still served.
            not_empty_.wait(lock, [&] {
                return !queue_.empty() || (stopping_ && waiting_producers_ == 0);
            });
            if (queue_.empty()) return;
            batch.swap(queue_);
            queue_bytes_ = 0;
        }
        not_full_.notify_all();
        process(batch);
        batch.clear();
    }
}

void batch_writer::process(std::vector<operation>& batch) {
    // Only the last write to each key needs to reach the database.
    std::vector<bool> live(batch.size(), false);
    std::unordered_map<std::string, std::size_t> last;
    std::size_t writes = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        std::string key = write_key(batch[i]);
        if (key.empty()) continue;
        ++writes;
        last.insert_or_assign(std::move(key), i);
    }
    for (const auto& [key, index] : last) live[index] = true;

    bool committed = true;
    if (!last.empty()) {
        committed = false;
        std::string error;
        for (int attempt = 1; attempt <= limits_.commit_attempts && !committed; ++attempt) {
            try {
                commit_(batch, live);
                committed = true;
            } catch (const std::exception& e) {
                error = e.what();
            }
            if (!committed && attempt < limits_.commit_attempts) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10 << attempt));
            }
        }
        if (committed) {
            committed_transactions_.fetch_add(1, std::memory_order_relaxed);
            committed_operations_.fetch_add(writes, std::memory_order_relaxed);
        } else {
            failed_transactions_.fetch_add(1, std::memory_order_relaxed);
            failed_operations_.fetch_add(writes, std::memory_order_relaxed);
            if (on_error_) {
                on_error_("store: " + std::to_string(writes) + " writes lost after " +
                          std::to_string(limits_.commit_attempts) + " attempts: " + error);
            }
        }
    }

    for (auto& op : batch) {
        if (!op.done) continue;
        const bool ok = committed || std::holds_alternative<barrier>(op.what);
        try {
            op.done(ok);
        } catch (const std::exception& e) {
            if (on_error_) on_error_(std::string("store: a completion threw: ") + e.what());
        } catch (...) {
            if (on_error_) on_error_("store: a completion threw");
        }
    }
}

}  // namespace iothub::store
