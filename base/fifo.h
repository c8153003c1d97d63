// base/fifo.h: a first-in first-out queue that costs nothing while empty.
// Stage: none; vocabulary for every folder (it includes only the standard
// library). Per-shard queues (the engine's held receive buffers and dials
// waiting their turn, the Discord session's user sends) are empty almost
// always, and there are thousands of them: a std::deque allocates ~600 bytes
// when made, a std::vector nothing until the first push.
//
// A vector and the index of the oldest entry. pop() moves the oldest out;
// once every entry has left, the storage is reused (kKeptCapacity entries or
// fewer) or given back (a burst's worth); under a steady backlog the popped
// entries are erased now and then (kCompactAfter), so each entry is moved
// O(1) times on average and memory stays within twice what waits.
#ifndef SHARDRING_BASE_FIFO_H_
#define SHARDRING_BASE_FIFO_H_

#include <cassert>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

namespace shardring::base {

template <typename T>
class Fifo {
 public:
  // Emptied with at most this capacity, the storage is kept for the next use.
  static constexpr size_t kKeptCapacity = 16;
  // Popped entries are erased once there are this many and they are at least
  // half of the storage.
  static constexpr size_t kCompactAfter = 64;

  bool empty() const noexcept { return head_ == items_.size(); }
  size_t size() const noexcept { return items_.size() - head_; }
  size_t capacity() const noexcept { return items_.capacity(); }

  void push(T value) { items_.push_back(std::move(value)); }

  T& front() noexcept {
    assert(!empty());
    return items_[head_];
  }

  // Removes the oldest entry and returns it.
  T pop() {
    assert(!empty());
    T value = std::move(items_[head_++]);
    if (head_ == items_.size()) {
      if (items_.capacity() > kKeptCapacity) {
        release();
      } else {
        items_.clear();
        head_ = 0;
      }
    } else if (head_ >= kCompactAfter && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    return value;
  }

  // What waits, oldest first (valid until the next push or pop).
  std::span<T> waiting() noexcept { return std::span<T>(items_).subspan(head_); }

  // Drops every entry and gives the storage back.
  void release() noexcept {
    std::vector<T>().swap(items_);
    head_ = 0;
  }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
};

}  // namespace shardring::base

#endif  // SHARDRING_BASE_FIFO_H_
