// engine/timer_wheel.cc: the timer wheel's filing, cascade and bookkeeping.
// See timer_wheel.h for the layout and the guarantees.
#include "engine/timer_wheel.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace shardring::engine {
namespace {

constexpr uint64_t kNsPerTick = 1'000'000;  // one tick is one millisecond

// Bits [shift, shift + kLevelBits) of a tick index a level-k slot (k >= 1).
constexpr int level_shift(int level) {
  return TimerWheel::kLevel0Bits + (level - 1) * TimerWheel::kLevelBits;
}

// The first set bit at or after `from`, wrapping around; `bits` is non-zero.
inline unsigned first_set_from(uint64_t bits, unsigned from) {
  return (from + static_cast<unsigned>(std::countr_zero(std::rotr(bits, from)))) & 63u;
}

}  // namespace

TimerWheel::TimerWheel(Deadline start, size_t reserve) : start_(start) {
  nodes_.resize(kFirstTimerNode);
  for (uint32_t i = 0; i < kFirstTimerNode; ++i) {
    nodes_[i].prev = nodes_[i].next = i;  // empty circular list
    nodes_[i].list = static_cast<uint16_t>(i);
  }
  this->reserve(reserve);
}

void TimerWheel::reserve(size_t timers) {
  const size_t want = size_t{kFirstTimerNode} + timers;
  assert(want < kNil);
  nodes_.reserve(want);
}

uint64_t TimerWheel::deadline_to_tick(Deadline d) const noexcept {
  if (d <= start_) return 0;
  // Unsigned, so that Deadline::max() minus an early start cannot overflow.
  const auto ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(d - start_).count());
  const uint64_t tick = ns / kNsPerTick + (ns % kNsPerTick != 0);
  return std::min(tick, kMaxTick - 1);
}

TimerWheel::Deadline TimerWheel::tick_to_deadline(uint64_t tick) const noexcept {
  using std::chrono::milliseconds;
  const auto room = std::chrono::duration_cast<milliseconds>(Deadline::max() - start_);
  if (tick >= static_cast<uint64_t>(room.count())) return Deadline::max();
  return start_ + milliseconds(static_cast<int64_t>(tick));
}

bool TimerWheel::to_now_tick(Deadline now, uint64_t& tick) const noexcept {
  if (now < start_) return false;
  const auto ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_).count());
  tick = std::min(ns / kNsPerTick, kMaxTick - 2);
  return true;
}

uint32_t TimerWheel::allocate() noexcept {
  if (free_head_ != kNil) {
    const uint32_t n = free_head_;
    free_head_ = nodes_[n].next;
    return n;
  }
  assert(nodes_.size() < kNil);
  nodes_.emplace_back();
  return static_cast<uint32_t>(nodes_.size() - 1);
}

void TimerWheel::release(uint32_t n) noexcept {
  Node& node = nodes_[n];
  node.list = kFree;
  node.prev = kNil;
  if (++node.generation == 0) node.generation = 1;  // 0 would be a null id
  node.next = free_head_;
  free_head_ = n;
}

uint64_t* TimerWheel::bitmap_word(uint16_t list, uint64_t& bit) noexcept {
  if (list < kLevel0Slots) {
    bit = uint64_t{1} << (list & 63);
    return &level0_bits_[list >> 6];
  }
  if (list < kSlotLists) {
    const unsigned l = list - kLevel0Slots;
    bit = uint64_t{1} << (l & (kLevelSlots - 1));
    return &level_bits_[1 + (l >> kLevelBits)];
  }
  return nullptr;  // not a slot: no bitmap
}

void TimerWheel::set_bit(uint16_t list) noexcept {
  uint64_t bit = 0;
  if (uint64_t* word = bitmap_word(list, bit)) *word |= bit;
}

void TimerWheel::clear_bit(uint16_t list) noexcept {
  uint64_t bit = 0;
  if (uint64_t* word = bitmap_word(list, bit)) *word &= ~bit;
}

