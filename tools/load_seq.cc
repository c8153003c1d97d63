// tools/load_seq.cc: see load_seq.h.
#include "tools/load_seq.h"

#include "absl/strings/str_format.h"

namespace shardring::tools {

void SeqCheck::on_event(const Event& e) noexcept {
  if (e.shard >= last_.size() || e.seq == 0) return;
  Last& l = last_[e.shard];
  if (e.session != l.session) {
    l = Last{e.session, e.seq};
    return;
  }
  if (l.seq != 0 && e.seq <= l.seq) {
    repeats_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (l.seq != 0 && e.seq > l.seq + 1) {
    gaps_.fetch_add(1, std::memory_order_relaxed);
    lost_.fetch_add(e.seq - l.seq - 1, std::memory_order_relaxed);
  }
  l.seq = e.seq;
}

std::string SeqCheck::json() const {
  return absl::StrFormat("\"seq_gaps\":%d,\"seq_lost\":%d,\"seq_repeats\":%d", gaps(), lost(),
                         repeats());
}

std::string SeqCheck::text() const {
  if (gaps() == 0 && repeats() == 0) {
    return "every shard's seqs in order: nothing lost, nothing twice";
  }
  return absl::StrFormat("%d gaps (%d events lost), %d events delivered twice", gaps(), lost(),
                         repeats());
}

}  // namespace shardring::tools
