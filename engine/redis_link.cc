// engine/redis_link.cc: see redis_link.h.
#include "engine/redis_link.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ws/sha1.h"

namespace shardring::engine {

std::string RedisUrl::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat("redis://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port, "/", db);
}

absl::StatusOr<RedisUrl> parse_redis_url(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--redis: ", std::string(why), " (want redis://HOST[:PORT][/DB])"));
  };
  constexpr std::string_view kScheme = "redis://";
  if (text.substr(0, kScheme.size()) != kScheme) return bad("not a redis:// URL");
  std::string_view rest = text.substr(kScheme.size());
  RedisUrl url;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (size_t colon = cred.find(':'); colon != std::string_view::npos) {
      url.user = std::string(cred.substr(0, colon));
      url.password = std::string(cred.substr(colon + 1));
    } else {
      url.password = std::string(cred);
    }
  }
  std::string_view hostport = rest.substr(0, rest.find('/'));
  std::string_view path =
      rest.size() > hostport.size() ? rest.substr(hostport.size() + 1) : std::string_view{};
  std::string_view portpart;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the host");
    url.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after the IPv6 host");
      portpart = after.substr(1);
    }
  } else {
    size_t colon = hostport.find(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) portpart = hostport.substr(colon + 1);
  }
  if (url.host.empty()) return bad("no host");
  if (!portpart.empty() || hostport.ends_with(":")) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(portpart.data(), portpart.data() + portpart.size(), p);
    if (ec != std::errc() || end != portpart.data() + portpart.size() || p == 0 || p > 65535) {
      return bad(absl::StrCat("bad port '", std::string(portpart), "'"));
    }
    url.port = static_cast<uint16_t>(p);
  }
  if (!path.empty()) {
    int db = 0;
    auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc() || end != path.data() + path.size() || db < 0) {
      return bad(absl::StrCat("bad database number '", std::string(path), "'"));
    }
    url.db = db;
  }
  return url;
}

RedisScript::RedisScript(std::string_view text) : source(text) {
  ws::Sha1 h;
  h.update(source);
  auto d = h.final();
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::byte b : d) {
    sha1 += kHex[static_cast<unsigned>(b) >> 4];
    sha1 += kHex[static_cast<unsigned>(b) & 15];
  }
}

RedisLink::RedisLink(RedisUrl url, std::chrono::milliseconds io_timeout)
    : url_(std::move(url)), timeout_(io_timeout) {}

RedisLink::~RedisLink() { close(); }

void RedisLink::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  reader_.clear();
  loaded_.clear();
}

bool RedisLink::fail(std::string* error, const std::string& what) {
  if (error) *error = absl::StrCat(url_.to_string(), ": ", what);
  close();
  return false;
}

bool RedisLink::connect(std::string* error) {
  if (fd_ >= 0) return true;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(url_.port);
  if (int rc = getaddrinfo(url_.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return fail(error, absl::StrCat("cannot resolve: ", gai_strerror(rc)));
  }
  std::string last = "no address";
  for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = strerror(errno);
      ::close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, static_cast<int>(timeout_.count())) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      last = err != 0 ? strerror(err) : "connect timed out";
      ::close(fd);
      continue;
    }
    fd_ = fd;
  }
  freeaddrinfo(res);
  if (fd_ < 0) return fail(error, absl::StrCat("cannot connect: ", last));
  reader_.clear();
  std::string hello;
  redis::CommandWriter w(hello);
  if (!url_.password.empty()) {
    if (url_.user.empty()) {
      w.command({"AUTH", url_.password});
    } else {
      w.command({"AUTH", url_.user, url_.password});
    }
  }
  if (url_.db != 0) w.command({"SELECT", std::to_string(url_.db)});
  if (w.commands() == 0) return true;
  std::vector<redis::Reply> replies;
  if (!send_all(hello, error) || !read_replies(w.commands(), &replies, error)) return false;
  for (const redis::Reply& r : replies) {
    if (r.is_error()) return fail(error, absl::StrCat("AUTH/SELECT refused: ", r.str));
  }
  return true;
}