void TimerWheel::link_tail(uint16_t list, uint32_t n) noexcept {
  Node& head = nodes_[list];
  Node& node = nodes_[n];
  node.list = list;
  node.next = list;
  node.prev = head.prev;
  nodes_[head.prev].next = n;
  head.prev = n;
  set_bit(list);
}

void TimerWheel::unlink(uint32_t n) noexcept {
  Node& node = nodes_[n];
  const uint16_t list = node.list;
  nodes_[node.prev].next = node.next;
  nodes_[node.next].prev = node.prev;
  if (list_empty(list)) clear_bit(list);
}

// Linux's internal_add_timer(): the level is picked by the distance from
// tick_, the slot by the deadline's own bits at that level. A level-k slot is
// emptied when tick_ reaches a multiple of its width whose level-k bits match,
// which is never after the deadline: the timer reaches level 0 in time.
void TimerWheel::file(uint32_t n) noexcept {
  const uint64_t expires = nodes_[n].expires;
  if (expires < tick_) {
    link_tail(kDueList, n);
    return;
  }
  const uint64_t distance = expires - tick_;
  if (distance < kLevel0Slots) {
    link_tail(static_cast<uint16_t>(expires & (kLevel0Slots - 1)), n);
    return;
  }
  for (int level = 1; level < kLevels; ++level) {
    const int shift = level_shift(level);
    const bool last = level == kLevels - 1;
    if (distance < (uint64_t{1} << (shift + kLevelBits)) || last) {
      // Beyond the top level's span: park at the farthest slot; the cascade
      // files it again with its true deadline.
      const uint64_t at = distance < kMaxSpan ? expires : tick_ + (kMaxSpan - 1);
      const auto slot = static_cast<uint16_t>((at >> shift) & (kLevelSlots - 1));
      link_tail(static_cast<uint16_t>(kLevel0Slots + (level - 1) * kLevelSlots + slot), n);
      return;
    }
  }
}

// Moves every node of `from` to the end of `to` in O(1). The moved nodes keep
// their old Node::list. That is harmless: unlink() uses it only to clear the
// old slot's bitmap bit when that slot is empty, which is then correct.
void TimerWheel::splice(uint16_t from, uint16_t to) noexcept {
  if (list_empty(from)) return;
  Node& src = nodes_[from];
  Node& dst = nodes_[to];
  const uint32_t first = src.next, last = src.prev;
  nodes_[first].prev = dst.prev;
  nodes_[dst.prev].next = first;
  nodes_[last].next = to;
  dst.prev = last;
  src.next = src.prev = from;
  clear_bit(from);
}

// Linux's cascade(): at a multiple of 256 ticks the level-1 slot whose time
// has come is re-filed; if that was slot 0, level 2's is too, and so on up.
void TimerWheel::cascade(uint64_t tick) noexcept {
  assert(tick == tick_);
  if ((tick & (kLevel0Slots - 1)) != 0) return;
  for (int level = 1; level < kLevels; ++level) {
    const auto slot = static_cast<uint16_t>((tick >> level_shift(level)) & (kLevelSlots - 1));
    const auto list = static_cast<uint16_t>(kLevel0Slots + (level - 1) * kLevelSlots + slot);
    // Every timer lands at a lower level, or (parked beyond the top level's
    // span) in the slot before this one, so the loop ends.
    while (!list_empty(list)) {
      const uint32_t n = nodes_[list].next;
      unlink(n);
      file(n);
      assert(nodes_[n].list != list);
    }
    if (slot != 0) break;
  }
}

