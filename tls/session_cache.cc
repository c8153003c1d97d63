// tls/session_cache.cc: per-host resumable sessions.
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
// clang-format on

#include <algorithm>

#include "tls/context.h"

namespace shardring::tls {

SessionCache::SessionCache(size_t max_entries) noexcept
    : max_entries_(std::max<size_t>(max_entries, 1)) {}

SessionCache::~SessionCache() { clear(); }

bool SessionCache::contains(std::string_view host) const noexcept { return find(host) != nullptr; }

WOLFSSL_SESSION* SessionCache::find(std::string_view host) const noexcept {
  for (const Entry& e : entries_) {
    if (e.host == host) return e.session;
  }
  return nullptr;
}

void SessionCache::erase(std::string_view host) noexcept {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].host == host) {
      wolfSSL_SESSION_free(entries_[i].session);
      entries_[i] = std::move(entries_.back());
      entries_.pop_back();
      return;
    }
  }
}

void SessionCache::clear() noexcept {
  for (Entry& e : entries_) wolfSSL_SESSION_free(e.session);
  entries_.clear();
}

void SessionCache::store(std::string_view host, WOLFSSL_SESSION* session) noexcept {
  for (Entry& e : entries_) {
    if (e.host == host) {
      wolfSSL_SESSION_free(e.session);
      e.session = session;
      e.stored_at = ++clock_;
      return;
    }
  }
  try {
    if (entries_.size() >= max_entries_) {
      auto oldest = std::min_element(
          entries_.begin(), entries_.end(),
          [](const Entry& a, const Entry& b) { return a.stored_at < b.stored_at; });
      oldest->host.assign(host);  // may throw: nothing freed yet
      wolfSSL_SESSION_free(oldest->session);
      oldest->session = session;
      oldest->stored_at = ++clock_;
      return;
    }
    entries_.push_back(Entry{std::string(host), session, ++clock_});
  } catch (...) {
    // Out of memory: the next connection to this host does a full handshake.
    wolfSSL_SESSION_free(session);
  }
}

}  // namespace shardring::tls
