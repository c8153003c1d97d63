// tls/context.h: wolfSSL configuration shared by many connections, and the
// per-host cache of resumable sessions. Stage: TLS (docs/design.md data path).
//
// Threads: a Context is built at start-up and then only read. wolfSSL lets
// one WOLFSSL_CTX serve sessions on several threads (it reference-counts the
// CTX under a mutex at every session creation and takes the CA table's lock
// at every certificate verification), but that is a lock on each connect, so
// the engine builds one Context per core thread and shares nothing. One
// exception worth knowing in the server role: TLS 1.3 session tickets are
// sealed with keys that belong to the Context, so a client resumes only on a
// thread whose Context issued its ticket; a server that wants resumption
// across all its threads shares one Context (that is safe, just locked).
// A SessionCache belongs to one thread, like the sessions that use it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

struct WOLFSSL_CTX;
struct WOLFSSL_SESSION;

namespace shardring::tls {

// Debian's bundle of trusted roots (package ca-certificates).
inline constexpr std::string_view kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

// AEAD suites only, forward secret, TLS 1.3 first. AES-GCM leads: AES-NI
// makes it the fastest here; ChaCha20-Poly1305 stays for peers without it.
inline constexpr std::string_view kDefaultCipherList =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

enum class Role : uint8_t { kClient, kServer };

// kInsecure skips chain and host name checks (`--insecure`): encryption
// without authentication. The CLI refuses it for non-loopback hosts.
enum class Verification : uint8_t { kVerifyPeer, kInsecure };

// Protocol versions a Context accepts; TLS 1.3 is preferred when allowed.
// kTls12Only exists to test peers that stop at TLS 1.2.
enum class Versions : uint8_t { kTls12OrNewer, kTls13Only, kTls12Only };

struct ClientOptions {
  // Trusted roots. Certificates in the system bundle that wolfSSL cannot
  // parse are skipped; an unreadable bundle is an error. Empty: not loaded.
  std::string system_ca_file{kSystemCaBundle};
  // Extra PEM roots (`--ca-file`), loaded strictly: any bad entry is an
  // error naming the file. Empty: none.
  std::string ca_file;
  Verification verification = Verification::kVerifyPeer;
  Versions versions = Versions::kTls12OrNewer;
  // Offered protocols (RFC 7301), comma-separated; empty offers none.
  std::string alpn = "http/1.1";
  // wolfSSL cipher list syntax; empty means kDefaultCipherList.
  std::string cipher_list;
};

struct ServerOptions {
  std::string cert_file;  // PEM chain, leaf first (`--tls-cert`)
  std::string key_file;   // PEM private key matching the leaf (`--tls-key`)
  Versions versions = Versions::kTls12OrNewer;
  // Selected when the client offers it; a client offering other protocols
  // only, or none, still connects without ALPN.
  std::string alpn = "http/1.1";
  std::string cipher_list;  // empty means kDefaultCipherList
};

class Context {
 public:
  // Configuration errors come back as a Status naming the file and what is
  // wrong with it (NotFound, InvalidArgument); nothing here aborts. server()
  // proves the key matches the certificate with one in-memory handshake.
  static absl::StatusOr<Context> client(const ClientOptions& options);
  static absl::StatusOr<Context> server(const ServerOptions& options);

  Context(Context&& other) noexcept;
  Context& operator=(Context&& other) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();

  Role role() const noexcept { return role_; }
  bool verifies_peer() const noexcept { return verification_ == Verification::kVerifyPeer; }

 private:
  friend class Session;
  Context(WOLFSSL_CTX* ctx, Role role, Verification verification, std::string alpn) noexcept;
  static absl::Status SelfTest(const Context& server);

  WOLFSSL_CTX* ctx_ = nullptr;
  Role role_ = Role::kClient;
  Verification verification_ = Verification::kVerifyPeer;
  std::string alpn_;
};

// Resumable sessions by host name, so that a reconnect storm (thousands of
// shards to the same gateway host) costs one full handshake and then
// resumptions. Filled by client Sessions: with TLS 1.3 the server's ticket
// arrives after the handshake, inside read_plaintext(); with TLS 1.2 at
// handshake completion. One per core thread; not thread-safe. Must outlive
// the Sessions given a pointer to it.
class SessionCache {
 public:
  static constexpr size_t kDefaultMaxEntries = 64;

  explicit SessionCache(size_t max_entries = kDefaultMaxEntries) noexcept;
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;
  ~SessionCache();

  size_t size() const noexcept { return entries_.size(); }
  bool contains(std::string_view host) const noexcept;
  void erase(std::string_view host) noexcept;
  void clear() noexcept;

 private:
  friend class Session;
  struct Entry {
    std::string host;
    WOLFSSL_SESSION* session;  // owned
    uint64_t stored_at;        // insertion order, for eviction
  };
  WOLFSSL_SESSION* find(std::string_view host) const noexcept;
  // Takes ownership of `session` (freed on failure). Evicts the oldest entry
  // when full.
  void store(std::string_view host, WOLFSSL_SESSION* session) noexcept;

  size_t max_entries_;
  uint64_t clock_ = 0;
  std::vector<Entry> entries_;  // a handful of hosts: a scan beats a map
};

}  // namespace shardring::tls
