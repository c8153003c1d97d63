// gateway/send_window.h: the times of a connection's sends in the last
// kSendWindow, oldest first, for Discord's limit of sends per window
// (gateway::Session). An idle shard sends only a few in any window (its
// IDENTIFY or RESUME, a heartbeat every ~41 s), so the first kInline times
// live in the object; a connection that sends more gets room for the whole
// limit on the heap, handed back once the window is empty again. At 10,000
// idle shards that is 4.4 MiB less than a full array in every session.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <iterator>
#include <memory>
#include <utility>

namespace shardring::gateway {

template <int kCapacity, int kInline>
class SendWindow {
  static_assert(kInline > 0 && kInline < kCapacity && kCapacity <= 65535);

 public:
  SendWindow() = default;
  SendWindow(const SendWindow& other) { *this = other; }
  SendWindow& operator=(const SendWindow& other) {
    if (this != &other) {
      clear();
      for (int k = 0; k < other.size(); ++k) push(other.at(k));
    }
    return *this;
  }
  SendWindow(SendWindow&& other) noexcept { *this = std::move(other); }
  SendWindow& operator=(SendWindow&& other) noexcept {
    if (this != &other) {
      heap_ = std::move(other.heap_);
      std::copy(std::begin(other.inline_), std::end(other.inline_), std::begin(inline_));
      head_ = other.head_;
      count_ = other.count_;
      other.clear();
    }
    return *this;
  }

  int size() const noexcept { return count_; }
  // The k-th oldest time, k < size().
  uint32_t at(int k) const noexcept {
    assert(k < count_);
    return data()[(head_ + k) % capacity()];
  }
  // Adds the newest time; size() < kCapacity.
  void push(uint32_t stamp) {
    assert(count_ < kCapacity);
    if (count_ == capacity()) grow();
    data()[(head_ + count_) % capacity()] = stamp;
    ++count_;
  }
  // Drops the oldest time; size() > 0.
  void pop() noexcept {
    assert(count_ > 0);
    head_ = static_cast<uint16_t>((head_ + 1) % capacity());
    if (--count_ == 0) clear();
  }
  void clear() noexcept {
    heap_.reset();
    head_ = count_ = 0;
  }
  // Whether the times are on the heap (more than kInline at some point
  // since the window was last empty).
  bool spilled() const noexcept { return heap_ != nullptr; }

 private:
  int capacity() const noexcept { return heap_ ? kCapacity : kInline; }
  uint32_t* data() noexcept { return heap_ ? heap_.get() : inline_; }
  const uint32_t* data() const noexcept { return heap_ ? heap_.get() : inline_; }
  void grow() {
    auto heap = std::make_unique<uint32_t[]>(kCapacity);
    for (int k = 0; k < count_; ++k) heap[k] = at(k);
    heap_ = std::move(heap);
    head_ = 0;
  }

  std::unique_ptr<uint32_t[]> heap_;
  uint32_t inline_[kInline]{};
  uint16_t head_ = 0, count_ = 0;
};

}  // namespace shardring::gateway
