// bench/tls_peer_bench.cc: one TLS library, chosen at compile time, driven
// directly through its own API in memory (client and server in one process,
// no sockets): TLS 1.3 record decryption on the client and encryption on the
// server (MB/s of plaintext) per cipher and record size, and full and resumed
// (session ticket) handshakes (both sides' CPU). bench/tls.cmake builds it
// three times and bench/tls_compare.sh puts the three side by side:
//   tls_peer_bench_ours            -DSHARDRING_PEER_WOLFSSL, our wolfSSL build
//                                  with assembly (.cache/wolfssl, static)
//   tls_peer_bench_system_wolfssl  -DSHARDRING_PEER_WOLFSSL, Debian's
//                                  libwolfssl.so (no assembly)
//   tls_peer_bench_openssl         -DSHARDRING_PEER_OPENSSL, OpenSSL 3
//
// The same for every library, so that only the library differs:
//  - TLS 1.3 only, one suite per benchmark, ECDHE on P-256 only, the server
//    an ECDSA P-256 leaf + CA chain from tests/tls/test_pki (openssl CLI);
//    the client verifies the chain and the name "localhost", and sends SNI.
//  - Both ends' bytes go through the same Pipe (a byte vector): wolfSSL
//    through its I/O callbacks, OpenSSL through a BIO_METHOD over the Pipe
//    (a BIO_s_mem would need a memset or an extra copy to drain each batch,
//    which the wolfSSL side would not pay). One memcpy in, one out.
//  - The server sends one session ticket (OpenSSL's default is two); the
//    client keeps no session cache of its own library (like tls::Context).
//  - Decryption: each iteration the server encrypts 1 MiB of plaintext as
//    records of the given size, with the timers paused; the timed part is
//    the client reading it all back (SSL_read/wolfSSL_read until the Pipe is
//    empty), checked for the byte count; the AEAD tag check on every record
//    guarantees each was really decrypted. Encryption: the timed part is the
//    server writing 1 MiB as records into the Pipe, which is then emptied.
//  - Handshakes: new client and server objects from long-lived contexts each
//    time, as bench/tls_record_bench.cc does; the resumed one offers the
//    ticket from the previous connection and takes the new one it is sent.
//
//   build/bin/tls_peer_bench_ours --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/tls/test_pki.h"

#if defined(SHARDRING_PEER_OPENSSL) == defined(SHARDRING_PEER_WOLFSSL)
#error "define exactly one of SHARDRING_PEER_OPENSSL, SHARDRING_PEER_WOLFSSL"
#endif

#ifdef SHARDRING_PEER_WOLFSSL
// clang-format off
#include <wolfssl/options.h>  // the library's own build options: first
#include <wolfssl/ssl.h>
// clang-format on
#else
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#endif

#ifndef SHARDRING_PEER_NAME
#define SHARDRING_PEER_NAME "unnamed"
#endif

namespace {

const shardring::tls::testing::TestPki& Pki() {
  std::string error;
  const auto& pki = shardring::tls::testing::GetTestPki(&error);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(1);
  }
  return pki;
}

// One direction of the connection: bytes one side wrote and the other has
// not read yet. Emptied without giving its memory back.
struct Pipe {
  std::vector<unsigned char> buf;
  size_t head = 0;

