// redis/resp.cc: see resp.h.
#include "redis/resp.h"

#include <algorithm>
#include <cassert>
#include <charconv>

namespace shardring::redis {

std::string_view Reply::error_code() const noexcept {
  if (type != Type::kError) return {};
  std::string_view s = str;
  return s.substr(0, s.find(' '));
}

std::string Reply::debug_string() const {
  std::string out;
  switch (type) {
    case Type::kStatus:
      out = str;
      break;
    case Type::kError:
      out = "(error) " + str;
      break;
    case Type::kInteger:
      out = "(integer) " + std::to_string(integer);
      break;
    case Type::kBulk:
      out = "\"" + str + "\"";
      break;
    case Type::kNil:
      out = "(nil)";
      break;
    case Type::kArray:
      out = "[";
      for (size_t i = 0; i < elements.size() && out.size() < 200; ++i) {
        if (i) out += ", ";
        out += elements[i].debug_string();
      }
      out += "]";
      break;
  }
  if (out.size() > 200) out = out.substr(0, 197) + "...";
  return out;
}

bool parse_int(std::string_view s, int64_t* out) noexcept {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+') return false;  // from_chars takes no '+'; RESP never sends one
  auto [p, ec] = std::from_chars(b, e, *out);
  return ec == std::errc() && p == e;
}

CommandWriter::~CommandWriter() { assert(pending_ == 0 && "CommandWriter: arguments missing"); }

void CommandWriter::begin(size_t argc) {
  assert(pending_ == 0 && "CommandWriter: arguments missing");
  out_ += '*';
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, argc);
  out_.append(tmp, r.ptr);
  out_ += "\r\n";
  pending_ = argc;
  ++commands_;
}

void CommandWriter::arg(std::string_view a) {
  assert(pending_ > 0 && "CommandWriter: more arguments than begin() said");
  --pending_;
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, a.size());
  out_ += '$';
  out_.append(tmp, r.ptr);
  out_ += "\r\n";
  out_ += a;
  out_ += "\r\n";
}

void CommandWriter::arg(uint64_t v) {
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  arg(std::string_view(tmp, r.ptr - tmp));
}

void CommandWriter::arg(int64_t v) {
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  arg(std::string_view(tmp, r.ptr - tmp));
}

void CommandWriter::command(std::initializer_list<std::string_view> args) {
  begin(args.size());
  for (std::string_view a : args) arg(a);
}

void ReplyReader::feed(std::string_view bytes) {
  // Drop what was consumed before growing, so the buffer stays the size of
  // the replies in flight.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

void ReplyReader::clear() {
  buf_.clear();
  pos_ = 0;
  failed_ = false;
  error_.clear();
}

ReplyReader::Result ReplyReader::next(Reply* out, std::string* error) {
  if (!failed_) {
    size_t pos = pos_;
    Reply r;
    if (parse(pos, &r, 0)) {
      pos_ = pos;
      *out = std::move(r);
      return Result::kReply;
    }
    if (!failed_) return Result::kNeedMore;
  }
  if (error) *error = error_;
  return Result::kProtocolError;
}

bool ReplyReader::line(size_t& pos, std::string_view* out) {
  size_t nl = buf_.find("\r\n", pos);
  if (nl == std::string::npos) {
    if (buf_.size() - pos > kMaxLineBytes) {
      failed_ = true;
      error_ = "reply line longer than " + std::to_string(kMaxLineBytes) + " bytes";
    }
    return false;
  }
  if (nl - pos > kMaxLineBytes) {
    failed_ = true;
    error_ = "reply line longer than " + std::to_string(kMaxLineBytes) + " bytes";
    return false;
  }
  *out = std::string_view(buf_).substr(pos, nl - pos);
  pos = nl + 2;
  return true;
}

bool ReplyReader::parse(size_t& pos, Reply* out, int depth) {
  if (pos >= buf_.size()) return false;
  if (depth > kMaxDepth) {
    failed_ = true;
    error_ = "reply nested deeper than " + std::to_string(kMaxDepth);
    return false;
  }
  const char kind = buf_[pos];
  size_t p = pos + 1;
  std::string_view l;
  if (!line(p, &l)) return false;
  auto fail = [&](std::string what) {
    failed_ = true;
    error_ = std::move(what);
    return false;
  };
  switch (kind) {
    case '+':
      out->type = Reply::Type::kStatus;
      out->str.assign(l);
      break;
    case '-':
      out->type = Reply::Type::kError;
      out->str.assign(l);
      break;
    case ':':
      out->type = Reply::Type::kInteger;
      if (!parse_int(l, &out->integer)) return fail("bad integer reply");
      break;
    case '$': {
      int64_t n = 0;
      if (!parse_int(l, &n) || n < -1) return fail("bad bulk length");
      if (n == -1) {
        out->type = Reply::Type::kNil;
        break;
      }
      if (n > kMaxBulkBytes) {
        return fail("bulk reply of " + std::to_string(n) + " bytes, over the limit of " +
                    std::to_string(kMaxBulkBytes));
      }
      const size_t need = static_cast<size_t>(n) + 2;
      if (buf_.size() - p < need) return false;
      if (buf_[p + n] != '\r' || buf_[p + n + 1] != '\n')
        return fail("bulk reply not ended by CRLF");
      out->type = Reply::Type::kBulk;
      out->str.assign(buf_, p, static_cast<size_t>(n));
      p += need;
      break;
    }
    case '*': {
      int64_t n = 0;
      if (!parse_int(l, &n) || n < -1) return fail("bad array length");
      if (n == -1) {
        out->type = Reply::Type::kNil;
        break;
      }
      if (n > kMaxArrayElements) {
        return fail("array reply of " + std::to_string(n) + " elements, over the limit of " +
                    std::to_string(kMaxArrayElements));
      }
      out->type = Reply::Type::kArray;
      out->elements.clear();
      // Each element takes at least 3 bytes: never reserve more than the
      // bytes at hand could hold.
      out->elements.reserve(std::min<size_t>(n, (buf_.size() - p) / 3 + 1));
      for (int64_t i = 0; i < n; ++i) {
        Reply e;
        if (!parse(p, &e, depth + 1)) return false;
        out->elements.push_back(std::move(e));
      }
      break;
    }
    default:
      return fail(std::string("unknown reply type byte 0x") + "0123456789abcdef"[(kind >> 4) & 15] +
                  "0123456789abcdef"[kind & 15]);
  }
  pos = p;
  return true;
}

}  // namespace shardring::redis