// The first tick >= tick_ at which a non-empty slot is processed: a level-0
// slot fires at the tick equal to its deadline, a level-k slot is cascaded at
// the first multiple of its width (>= tick_) whose level-k bits name it.
uint64_t TimerWheel::next_work_tick() const noexcept {
  uint64_t best = kMaxTick;
  {
    const unsigned pos = tick_ & (kLevel0Slots - 1);
    const unsigned word = pos >> 6;
    constexpr unsigned kWords = kLevel0Slots / 64;
    // This word from pos, the following words, then this word before pos.
    const uint64_t head = level0_bits_[word] & (~uint64_t{0} << (pos & 63));
    unsigned slot = kLevel0Slots;
    if (head != 0) {
      slot = word * 64 + std::countr_zero(head);
    } else {
      for (unsigned i = 1; i <= kWords; ++i) {
        const unsigned w = (word + i) % kWords;
        if (level0_bits_[w] != 0) {
          slot = w * 64 + std::countr_zero(level0_bits_[w]);
          break;
        }
      }
    }
    if (slot != kLevel0Slots) {
      best = tick_ + ((slot - pos) & (kLevel0Slots - 1));
    }
  }
  for (int level = 1; level < kLevels; ++level) {
    const uint64_t bits = level_bits_[level];
    if (bits == 0) continue;
    const int shift = level_shift(level);
    const uint64_t first = (tick_ + ((uint64_t{1} << shift) - 1)) >> shift;
    const unsigned pos = first & (kLevelSlots - 1);
    const unsigned slot = first_set_from(bits, pos);
    const uint64_t at = (first + ((slot - pos) & (kLevelSlots - 1))) << shift;
    best = std::min(best, at);
  }
  return best;
}

TimerId TimerWheel::schedule(Deadline deadline, uint64_t cookie) noexcept {
  const uint32_t n = allocate();
  Node& node = nodes_[n];
  node.expires = deadline_to_tick(deadline);
  node.cookie = cookie;
  file(n);
  ++size_;
  return TimerId(n, nodes_[n].generation);
}

bool TimerWheel::cancel(TimerId id) noexcept {
  const uint32_t n = id.index();
  if (n < kFirstTimerNode || n >= nodes_.size()) return false;
  Node& node = nodes_[n];
  if (node.list == kFree || node.generation != id.generation()) return false;
  unlink(n);
  release(n);
  --size_;
  return true;
}

std::optional<TimerWheel::Deadline> TimerWheel::next_deadline() const noexcept {
  if (size_ == 0) return std::nullopt;
  if (!list_empty(kDueList) || !list_empty(kFiringList)) {
    // Overdue: any time up to the previous `now` makes the caller not wait.
    return tick_to_deadline(tick_ == 0 ? 0 : tick_ - 1);
  }
  return tick_to_deadline(next_work_tick());
}

void TimerWheel::begin_advance() noexcept {
  assert(!in_advance_ && "advance() called from its own on_expire");
  in_advance_ = true;
  // Timers overdue before this call; any a callback adds to kDueList now
  // wait for the next call. kFiringList is non-empty only if a previous
  // on_expire threw.
  splice(kDueList, kFiringList);
}

bool TimerWheel::next_firing_tick(uint64_t now_tick) noexcept {
  assert(now_tick + 1 >= tick_ && "advance(now) with an earlier now");
  const uint64_t tick = next_work_tick();
  if (tick > now_tick) return false;
  tick_ = tick;  // every tick before this one has nothing to do
  cascade(tick);
  tick_ = tick + 1;  // from here, a deadline at or before `tick` is overdue
  splice(static_cast<uint16_t>(tick & (kLevel0Slots - 1)), kFiringList);
  return true;
}

bool TimerWheel::pop_firing(uint64_t& cookie) noexcept {
  if (list_empty(kFiringList)) return false;
  const uint32_t n = nodes_[kFiringList].next;
  cookie = nodes_[n].cookie;
  unlink(n);
  release(n);
  --size_;
  return true;
}

void TimerWheel::end_advance(uint64_t now_tick) noexcept {
  // Nothing is due before now_tick + 1 any more; deadlines up to now_tick
  // scheduled from here on are overdue.
  tick_ = std::max(tick_, now_tick + 1);
}

}  // namespace shardring::engine
