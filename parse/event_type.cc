// parse/event_type.cc: name <-> EventType through a perfect hash whose seed
// is searched at compile time, and the `--events` list parser.
#include "parse/event_type.h"

#include <array>
#include <bit>
#include <cstring>
#include <type_traits>

namespace shardring::parse {
namespace {

constexpr std::array<std::string_view, kEventTypeCount> kNames = {
    "", "UNKNOWN",
#define SHARDRING_PARSE_X(e, name) name,
    SHARDRING_PARSE_EVENT_TYPES(SHARDRING_PARSE_X)
#undef SHARDRING_PARSE_X
};

// Little-endian load of n <= 8 bytes, zero-extended.
constexpr uint64_t load_le(const char* p, size_t n) noexcept {
  if (!std::is_constant_evaluated() && n == 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) {
      v = __builtin_bswap64(v);
    }
    return v;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  }
  return v;
}

constexpr int kSlotBits = 9;  // 512 slots for ~80 names
constexpr size_t kSlots = size_t{1} << kSlotBits;

// Mixes the length and the first and last 8 bytes: enough to tell every
// Discord event name apart once multiplied by a well-chosen seed.
constexpr uint32_t slot_of(std::string_view s, uint64_t seed) noexcept {
  const size_t n = s.size() < 8 ? s.size() : 8;
  const uint64_t head = load_le(s.data(), n);
  const uint64_t tail = load_le(s.data() + s.size() - n, n);
  const uint64_t x = head ^ ((tail << 29) | (tail >> 35)) ^ (uint64_t{s.size()} * 0x9E37);
  return static_cast<uint32_t>((x * seed) >> (64 - kSlotBits));
}

constexpr uint64_t splitmix(uint64_t i) noexcept {
  uint64_t z = i * 0x9E3779B97F4A7C15ull + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (z ^ (z >> 31)) | 1;
}

struct Table {
  uint64_t seed = 0;
  std::array<uint8_t, kSlots> slot{};  // EventType, kNone = empty
};

// The first seed under which no two names share a slot.
constexpr Table build_table() {
  for (uint64_t i = 0;; ++i) {
    Table t;
    t.seed = splitmix(i);
    bool ok = true;
    for (size_t e = 2; e < kEventTypeCount && ok; ++e) {
      uint8_t& cell = t.slot[slot_of(kNames[e], t.seed)];
      if (cell != 0) ok = false;
      cell = static_cast<uint8_t>(e);
    }
    if (ok) return t;
  }
}

constexpr Table kTable = build_table();

static_assert(kEventTypeCount < 256, "EventType must fit the uint8_t table");
static_assert(kNames[static_cast<size_t>(EventType::kWebhooksUpdate)] == "WEBHOOKS_UPDATE");

constexpr EventType lookup(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return EventType::kUnknown;
  const uint8_t e = kTable.slot[slot_of(name, kTable.seed)];
  if (e == 0 || kNames[e] != name) return EventType::kUnknown;
  return static_cast<EventType>(e);
}

// Every name maps back to itself, checked while compiling.
constexpr bool every_name_round_trips() {
  for (size_t e = 2; e < kEventTypeCount; ++e) {
    if (lookup(kNames[e]) != static_cast<EventType>(e)) return false;
  }
  return lookup("MESSAGE_CREATEX") == EventType::kUnknown && lookup("READ") == EventType::kUnknown;
}
static_assert(every_name_round_trips());

constexpr bool is_name_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

std::string_view to_string(EventType type) noexcept {
  const auto i = static_cast<size_t>(type);
  return i < kEventTypeCount ? kNames[i] : std::string_view("UNKNOWN");
}

EventType event_type_from_name(std::string_view name) noexcept { return lookup(name); }

std::optional<EventFilter> EventFilter::parse(std::string_view list, std::string* error) {
  EventFilter f;
  f.all_ = false;
  bool any = false;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    bool ok = !item.empty();
    for (char c : item) ok = ok && is_name_char(c);
    if (!ok) {
      if (error) *error = std::string(item);
      return std::nullopt;
    }
    const EventType t = lookup(item);
    if (t == EventType::kUnknown) {
      bool seen = false;
      for (const std::string& u : f.unknown_) seen = seen || u == item;
      if (!seen) f.unknown_.emplace_back(item);
    } else {
      f.known_.set(static_cast<size_t>(t));
    }
    any = true;
    pos = comma + 1;
  }
  if (!any) {
    if (error) error->clear();
    return std::nullopt;
  }
  return f;
}

bool EventFilter::allows(EventType type, std::string_view name) const noexcept {
  if (all_ || type == EventType::kNone) return true;
  if (type != EventType::kUnknown) {
    return known_.test(static_cast<size_t>(type));
  }
  for (const std::string& u : unknown_) {
    if (u == name) return true;
  }
  return false;
}

}  // namespace shardring::parse
