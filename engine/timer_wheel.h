// engine/timer_wheel.h: the per-core timer wheel. Stage: engine; it holds the
// heartbeat, zombie (missing ACK), identify-gate and backoff deadlines of the
// shards on one core thread. Single-threaded: only the core thread that owns
// the wheel may use it (no locks, no atomics). It never reads a clock: every
// call that needs the time takes it as an argument.
//
// A hierarchical hashed timing wheel (Varghese & Lauck, "Hashed and
// Hierarchical Timing Wheels", scheme 7), laid out like Linux kernel/timer.c
// before 4.8: one wheel of 256 one-millisecond slots, then four wheels of 64
// slots, each slot as wide as the whole wheel below it. A timer is filed in
// the lowest level whose span covers its distance from the wheel's current
// tick. When the wheel's tick reaches the start of a higher-level slot, that
// slot is emptied and its timers are filed again ("cascaded") one or more
// levels down, so every timer ends up in a 1 ms slot before it fires.
//
//   level  slots  slot width           holds deadlines this far ahead
//   -----  -----  -------------------  ---------------------------------
//     0     256   1 ms                 [0, 256 ms)
//     1      64   256 ms               [256 ms, 16.384 s)
//     2      64   16.384 s             [16.384 s, 17.48 min)
//     3      64   17.48 min (2^20 ms)  [17.48 min, 18.64 h)
//     4      64   18.64 h (2^26 ms)    [18.64 h, 49.71 days (2^32 ms))
//     beyond 2^32 ms: parked in level 4 at the farthest slot, re-filed with
//     the true deadline when that slot is reached (once per 49.7 days).
//
// Lateness. Because of the cascade, the worst-case lateness is the same at
// every level: zero whole ticks. A deadline is rounded up to the next whole
// millisecond after `start` and `now` is rounded down, so a timer fires in the
// first advance(now) whose `now` is at or past its rounded deadline: exactly
// the first call with now >= deadline for whole-millisecond deadlines, and
// less than 1 ms later than that for sub-millisecond ones. A timer never fires
// before its deadline. The price of exactness (Linux >= 4.8 gave it up for up
// to 12.5% lateness) is that a timer is moved at most once per level it
// starts above level 0: at most four moves, O(1) each, only for timers that
// live long enough to reach a higher slot's start.
//
// Costs: schedule() and cancel() are O(1) (a bitmap update and an intrusive
// list link/unlink). Timers are nodes in a pool owned by the wheel, linked
// through 32-bit indices; a freed node is reused, so scheduling allocates only
// when more timers are live than ever before (reserve() avoids even that).
// advance() costs O(timers fired + timers cascaded + occupied slots reached);
// it jumps over empty ticks, so a long gap between calls costs nothing extra.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace shardring::engine {

// Names one scheduled timer. A default-constructed TimerId names none. The id
// carries the generation of its pool node, so once its timer has fired or
// been cancelled and the node is reused, the old id no longer matches:
// cancel() with a stale id is harmless and returns false. (A node's
// generation is 32 bits: an id could only be mistaken after that one node
// had been reused 2^32 times.)
class TimerId {
 public:
  constexpr TimerId() noexcept = default;
  // Round-trips through an integer (an io_uring user_data, a log line).
  static constexpr TimerId from_value(uint64_t v) noexcept {
    TimerId id;
    id.value_ = v;
    return id;
  }
  constexpr uint64_t value() const noexcept { return value_; }
  constexpr bool is_valid() const noexcept { return value_ != 0; }
  friend constexpr bool operator==(TimerId, TimerId) noexcept = default;

 private:
  friend class TimerWheel;
  constexpr TimerId(uint32_t index, uint32_t generation) noexcept
      : value_(uint64_t{generation} << 32 | index) {}
  constexpr uint32_t index() const noexcept { return static_cast<uint32_t>(value_); }
  constexpr uint32_t generation() const noexcept { return static_cast<uint32_t>(value_ >> 32); }
  uint64_t value_ = 0;  // generation << 32 | node index; generation >= 1
};

class TimerWheel {
 public:
  using Clock = std::chrono::steady_clock;
  using Deadline = Clock::time_point;

  static constexpr int kLevels = 5;
  static constexpr int kLevel0Bits = 8;  // 256 slots of 1 ms
  static constexpr int kLevelBits = 6;   // 64 slots in levels 1-4
  // The farthest a timer is filed ahead: 2^32 ms, about 49.7 days.
  static constexpr uint64_t kMaxSpan = uint64_t{1} << (kLevel0Bits + (kLevels - 1) * kLevelBits);

  // Tick 0 is `start`: deadlines are counted in whole milliseconds from it,
  // and time before it does not exist for the wheel (advance() with an
  // earlier `now` fires nothing). Pass the time the wheel comes into use
  // (Clock::now() in the engine, a made-up time in tests). `reserve`
  // pre-sizes the node pool.
  explicit TimerWheel(Deadline start = Deadline{}, size_t reserve = 0);

  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Files a timer that fires with `cookie` at the first advance(now) with
  // now >= deadline (rounded up to a whole millisecond, see the top). A
  // deadline at or before the last advance()'s `now` fires at the next
  // advance(); one before `start` counts as `start`. Any deadline is
  // accepted, however far ahead. O(1); allocates only when the pool must
  // grow past its high-water mark (an allocation failure there terminates,
  // as in any noexcept function). Safe to call from inside on_expire.
  TimerId schedule(Deadline deadline, uint64_t cookie) noexcept;

  // Stops a timer that has not fired. True: it was pending and will not fire.
  // False: the id is stale (fired, cancelled, reused), default or made up;
  // nothing changes. O(1). Safe from inside on_expire, including for a timer
  // due in the same advance() that has not been handed out yet.
  bool cancel(TimerId id) noexcept;

