// engine/spsc_ring.h: a bounded, lock-free single-producer/single-consumer
// ring. Stage: engine; it carries dispatch events from a core thread to a
// consumer thread (docs/design.md "Threads"), and any other one-way hand-off
// between two threads. Exactly one thread may call the producer functions
// and exactly one (other) thread the consumer functions; size_approx(),
// empty() and capacity() may be called from anywhere. Header-only.
//
// Layout [rigtorp/SPSCQueue]: the producer's index (head_) and the consumer's
// (tail_) live on separate cache lines, and each side keeps a private,
// possibly stale copy of the other side's index on a line of its own. A side
// reloads the other's index only when its copy says the ring is full (for
// the producer) or empty (for the consumer), so in steady state each push or
// pop touches a line the other core is not writing.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

namespace shardring::engine {

// 64 bytes, the line size of every x86-64 core and most AArch64 ones.
// std::hardware_destructive_interference_size is not used: GCC 12 derives it
// from -mtune/-mcpu and warns (-Winterference-size) when it shapes a type in
// a header, since two translation units built with different flags would
// disagree on the layout; and clang 14 with libstdc++ (our fuzz build) does
// not define it at all.
inline constexpr size_t kCacheLine = 64;

template <class T>
class SpscRing {
  static_assert(std::is_nothrow_destructible_v<T>);

 public:
  using value_type = T;

  // Room for `capacity` elements, rounded up to a power of two (at least 1).
  // Allocates once; no operation allocates afterwards.
  explicit SpscRing(size_t capacity)
      : mask_(std::bit_ceil(std::max<size_t>(capacity, 1)) - 1), slots_(allocate(mask_ + 1)) {}

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Destroys the elements still in the ring. Neither side may be using it.
  ~SpscRing() {
    const size_t head = head_.load(std::memory_order_acquire);
    for (size_t i = tail_.load(std::memory_order_relaxed); i != head; ++i) {
      std::destroy_at(slot(i));
    }
    // Unsized: clang (without -fsized-deallocation) does not declare the
    // sized aligned form.
    ::operator delete (slots_, std::align_val_t{kSlotAlign});
  }

  // ---- Producer thread only. ----