  size_t size() const { return buf.size() - head; }
  size_t read(void* out, size_t n) {
    n = std::min(n, size());
    std::memcpy(out, buf.data() + head, n);
    head += n;
    if (head == buf.size()) clear();
    return n;
  }
  void write(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  void clear() {
    buf.clear();
    head = 0;
  }
};

struct Suite {
  const char* label;    // benchmark names
  const char* wolfssl;  // wolfSSL_CTX_set_cipher_list
  const char* openssl;  // SSL_CTX_set_ciphersuites
};
const Suite kSuites[] = {
    {"AES128-GCM", "TLS13-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256"},
    {"CHACHA20-POLY1305", "TLS13-CHACHA20-POLY1305-SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
};

constexpr const char kHost[] = "localhost";

// ---- The library: the same small interface over each API.
//   Step(): 1 handshake done, 0 wants more input, -1 failed.
//   Read(): bytes of plaintext, 0 wants more input, -1 failed.

#ifdef SHARDRING_PEER_WOLFSSL

using Ssl = WOLFSSL;
using SslCtx = WOLFSSL_CTX;
using SslSession = WOLFSSL_SESSION;

std::string LastError(WOLFSSL* ssl, int ret) {
  const int err = ssl != nullptr ? wolfSSL_get_error(ssl, ret) : ret;
  char buf[128];
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(err), buf, sizeof buf);
  return std::to_string(err) + " " + buf;
}

int PipeRecv(WOLFSSL*, char* buf, int size, void* ctx) {
  const size_t n = static_cast<Pipe*>(ctx)->read(buf, static_cast<size_t>(size));
  return n == 0 ? WOLFSSL_CBIO_ERR_WANT_READ : static_cast<int>(n);
}

int PipeSend(WOLFSSL*, char* buf, int size, void* ctx) {
  static_cast<Pipe*>(ctx)->write(buf, static_cast<size_t>(size));
  return size;
}

void LibInit() { wolfSSL_Init(); }

std::string LibDescription() {
  std::string s = std::string("wolfSSL ") + wolfSSL_lib_version();
#ifdef WOLFSSL_AESNI
  s += " +aesni";
#else
  s += " -aesni";
#endif
#ifdef USE_INTEL_SPEEDUP
  s += " +intel-speedup";
#endif
#ifdef WOLFSSL_SP_X86_64_ASM
  s += " +sp-x86_64-asm";
#endif
  return s;
}

const void* LibSymbol() { return reinterpret_cast<const void*>(&wolfSSL_new); }

bool Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "tls_peer_bench: %s %s\n", what, detail.c_str());
  return false;
}

void CommonCtx(WOLFSSL_CTX* ctx, const Suite& suite) {
  if (wolfSSL_CTX_set_cipher_list(ctx, suite.wolfssl) != WOLFSSL_SUCCESS) {
    Fail("cipher list", suite.wolfssl);
    std::exit(1);
  }
  int groups[] = {WOLFSSL_ECC_SECP256R1};
  if (wolfSSL_CTX_set_groups(ctx, groups, 1) != WOLFSSL_SUCCESS) {
    Fail("groups");
    std::exit(1);
  }
}

SslCtx* NewClientCtx(const Suite& suite) {
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
  CommonCtx(ctx, suite);
  (void)wolfSSL_CTX_UseSessionTicket(ctx);
  (void)wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
  if (wolfSSL_CTX_load_verify_locations(ctx, Pki().ca_cert.c_str(), nullptr) != WOLFSSL_SUCCESS) {
    Fail("CA file");
    std::exit(1);
  }
  wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, nullptr);
  return ctx;
}

SslCtx* NewServerCtx(const Suite& suite) {
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
  CommonCtx(ctx, suite);
  if (wolfSSL_CTX_use_certificate_chain_file(ctx, Pki().server_chain.c_str()) != WOLFSSL_SUCCESS ||
      wolfSSL_CTX_use_PrivateKey_file(ctx, Pki().server_key.c_str(), WOLFSSL_FILETYPE_PEM) !=
          WOLFSSL_SUCCESS) {
    Fail("server certificate or key");
    std::exit(1);
  }
  wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, nullptr);
  return ctx;
}

void FreeCtx(SslCtx* ctx) { wolfSSL_CTX_free(ctx); }