  // Fires every timer due at `now`: calls on_expire(uint64_t cookie) once for
  // each, after the timer has been removed (its id is already stale, so the
  // callback may schedule again, even reuse the node). Returns how many fired.
  //
  // Order: first the timers that were already overdue when the call began
  // (scheduled at or before the previous `now`, in no particular order), then
  // the rest in millisecond order of their deadlines; timers due in the same
  // millisecond fire in no guaranteed order.
  //
  // Scheduling from on_expire: a timer whose deadline is later than the
  // millisecond being fired but not after `now` fires in this same call; one
  // at or before that millisecond fires at the next call (so a callback that
  // re-arms itself at `now` cannot loop forever). `now` must not go
  // backwards between calls (steady_clock's does not); advance() must not be
  // called from on_expire. If on_expire throws, the timers not yet handed out
  // stay pending and fire at the next call.
  template <class F>
  size_t advance(Deadline now, F&& on_expire);

  // A time to wake up by: never later than the earliest pending deadline, so
  // an io_uring wait bounded by it cannot oversleep a timer. It is the next
  // millisecond at which the wheel has work: the earliest deadline, or an
  // earlier moment when a higher-level slot is due to cascade (a wake-up at
  // which advance() only moves timers down; there are at most as many of
  // these as occupied higher-level slots reached). At or before the previous
  // `now` when a timer is already overdue (its own deadline may be earlier
  // still: any value <= now means "do not wait"). nullopt: no timers. O(1):
  // a scan of the occupancy bitmaps.
  [[nodiscard]] std::optional<Deadline> next_deadline() const noexcept;

  // Pending timers (scheduled, neither fired nor cancelled).
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  // Makes room for `timers` pending timers without further allocation.
  void reserve(size_t timers);

  // The time of tick 0.
  [[nodiscard]] Deadline start() const noexcept { return start_; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr uint16_t kFree = UINT16_MAX;  // Node::list of a free node
  static constexpr size_t kLevel0Slots = size_t{1} << kLevel0Bits;
  static constexpr size_t kLevelSlots = size_t{1} << kLevelBits;
  // List ids: the slots of every level, then two lists outside the wheel.
  // Each list has a sentinel node at the same index in nodes_.
  static constexpr uint16_t kSlotLists = kLevel0Slots + (kLevels - 1) * kLevelSlots;
  static constexpr uint16_t kDueList = kSlotLists;         // overdue, fire next call
  static constexpr uint16_t kFiringList = kSlotLists + 1;  // being fired
  static constexpr uint32_t kFirstTimerNode = kSlotLists + 2;
  // Tick values stay below this, so tick arithmetic never overflows
  // (2^62 ms is about 146 million years).
  static constexpr uint64_t kMaxTick = uint64_t{1} << 62;

  struct Node {
    uint64_t expires = 0;  // deadline tick
    uint64_t cookie = 0;
    uint32_t prev = kNil, next = kNil;  // free nodes: next = next free node
    uint32_t generation = 1;
    // The list the node was filed in, or kFree. After a splice to the due or
    // firing list it still names the slot it came from (see splice()).
    uint16_t list = kFree;
  };

  uint64_t deadline_to_tick(Deadline d) const noexcept;  // rounds up
  Deadline tick_to_deadline(uint64_t tick) const noexcept;
  uint32_t allocate() noexcept;
  void release(uint32_t n) noexcept;
  void link_tail(uint16_t list, uint32_t n) noexcept;
  void unlink(uint32_t n) noexcept;
  void file(uint32_t n) noexcept;  // into the list its expiry and tick_ pick
  void splice(uint16_t from, uint16_t to) noexcept;
  uint64_t* bitmap_word(uint16_t list, uint64_t& bit) noexcept;
  void set_bit(uint16_t list) noexcept;
  void clear_bit(uint16_t list) noexcept;
  void cascade(uint64_t tick) noexcept;
  uint64_t next_work_tick() const noexcept;  // kMaxTick when the wheel is empty
  bool list_empty(uint16_t list) const noexcept { return nodes_[list].next == list; }
  // advance() helpers, out of line.
  void begin_advance() noexcept;
  bool next_firing_tick(uint64_t now_tick) noexcept;
  bool pop_firing(uint64_t& cookie) noexcept;
  void end_advance(uint64_t now_tick) noexcept;
  bool to_now_tick(Deadline now, uint64_t& tick) const noexcept;

  Deadline start_;
  uint64_t tick_ = 0;  // the next tick to process; every earlier one is done
  size_t size_ = 0;
  uint32_t free_head_ = kNil;
  bool in_advance_ = false;
  // Occupied-slot bitmaps: level 0 needs four words, the others one each.
  uint64_t level0_bits_[kLevel0Slots / 64] = {};
  uint64_t level_bits_[kLevels] = {};  // [1..kLevels-1] used
  std::vector<Node> nodes_;            // sentinels [0, kFirstTimerNode), then timers
};

template <class F>
size_t TimerWheel::advance(Deadline now, F&& on_expire) {
  struct Guard {  // leaves the wheel consistent even if on_expire throws
    TimerWheel& w;
    ~Guard() { w.in_advance_ = false; }
  } guard{*this};
  uint64_t now_tick = 0;
  const bool started = to_now_tick(now, now_tick);
  begin_advance();
  size_t fired = 0;
  uint64_t cookie = 0;
  for (;;) {
    // The node is freed before the call, so the callback sees a stale id
    // and may schedule into the same node.
    while (pop_firing(cookie)) {
      ++fired;
      on_expire(cookie);
    }
    if (!started || !next_firing_tick(now_tick)) break;
  }
  if (started) end_advance(now_tick);
  return fired;
}

}  // namespace shardring::engine