  // Constructs an element in place from `args`. False when full: nothing is
  // constructed; the caller applies backpressure (stops reading that shard's
  // socket) and counts it; it never spins here. If the constructor throws,
  // the ring is unchanged.
  template <class... Args>
  [[nodiscard]] bool try_emplace(Args&&... args) noexcept(
      std::is_nothrow_constructible_v<T, Args&&...>) {
    const size_t head = head_.load(std::memory_order_relaxed);  // ours
    if (head - tail_cache_ > mask_ && !refresh_tail_cache(head, 1)) {
      return false;
    }
    std::construct_at(slot(head), std::forward<Args>(args)...);
    // Release: the element's construction happens-before the consumer's
    // acquire load of head_ that sees head + 1.
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  // Moves `v` in; on false (full) `v` is left untouched.
  [[nodiscard]] bool try_push(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) {
    return try_emplace(std::move(v));
  }
  [[nodiscard]] bool try_push(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>) {
    return try_emplace(v);
  }

  // Moves as many leading elements of `items` in as there is room for and
  // publishes them with one store. Returns how many went in: items[0, n) are
  // moved-from, items[n, size) untouched. If a move constructor throws, the
  // elements moved before it stay in the ring (published) and the exception
  // propagates.
  size_t push_batch(std::span<T> items) noexcept(std::is_nothrow_move_constructible_v<T>) {
    const size_t head = head_.load(std::memory_order_relaxed);
    size_t room = capacity() - (head - tail_cache_);
    if (room < items.size()) {
      refresh_tail_cache(head, items.size());
      room = capacity() - (head - tail_cache_);
    }
    const size_t n = std::min(room, items.size());
    Publisher publish{head_, head};
    for (size_t i = 0; i < n; ++i) {
      std::construct_at(slot(head + i), std::move(items[i]));
      ++publish.done;
    }
    return n;
  }

  // ---- Consumer thread only. ----

  // The oldest element, or nullptr when the ring is empty. It stays valid
  // (and stays in the ring) until pop().
  [[nodiscard]] T* front() noexcept {
    const size_t tail = tail_.load(std::memory_order_relaxed);  // ours
    if (tail == head_cache_ && !refresh_head_cache(tail, 1)) return nullptr;
    return slot(tail);
  }

  // Destroys the oldest element. Precondition: front() != nullptr.
  void pop() noexcept {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    assert(tail != head_.load(std::memory_order_acquire) && "pop() on empty");
    std::destroy_at(slot(tail));
    // Release: our reads of the slot (and its destruction) happen-before the
    // producer's acquire load of tail_ that lets it reuse the slot.
    tail_.store(tail + 1, std::memory_order_release);
  }

  // Moves the oldest element into `out` and removes it. False when empty.
  [[nodiscard]] bool try_pop(T& out) noexcept(std::is_nothrow_move_assignable_v<T>) {
    T* v = front();
    if (v == nullptr) return false;
    out = std::move(*v);
    pop();
    return true;
  }

  // Calls f(T&) on up to `max` elements, oldest first, destroying each after
  // f returns, and publishes the new tail once at the end. Returns how many
  // were consumed. If f throws, the element it threw on stays at the front
  // (not destroyed) and the ones before it are removed.
  template <class F>
  size_t consume(F&& f, size_t max = SIZE_MAX) noexcept(noexcept(f(std::declval<T&>()))) {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    size_t avail = head_cache_ - tail;
    if (avail < max) {
      refresh_head_cache(tail, max);
      avail = head_cache_ - tail;
    }
    const size_t n = std::min(avail, max);
    Publisher publish{tail_, tail};
    for (size_t i = 0; i < n; ++i) {
      T* v = slot(tail + i);
      f(*v);
      std::destroy_at(v);
      ++publish.done;
    }
    return n;
  }

  // Moves up to out.size() elements into out[0, n), oldest first; one tail
  // store. Returns n.
  size_t pop_batch(std::span<T> out) noexcept(std::is_nothrow_move_assignable_v<T>) {
    T* dst = out.data();
    return consume([&dst](T& v) { *dst++ = std::move(v); }, out.size());
  }

  // ---- Any thread. ----

  // Elements in the ring at some moment during the call; exact only when
  // called by one side while the other is idle.
  [[nodiscard]] size_t size_approx() const noexcept {
    // tail_ first: it never passes head_, and head_ only grows, so the
    // difference cannot go negative.
    const size_t tail = tail_.load(std::memory_order_acquire);
    const size_t head = head_.load(std::memory_order_acquire);
    return std::min(head - tail, capacity());
  }
  [[nodiscard]] bool empty() const noexcept { return size_approx() == 0; }
  [[nodiscard]] size_t capacity() const noexcept { return mask_ + 1; }

 private:
  static constexpr size_t kSlotAlign = std::max(alignof(T), kCacheLine);

  // The slots start on a line of their own and end on a line boundary, so no
  // other heap object shares a line with them.
  static size_t storage_bytes(size_t n) {
    return (n * sizeof(T) + kCacheLine - 1) / kCacheLine * kCacheLine;
  }
  static T* allocate(size_t n) {
    return static_cast<T*>(::operator new (storage_bytes(n), std::align_val_t{kSlotAlign}));
  }
  T* slot(size_t index) const noexcept { return slots_ + (index & mask_); }

  // Producer: reloads tail_ into tail_cache_; true when `want` slots are free.
  bool refresh_tail_cache(size_t head, size_t want) noexcept {
    // Acquire: pairs with the consumer's release store of tail_, so the slots
    // we are about to overwrite are no longer being read.
    tail_cache_ = tail_.load(std::memory_order_acquire);
    return capacity() - (head - tail_cache_) >= want;
  }
  // Consumer: reloads head_ into head_cache_; true when `want` are readable.
  bool refresh_head_cache(size_t tail, size_t want) noexcept {
    // Acquire: pairs with the producer's release store of head_, so the
    // elements we are about to read are fully constructed.
    head_cache_ = head_.load(std::memory_order_acquire);
    return head_cache_ - tail >= want;
  }

  // Publishes `start + done` to `index` when it goes out of scope, so a batch
  // costs one release store and an exception mid-batch loses nothing.
  struct Publisher {
    std::atomic<size_t>& index;
    size_t start;
    size_t done = 0;
    ~Publisher() {
      if (done != 0) index.store(start + done, std::memory_order_release);
    }
  };

  // Read-only after construction: shared by both sides without contention.
  alignas(kCacheLine) const size_t mask_;
  T* const slots_;
  // Monotonic counters (they wrap at 2^64, which the unsigned arithmetic
  // above tolerates); the slot is index & mask_.
  alignas(kCacheLine) std::atomic<size_t> head_{0};  // written by producer
  alignas(kCacheLine) size_t tail_cache_ = 0;        // producer's copy
  alignas(kCacheLine) std::atomic<size_t> tail_{0};  // written by consumer
  alignas(kCacheLine) size_t head_cache_ = 0;        // consumer's copy
};

}  // namespace shardring::engine