Ssl* NewSsl(SslCtx* ctx, bool client, Pipe* in, Pipe* out, SslSession* resume) {
  WOLFSSL* ssl = wolfSSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  wolfSSL_SSLSetIORecv(ssl, &PipeRecv);
  wolfSSL_SSLSetIOSend(ssl, &PipeSend);
  wolfSSL_SetIOReadCtx(ssl, in);
  wolfSSL_SetIOWriteCtx(ssl, out);
  if (client) {
    if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, kHost, sizeof kHost - 1) != WOLFSSL_SUCCESS ||
        wolfSSL_check_domain_name(ssl, kHost) != WOLFSSL_SUCCESS ||
        (resume != nullptr && wolfSSL_set_session(ssl, resume) != WOLFSSL_SUCCESS)) {
      wolfSSL_free(ssl);
      return nullptr;
    }
  }
  return ssl;
}

void FreeSsl(Ssl* ssl) { wolfSSL_free(ssl); }

int Step(Ssl* ssl, bool client) {
  const int ret = client ? wolfSSL_connect(ssl) : wolfSSL_accept(ssl);
  if (ret == WOLFSSL_SUCCESS) return 1;
  const int err = wolfSSL_get_error(ssl, ret);
  if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) return 0;
  Fail(client ? "client handshake:" : "server handshake:", LastError(ssl, ret));
  return -1;
}

int Read(Ssl* ssl, void* buf, int size) {
  const int ret = wolfSSL_read(ssl, buf, size);
  if (ret > 0) return ret;
  const int err = wolfSSL_get_error(ssl, ret);
  if (err == WOLFSSL_ERROR_WANT_READ) return 0;
  Fail("read:", LastError(ssl, ret));
  return -1;
}

bool Write(Ssl* ssl, const void* buf, int size) {
  const int ret = wolfSSL_write(ssl, buf, size);
  return ret == size || Fail("write:", LastError(ssl, ret));
}

// Our own copy, as tls::Session keeps it.
SslSession* GetSession(Ssl* ssl) {
  WOLFSSL_SESSION* live = wolfSSL_get1_session(ssl);
  if (live == nullptr) return nullptr;
  WOLFSSL_SESSION* copy = wolfSSL_SESSION_dup(live);
  wolfSSL_SESSION_free(live);
  return copy;
}

void FreeSession(SslSession* s) { wolfSSL_SESSION_free(s); }

bool Resumed(Ssl* ssl) { return wolfSSL_session_reused(ssl) == 1; }

std::string Negotiated(Ssl* ssl) {
  const char* cipher = wolfSSL_get_cipher_name(ssl);
  const char* group = wolfSSL_get_curve_name(ssl);
  return std::string(cipher ? cipher : "?") + " " + (group ? group : "?");
}

bool IsSuite(Ssl* ssl, const Suite& suite) {
  const char* c = wolfSSL_get_cipher_name(ssl);
  return c != nullptr && std::strcmp(c, suite.wolfssl) == 0;
}

#else  // SHARDRING_PEER_OPENSSL

using Ssl = SSL;
using SslCtx = SSL_CTX;
using SslSession = SSL_SESSION;

std::string LastError() {
  const unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "tls_peer_bench: %s %s\n", what, detail.c_str());
  return false;
}

// A BIO over a Pipe: the same bytes-in, bytes-out as the wolfSSL callbacks.
int PipeBioWrite(BIO* b, const char* data, size_t len, size_t* written) {
  static_cast<Pipe*>(BIO_get_data(b))->write(data, len);
  *written = len;
  return 1;
}

int PipeBioRead(BIO* b, char* out, size_t len, size_t* got) {
  BIO_clear_retry_flags(b);
  *got = static_cast<Pipe*>(BIO_get_data(b))->read(out, len);
  if (*got == 0) {
    BIO_set_retry_read(b);
    return 0;
  }
  return 1;
}

long PipeBioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int PipeBioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* PipeBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shardring pipe");
    BIO_meth_set_write_ex(m, &PipeBioWrite);
    BIO_meth_set_read_ex(m, &PipeBioRead);
    BIO_meth_set_ctrl(m, &PipeBioCtrl);
    BIO_meth_set_create(m, &PipeBioCreate);
    return m;
  }();
  return method;
}