bool RedisLink::send_all(std::string_view bytes, std::string* error) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd_, POLLOUT, 0};
      int rc = poll(&p, 1, static_cast<int>(timeout_.count()));
      if (rc == 0) return fail(error, "write timed out");
      if (rc < 0 && errno != EINTR) return fail(error, absl::StrCat("poll: ", strerror(errno)));
      continue;
    }
    return fail(error, absl::StrCat("write: ", strerror(errno)));
  }
  return true;
}

bool RedisLink::read_replies(size_t count, std::vector<redis::Reply>* replies, std::string* error) {
  replies->clear();
  replies->reserve(count);
  char buf[64 * 1024];
  std::string why;
  while (replies->size() < count) {
    redis::Reply r;
    switch (reader_.next(&r, &why)) {
      case redis::ReplyReader::Result::kReply:
        replies->push_back(std::move(r));
        continue;
      case redis::ReplyReader::Result::kProtocolError:
        return fail(error, absl::StrCat("protocol error: ", why));
      case redis::ReplyReader::Result::kNeedMore:
        break;
    }
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n == 0) return fail(error, "connection closed by the server");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return fail(error, absl::StrCat("read: ", strerror(errno)));
    pollfd p{fd_, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(timeout_.count()));
    if (rc == 0) return fail(error, "no reply within the I/O timeout");
    if (rc < 0 && errno != EINTR) return fail(error, absl::StrCat("poll: ", strerror(errno)));
  }
  return true;
}

namespace {

std::string LoadCommands(const std::vector<const RedisScript*>& scripts) {
  std::string load;
  redis::CommandWriter w(load);
  for (const RedisScript* s : scripts) w.command({"SCRIPT", "LOAD", s->source});
  return load;
}

}  // namespace

bool RedisLink::exchange(std::string_view commands, size_t count,
                         std::vector<redis::Reply>* replies, std::string* error,
                         const std::vector<const RedisScript*>& scripts) {
  if (!connect(error)) return false;
  std::vector<const RedisScript*> unloaded;
  for (const RedisScript* sc : scripts) {
    if (std::find(loaded_.begin(), loaded_.end(), sc->sha1) == loaded_.end())
      unloaded.push_back(sc);
  }
  if (!unloaded.empty()) {
    // Scripts not loaded on this connection yet (a new one: perhaps a
    // restarted server) are loaded in the same round trip, ahead of the
    // batch: a batch that hits NOSCRIPT costs Redis a pass over it for
    // nothing.
    std::string load = LoadCommands(unloaded);
    std::vector<redis::Reply> loaded;
    if (!send_all(load, error) || !send_all(commands, error) ||
        !read_replies(unloaded.size(), &loaded, error)) {
      return false;
    }
    if (!read_replies(count, replies, error)) return false;
    for (const redis::Reply& r : loaded) {
      if (r.is_error()) return fail(error, absl::StrCat("SCRIPT LOAD refused: ", r.str));
    }
    for (const RedisScript* sc : unloaded) loaded_.push_back(sc->sha1);
    return true;
  }
  if (!send_all(commands, error) || !read_replies(count, replies, error)) return false;
  if (scripts.empty()) return true;
  bool missing = false;
  for (const redis::Reply& r : *replies) {
    missing |= r.error_code() == "NOSCRIPT";
    // Inside MULTI/EXEC the script's error is one of EXEC's elements.
    for (const redis::Reply& e : r.elements) missing |= e.error_code() == "NOSCRIPT";
  }
  if (!missing) return true;
  // The server lost its scripts (a restart, SCRIPT FLUSH): the batch did
  // nothing where it says NOSCRIPT; load them and send it all again (the
  // scripts are written so the parts that did run change nothing twice).
  std::string load = LoadCommands(scripts);
  std::vector<redis::Reply> loaded;
  if (!send_all(load, error) || !read_replies(scripts.size(), &loaded, error)) return false;
  for (const redis::Reply& r : loaded) {
    if (r.is_error()) return fail(error, absl::StrCat("SCRIPT LOAD refused: ", r.str));
  }
  return send_all(commands, error) && read_replies(count, replies, error);
}

bool RedisLink::call(std::initializer_list<std::string_view> args, redis::Reply* reply,
                     std::string* error) {
  std::string cmd;
  redis::CommandWriter(cmd).command(args);
  std::vector<redis::Reply> replies;
  if (!exchange(cmd, 1, &replies, error)) return false;
  *reply = std::move(replies[0]);
  return true;
}

}  // namespace shardring::engine
