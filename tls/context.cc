// tls/context.cc: building wolfSSL contexts from options.
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
// clang-format on

#include "tls/context.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tls/session.h"
#include "tls/wolfssl_glue.h"

namespace shardring::tls {
namespace {

struct CtxDeleter {
  void operator()(WOLFSSL_CTX* ctx) const noexcept { wolfSSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<WOLFSSL_CTX, CtxDeleter>;

// `what` names the option in messages ("--ca-file", "--tls-key", ...).
absl::Status CheckReadable(const std::string& path, const char* what) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("tls: ", what, ": no file given"));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    const int err = errno;
    std::string msg = absl::StrCat("tls: ", what, " '", path, "': ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  return absl::OkStatus();
}

WOLFSSL_METHOD* Method(Role role, Versions versions) {
  const bool client = role == Role::kClient;
  switch (versions) {
    case Versions::kTls13Only:
      return client ? wolfTLSv1_3_client_method() : wolfTLSv1_3_server_method();
    case Versions::kTls12Only:
      return client ? wolfTLSv1_2_client_method() : wolfTLSv1_2_server_method();
    case Versions::kTls12OrNewer:
      break;
  }
  return client ? wolfSSLv23_client_method() : wolfSSLv23_server_method();
}

absl::Status ApplyCommon(WOLFSSL_CTX* ctx, Versions versions, const std::string& cipher_list) {
  if (versions == Versions::kTls12OrNewer) {
    // Debian's build still speaks TLS 1.0 and 1.1 unless told otherwise.
    if (int ret = wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2); ret != WOLFSSL_SUCCESS) {
      return absl::InternalError(
          absl::StrCat("tls: cannot set minimum version: ", internal::wolfssl_error_text(ret)));
    }
  }
  const std::string list = cipher_list.empty() ? std::string(kDefaultCipherList) : cipher_list;
  if (wolfSSL_CTX_set_cipher_list(ctx, list.c_str()) != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: cipher list '", list, "' names no suite this wolfSSL supports"));
  }
  return absl::OkStatus();
}

}  // namespace

Context::Context(WOLFSSL_CTX* ctx, Role role, Verification verification, std::string alpn) noexcept
    : ctx_(ctx), role_(role), verification_(verification), alpn_(std::move(alpn)) {}

Context::Context(Context&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)),
      role_(other.role_),
      verification_(other.verification_),
      alpn_(std::move(other.alpn_)) {}

Context& Context::operator=(Context&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) wolfSSL_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    role_ = other.role_;
    verification_ = other.verification_;
    alpn_ = std::move(other.alpn_);
  }
  return *this;
}

Context::~Context() {
  // wolfSSL reference-counts the CTX: sessions still alive keep it valid.
  if (ctx_ != nullptr) wolfSSL_CTX_free(ctx_);
}

absl::StatusOr<Context> Context::client(const ClientOptions& options) {
  internal::ensure_wolfssl_initialized();
  CtxPtr ctx(wolfSSL_CTX_new(Method(Role::kClient, options.versions)));
  if (ctx == nullptr) {
    return absl::ResourceExhaustedError("tls: cannot allocate a client context");
  }
  if (absl::Status s = ApplyCommon(ctx.get(), options.versions, options.cipher_list); !s.ok()) {
    return s;
  }
  // TLS 1.2 tickets need asking for; TLS 1.3 tickets always come.
  (void)wolfSSL_CTX_UseSessionTicket(ctx.get());
  // Resumable sessions live in our per-thread SessionCache; wolfSSL's
  // process-wide client cache would only add a global lock per ticket.
  (void)wolfSSL_CTX_set_session_cache_mode(ctx.get(), WOLFSSL_SESS_CACHE_OFF);

  if (options.verification == Verification::kInsecure) {
    wolfSSL_CTX_set_verify(ctx.get(), WOLFSSL_VERIFY_NONE, nullptr);
  } else {
    if (options.system_ca_file.empty() && options.ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls: certificate verification is on but no CA file is configured "
          "(give --ca-file, or --insecure for a local test gateway)");
    }
    if (!options.system_ca_file.empty()) {
      if (absl::Status s = CheckReadable(options.system_ca_file, "system CA bundle"); !s.ok()) {
        return s;
      }
      // Distribution bundles carry a few roots wolfSSL cannot parse (unusual
      // key types); skipping them is what every TLS stack does.
      const int ret = wolfSSL_CTX_load_verify_locations_ex(
          ctx.get(), options.system_ca_file.c_str(), nullptr,
          WOLFSSL_LOAD_FLAG_IGNORE_ERR | WOLFSSL_LOAD_FLAG_PEM_CA_ONLY);
      if (ret != WOLFSSL_SUCCESS) {
        return absl::InvalidArgumentError(
            absl::StrCat("tls: system CA bundle '", options.system_ca_file,
                         "': no usable PEM certificate: ", internal::wolfssl_error_text(ret)));
      }
    }
    if (!options.ca_file.empty()) {
      if (absl::Status s = CheckReadable(options.ca_file, "--ca-file"); !s.ok()) {
        return s;
      }
      const int ret =
          wolfSSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr);
      if (ret != WOLFSSL_SUCCESS) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tls: --ca-file '", options.ca_file,
            "' is not a PEM bundle of CA certificates: ", internal::wolfssl_error_text(ret)));
      }
    }
    // The per-session callback records why a chain was refused; see
    // session.cc. Verification itself is wolfSSL's.
    wolfSSL_CTX_set_verify(ctx.get(), WOLFSSL_VERIFY_PEER, nullptr);
  }
  return Context(ctx.release(), Role::kClient, options.verification, options.alpn);
}