void LibInit() { OPENSSL_init_ssl(0, nullptr); }

std::string LibDescription() { return OpenSSL_version(OPENSSL_VERSION); }

const void* LibSymbol() { return reinterpret_cast<const void*>(&SSL_new); }

void CommonCtx(SSL_CTX* ctx, const Suite& suite) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, suite.openssl) != 1 ||
      SSL_CTX_set1_groups_list(ctx, "P-256") != 1) {
    Fail("context setup:", LastError());
    std::exit(1);
  }
}

SslCtx* NewClientCtx(const Suite& suite) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  CommonCtx(ctx, suite);
  if (SSL_CTX_load_verify_locations(ctx, Pki().ca_cert.c_str(), nullptr) != 1) {
    Fail("CA file:", LastError());
    std::exit(1);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

SslCtx* NewServerCtx(const Suite& suite) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  CommonCtx(ctx, suite);
  if (SSL_CTX_use_certificate_chain_file(ctx, Pki().server_chain.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, Pki().server_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    Fail("server certificate or key:", LastError());
    std::exit(1);
  }
  SSL_CTX_set_num_tickets(ctx, 1);  // as wolfSSL sends
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  return ctx;
}

void FreeCtx(SslCtx* ctx) { SSL_CTX_free(ctx); }

Ssl* NewSsl(SslCtx* ctx, bool client, Pipe* in, Pipe* out, SslSession* resume) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  BIO* rbio = BIO_new(PipeBioMethod());
  BIO* wbio = BIO_new(PipeBioMethod());
  BIO_set_data(rbio, in);
  BIO_set_data(wbio, out);
  SSL_set_bio(ssl, rbio, wbio);
  if (client) {
    SSL_set_connect_state(ssl);
    if (SSL_set_tlsext_host_name(ssl, kHost) != 1 || SSL_set1_host(ssl, kHost) != 1 ||
        (resume != nullptr && SSL_set_session(ssl, resume) != 1)) {
      SSL_free(ssl);
      return nullptr;
    }
  } else {
    SSL_set_accept_state(ssl);
  }
  return ssl;
}

void FreeSsl(Ssl* ssl) { SSL_free(ssl); }

