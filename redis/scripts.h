// redis/scripts.h: the key layout of the Redis hand-off and the Lua scripts
// that write it (docs/interface.md "Redis"). Each script does all of one
// step inside Redis, atomically, so no other client ever sees half of it
// and a resend of a batch whose reply was lost changes nothing twice.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace shardring::redis {

// `P:shard:N`, `P:session:N`, `P:lease:N`, `P:gate:B`: prefix, kind, number.
std::string key(std::string_view prefix, std::string_view kind, uint64_t n);
// `P:commands`, `P:command-results`, `P:budget`.
std::string key(std::string_view prefix, std::string_view name);

// Appends one shard's events to its stream, exactly once.
//   KEYS[1] the stream P:shard:N, KEYS[2] the session hash P:session:N
//   ARGV[1] the writer's fence ("" to skip the check), ARGV[2] the session
//   key (Event::session, decimal), ARGV[3] the last seq of this session the
//   writer saw appended ("": none), then (seq, t, d) per event in seq order.
// Entry IDs are E-seq: E is the session's epoch, kept in the hash; a new
// session takes max(Redis's clock in ms, last E + 1, the stream's last ms
// + 1), never a client's clock, so IDs only grow and Redis itself refuses a
// repeat. Events at or below the hash's seq for this session are already
// in the stream (a resend, a replay after a resume or a takeover) and are
// skipped; the hash's seq moves in the same script as the appends.
// A fence other than the hash's `fence` means another process owns the
// shard now: nothing is written and the error starts with FENCED. A hash
// without a fence (Redis lost it) takes the writer's.
// When the stream holds less of the session than the writer saw appended
// (Redis lost writes: restored from an older snapshot, a replica that was
// behind), nothing is appended: the shard must be resumed from what the
// stream holds, and the gateway replays the rest.
// Returns {last seq in the stream for this session, appended, prev seq,
// lost (1: nothing appended, resume from the first element)}.
inline constexpr std::string_view kAppendScript = R"lua(
local h = KEYS[2]
local cur = redis.call('HMGET', h, 'fence', 'sink_session', 'epoch', 'seq')
if ARGV[1] ~= '' and not cur[1] then
  -- The hash is gone (Redis lost writes): the writer's fence carries on,
  -- so a later claim still gets a higher one.
  redis.call('HSET', h, 'fence', ARGV[1])
elseif ARGV[1] ~= '' and cur[1] ~= ARGV[1] then
  return redis.error_reply('FENCED shard taken over (fence ' .. tostring(cur[1]) ..
                           ', this writer holds ' .. ARGV[1] .. ')')
end
local epoch = tonumber(cur[3] or '0')
local last = 0
local fresh = false
if cur[2] == ARGV[2] then
  last = tonumber(cur[4] or '0')
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now > epoch then epoch = now else epoch = epoch + 1 end
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #top > 0 then
    local ms = tonumber(string.match(top[1][1], '^(%d+)'))
    if ms >= epoch then epoch = ms + 1 end
  end
  fresh = true
end
if ARGV[3] ~= '' then
  local have = fresh and 0 or last
  if have < tonumber(ARGV[3]) then return {have, 0, have, 1} end
end
local prev = last
local added = 0
for i = 4, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    local id = string.format('%d-%s', epoch, ARGV[i])
    redis.call('XADD', KEYS[1], id, 'seq', ARGV[i], 't', ARGV[i + 1], 'd', ARGV[i + 2])
    last = seq
    added = added + 1
  end
end
if fresh or added > 0 then
  redis.call('HSET', h, 'sink_session', ARGV[2], 'epoch', string.format('%d', epoch), 'seq', last)
end
return {last, added, prev, 0}
)lua";

// Trims one shard's stream below what every consumer group has
// acknowledged: the oldest entry a group has pending (delivered, not
// acknowledged), or the first it has not been delivered yet. A stream no
// group reads is left whole (nothing says what was handled). Then, with
// ARGV[1] > 0 (--redis-maxlen), the stream is cut to that many entries
// whatever was read.
//   KEYS[1] P:shard:N; ARGV[1] the cap (0: none).
// Returns {entries trimmed, of those not yet acknowledged by every group}.
inline constexpr std::string_view kTrimScript = R"lua(
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local trimmed = 0
if #groups > 0 then
  local safe = nil
  for _, g in ipairs(groups) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    local p = redis.call('XPENDING', KEYS[1], name)
    local cand
    if p[1] > 0 then
      cand = p[2]
    else
      local ms, seq = parse(last)
      cand = string.format('%d-%d', ms, seq + 1)
    end
    if safe == nil or less(cand, safe) then safe = cand end
  end
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', safe)
end
local cap = tonumber(ARGV[1])
local unread = 0
if cap > 0 then
  unread = redis.call('XTRIM', KEYS[1], 'MAXLEN', cap)
  trimmed = trimmed + unread
  if #groups == 0 then unread = 0 end
end
return {trimmed, unread}
)lua";

// The daily session-start budget several processes share (P:budget, a
// hash: remaining, reset_at in Redis's ms): a start reserves the
// IDENTIFYs it needs unless that would leave fewer than the reserve.
// Discord's own count (ARGV[1]) seeds it when missing or past its reset,
// and caps it otherwise (Discord knows of starts we did not see).
//   KEYS[1] P:budget; ARGV remaining, reset_after_ms, to_identify, reserve.
// Returns {1 reserved | 0 refused, remaining before this start}.
inline constexpr std::string_view kBudgetScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', KEYS[1], 'remaining', 'reset_at')
local remaining = tonumber(cur[1])
local reset_at = tonumber(cur[2])
if not remaining or not reset_at or reset_at <= now then
  remaining = tonumber(ARGV[1])
  reset_at = now + tonumber(ARGV[2])
else
  remaining = math.min(remaining, tonumber(ARGV[1]))
end
local need, reserve = tonumber(ARGV[3]), tonumber(ARGV[4])
local ok = remaining >= need and remaining - need >= reserve
local left = ok and remaining - need or remaining
redis.call('HSET', KEYS[1], 'remaining', left, 'reset_at', string.format('%d', reset_at))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', reset_at))
return {ok and 1 or 0, remaining}
)lua";

// One IDENTIFY spent beyond what its process reserved at start (a shard
// that had to identify anew): P:budget's remaining goes down, when known.
inline constexpr std::string_view kSpendScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], 'remaining', -tonumber(ARGV[1]))
end
return 0
)lua";

// Saves one shard's session (the session store), unless another process
// claimed the shard since: a fenced process must not overwrite its
// successor's session.
//   KEYS[1] P:session:N; ARGV[1] the saver's fence ("": no check), then
//   field, value pairs to set (an empty value removes the field).
// Returns 1 when saved, 0 when fenced off.
inline constexpr std::string_view kSaveSessionScript = R"lua(
if ARGV[1] ~= '' then
  local f = redis.call('HGET', KEYS[1], 'fence')
  if f and f ~= ARGV[1] then return 0 end
end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
)lua";

}  // namespace shardring::redis