absl::StatusOr<Context> Context::server(const ServerOptions& options) {
  internal::ensure_wolfssl_initialized();
  if (absl::Status s = CheckReadable(options.cert_file, "--tls-cert"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckReadable(options.key_file, "--tls-key"); !s.ok()) {
    return s;
  }
  CtxPtr ctx(wolfSSL_CTX_new(Method(Role::kServer, options.versions)));
  if (ctx == nullptr) {
    return absl::ResourceExhaustedError("tls: cannot allocate a server context");
  }
  if (absl::Status s = ApplyCommon(ctx.get(), options.versions, options.cipher_list); !s.ok()) {
    return s;
  }
  int ret = wolfSSL_CTX_use_certificate_chain_file(ctx.get(), options.cert_file.c_str());
  if (ret != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: --tls-cert '", options.cert_file,
                     "' is not a PEM certificate chain: ", internal::wolfssl_error_text(ret)));
  }
  ret = wolfSSL_CTX_use_PrivateKey_file(ctx.get(), options.key_file.c_str(), WOLFSSL_FILETYPE_PEM);
  if (ret != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: --tls-key '", options.key_file,
        "' is not an unencrypted PEM private key: ", internal::wolfssl_error_text(ret)));
  }
  if (wolfSSL_CTX_check_private_key(ctx.get()) != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: --tls-key '", options.key_file,
                     "' does not match the certificate in --tls-cert '", options.cert_file, "'"));
  }
  // Clients never present certificates to the gateway.
  wolfSSL_CTX_set_verify(ctx.get(), WOLFSSL_VERIFY_NONE, nullptr);
  Context server(ctx.release(), Role::kServer, Verification::kInsecure, options.alpn);
  if (absl::Status s = SelfTest(server); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: --tls-cert '", options.cert_file, "' with --tls-key '", options.key_file,
        "' fail a test handshake (does the key match the certificate?): ", s.message()));
  }
  return server;
}

// One handshake in memory against `server`, by a client that checks
// nothing but the proof of key possession (CertificateVerify). Some wolfSSL
// builds (Debian's) accept a key that does not match the certificate in
// wolfSSL_CTX_check_private_key(); every client would then fail.
absl::Status Context::SelfTest(const Context& server) {
  ClientOptions co;
  co.verification = Verification::kInsecure;
  co.alpn.clear();
  absl::StatusOr<Context> client_ctx = Context::client(co);
  if (!client_ctx.ok()) return client_ctx.status();
  absl::StatusOr<Session> client = Session::client(*client_ctx, "localhost");
  if (!client.ok()) return client.status();
  absl::StatusOr<Session> peer = Session::server(server);
  if (!peer.ok()) return peer.status();
  std::vector<std::byte> wire;
  Errc c = client->handshake();
  Errc s = Errc::kWantRead;
  for (int round = 0; round < 8 && !is_fatal(c) && !is_fatal(s); ++round) {
    client->take_ciphertext(wire);
    if (Errc e = peer->feed_ciphertext(wire); e != Errc::kOk) s = e;
    if (!is_fatal(s)) s = peer->handshake();
    if (Errc e = peer->retain_ciphertext(); e != Errc::kOk) s = e;
    peer->take_ciphertext(wire);
    if (Errc e = client->feed_ciphertext(wire); e != Errc::kOk) c = e;
    if (!is_fatal(c)) c = client->handshake();
    if (Errc e = client->retain_ciphertext(); e != Errc::kOk) c = e;
    if (c == Errc::kOk && s == Errc::kOk) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(is_fatal(c) ? client->error_detail() : peer->error_detail());
}

}  // namespace shardring::tls