int Step(Ssl* ssl, bool client) {
  const int ret = SSL_do_handshake(ssl);
  if (ret == 1) return 1;
  const int err = SSL_get_error(ssl, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
  Fail(client ? "client handshake:" : "server handshake:", std::to_string(err) + " " + LastError());
  return -1;
}

int Read(Ssl* ssl, void* buf, int size) {
  const int ret = SSL_read(ssl, buf, size);
  if (ret > 0) return ret;
  const int err = SSL_get_error(ssl, ret);
  if (err == SSL_ERROR_WANT_READ) return 0;
  Fail("read:", std::to_string(err) + " " + LastError());
  return -1;
}

bool Write(Ssl* ssl, const void* buf, int size) {
  const int ret = SSL_write(ssl, buf, size);
  return ret == size || Fail("write:", LastError());
}

// Our own copy, as on the wolfSSL side: SSL_free() without a shutdown marks
// the connection's live session not resumable (ssl_clear_bad_session).
SslSession* GetSession(Ssl* ssl) {
  SSL_SESSION* live = SSL_get1_session(ssl);
  if (live == nullptr) return nullptr;
  SSL_SESSION* copy = SSL_SESSION_dup(live);
  SSL_SESSION_free(live);
  if (copy != nullptr && SSL_SESSION_is_resumable(copy) != 1) {
    SSL_SESSION_free(copy);
    return nullptr;
  }
  return copy;
}

void FreeSession(SslSession* s) { SSL_SESSION_free(s); }

bool Resumed(Ssl* ssl) { return SSL_session_reused(ssl) == 1; }

std::string Negotiated(Ssl* ssl) {
  const char* cipher = SSL_get_cipher_name(ssl);
  const int nid = SSL_get_negotiated_group(ssl);
  const char* group = nid > 0 ? OBJ_nid2sn(nid) : nullptr;
  return std::string(cipher ? cipher : "?") + " " + (group ? group : "?");
}

bool IsSuite(Ssl* ssl, const Suite& suite) {
  const char* c = SSL_get_cipher_name(ssl);
  return c != nullptr && std::strcmp(c, suite.openssl) == 0;
}

#endif

// ---- Library-neutral from here on.

struct Contexts {
  SslCtx* client;
  SslCtx* server;
  explicit Contexts(const Suite& suite)
      : client(NewClientCtx(suite)), server(NewServerCtx(suite)) {}
  ~Contexts() {
    FreeCtx(client);
    FreeCtx(server);
  }
  Contexts(const Contexts&) = delete;
  Contexts& operator=(const Contexts&) = delete;
};

// A client and a server joined by two Pipes.
struct Link {
  Pipe c2s;
  Pipe s2c;
  Ssl* client = nullptr;
  Ssl* server = nullptr;

  bool open(const Contexts& ctx, SslSession* resume = nullptr) {
    close();
    client = NewSsl(ctx.client, true, &s2c, &c2s, resume);
    server = NewSsl(ctx.server, false, &c2s, &s2c, nullptr);
    return client != nullptr && server != nullptr;
  }
  void close() {
    if (client != nullptr) FreeSsl(client);
    if (server != nullptr) FreeSsl(server);
    client = server = nullptr;
    c2s.clear();
    s2c.clear();
  }
  ~Link() { close(); }

  // Both sides step in turn until both are done.
  bool handshake() {
    bool c = false, s = false;
    for (int round = 0; round < 16 && !(c && s); ++round) {
      if (!c) {
        const int r = Step(client, true);
        if (r < 0) return false;
        c = r > 0;
      }
      if (!s) {
        const int r = Step(server, false);
        if (r < 0) return false;
        s = r > 0;
      }
    }
    return c && s;
  }

  // The client reads what the server sent (the session ticket after a
  // handshake); false when that was application data or an error.
  bool client_takes_ticket() {
    unsigned char buf[256];
    return Read(client, buf, sizeof buf) == 0 && s2c.size() == 0;
  }
};

struct Connected {
  Contexts ctx;
  Link link;
  std::string error;

  explicit Connected(const Suite& suite) : ctx(suite) {
    if (!link.open(ctx) || !link.handshake()) {
      error = "handshake failed";
    } else if (!link.client_takes_ticket()) {
      error = "no session ticket";
    } else if (!IsSuite(link.client, suite)) {
      error = "suite not negotiated: " + Negotiated(link.client);
    } else if (!round_trip()) {
      error = "round trip failed";
    }
  }

  // Distinct bytes across a record boundary come back intact.
  bool round_trip() {
    std::string sent(40000, '\0');
    for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 131 + 7);
    if (!Write(link.server, sent.data(), 16384) ||
        !Write(link.server, sent.data() + 16384, static_cast<int>(sent.size() - 16384))) {
      return false;
    }
    std::string got(sent.size() + 1, '\0');
    size_t n = 0;
    for (int r; (r = Read(link.client, got.data() + n, static_cast<int>(got.size() - n))) > 0;) {
      n += static_cast<size_t>(r);
    }
    return n == sent.size() && std::memcmp(got.data(), sent.data(), n) == 0;
  }
};

constexpr size_t kBatchBytes = size_t{1} << 20;  // plaintext per iteration

void BM_Decrypt(benchmark::State& state, const Suite& suite, size_t record) {
  Connected c(suite);
  if (!c.error.empty()) {
    state.SkipWithError(c.error.c_str());
    return;
  }
  const size_t batch = kBatchBytes / record;
  const std::string payload(record, 'x');
  std::vector<unsigned char> plain(1 << 16);
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < batch; ++i) {
      if (!Write(c.link.server, payload.data(), static_cast<int>(record))) std::abort();
    }
    state.ResumeTiming();
    size_t total = 0;
    int r;
    while ((r = Read(c.link.client, plain.data(), static_cast<int>(plain.size()))) > 0) {
      total += static_cast<size_t>(r);
      benchmark::DoNotOptimize(plain.data());
    }
    if (r < 0 || total != batch * record || c.link.s2c.size() != 0) {
      state.SkipWithError("short read");
      break;
    }
  }
  state.SetLabel(Negotiated(c.link.client));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * record));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}

void BM_Encrypt(benchmark::State& state, const Suite& suite, size_t record) {
  Connected c(suite);
  if (!c.error.empty()) {
    state.SkipWithError(c.error.c_str());
    return;
  }
  const size_t batch = kBatchBytes / record;
  const std::string payload(record, 'x');
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      if (!Write(c.link.server, payload.data(), static_cast<int>(record))) std::abort();
    }
    benchmark::DoNotOptimize(c.link.s2c.buf.data());
    if (c.link.s2c.size() < batch * record) {
      state.SkipWithError("short write");
      break;
    }
    c.link.s2c.clear();
  }
  state.SetLabel(Negotiated(c.link.server));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * record));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}

// Client and server both: ECDHE P-256 + ECDSA P-256 (leaf + CA sent), the
// client verifying the chain and the name.
void BM_FullHandshake(benchmark::State& state) {
  Contexts ctx(kSuites[0]);
  Link link;
  for (auto _ : state) {
    if (!link.open(ctx) || !link.handshake()) {
      state.SkipWithError("handshake failed");
      break;
    }
  }
  if (link.client != nullptr) state.SetLabel(Negotiated(link.client));
}

// A reconnect offering the previous connection's ticket (PSK with ECDHE),
// which takes the new ticket the server sends, as the engine's reconnects do.
void BM_ResumedHandshake(benchmark::State& state) {
  Contexts ctx(kSuites[0]);
  Link link;
  SslSession* session = nullptr;
  if (link.open(ctx) && link.handshake() && link.client_takes_ticket()) {
    session = GetSession(link.client);
  }
  if (session == nullptr) {
    state.SkipWithError("no resumable session");
    return;
  }
  for (auto _ : state) {
    if (!link.open(ctx, session) || !link.handshake() || !Resumed(link.client)) {
      state.SkipWithError("not resumed");
      break;
    }
    if (link.s2c.size() == 0 || !link.client_takes_ticket()) {
      state.SkipWithError("no new ticket");
      break;
    }
    SslSession* next = GetSession(link.client);
    if (next == nullptr) {
      state.SkipWithError("new ticket not resumable");
      break;
    }
    FreeSession(session);
    session = next;
  }
  if (link.client != nullptr) state.SetLabel(Negotiated(link.client));
  FreeSession(session);
}

std::string LibraryFile() {
  Dl_info info;
  if (dladdr(LibSymbol(), &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  LibInit();
  (void)Pki();
  benchmark::AddCustomContext("tls_peer", SHARDRING_PEER_NAME);
  benchmark::AddCustomContext("tls_library", LibDescription());
  benchmark::AddCustomContext("tls_library_file", LibraryFile());
  for (const Suite& suite : kSuites) {
    for (size_t record : {size_t{1024}, size_t{16384}}) {
      const std::string tail =
          std::string("/") + suite.label + "/" + std::to_string(record / 1024) + "KiB";
      benchmark::RegisterBenchmark(
          ("decrypt" + tail).c_str(),
          [&suite, record](benchmark::State& st) { BM_Decrypt(st, suite, record); });
      benchmark::RegisterBenchmark(
          ("encrypt" + tail).c_str(),
          [&suite, record](benchmark::State& st) { BM_Encrypt(st, suite, record); });
    }
  }
  benchmark::RegisterBenchmark("handshake/full", BM_FullHandshake)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("handshake/resumed", BM_ResumedHandshake)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
