// bench/peers/beast_client.cc: what a C++ developer would write without
// shardring: a plain, idiomatic Boost.Beast + Boost.Asio gateway client
// (websocket::stream<beast::tcp_stream>, or over beast::ssl_stream with
// asio::ssl/OpenSSL for wss://), ONE io_context thread, N connections, an
// async_read loop per connection, every message parsed in full with
// simdjson's DOM parser (one shared parser: one thread), each op 0 dispatch
// counted (its seq kept). On HELLO (op 10): a steady_timer heartbeat (op 1
// with the last seq every heartbeat_interval) and IDENTIFY (op 2; paced: one
// per bucket shard % 16 every 5 ms, as compare.sh runs shardring); op 1 from
// the gateway gets a heartbeat at once; op 9 an IDENTIFY again after 1 s.
// Outgoing messages go through a per-connection queue (Beast allows one
// async_write at a time). Runs SECONDS after the first connection opens,
// then prints one JSON line:
// {"client":"beast","events":N,"cpu_s":S,"seconds":T,"peak_rss_kib":K}
//   beast_client HOST PORT SHARDS SECONDS [tls CAFILE]
// Part of bench/peers/compare.sh; not a shardring component.
#include <sys/resource.h>

#include <simdjson.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Run {
  net::io_context ioc{1};
  tcp::endpoint endpoint;
  std::string host;       // for the Host header and certificate check
  std::string host_port;  // Host header
  int shards = 1;
  double seconds = 10;
  std::optional<ssl::context> tls;
  simdjson::dom::parser parser;  // shared: one thread
  std::uint64_t events = 0;
  std::uint64_t errors = 0;
  bool started = false;
  Clock::time_point first_open;
  rusage ru0{};
  net::steady_timer end{ioc};
  // Identify pacing as compare.sh gives shardring (--max-concurrency 16
  // --identify-window-ms 5): one identify per bucket (shard % 16) every 5 ms.
  static constexpr int kBuckets = 16;
  Clock::time_point next_identify[kBuckets]{};

  // When shard `id` may identify (now or later); books that slot.
  Clock::time_point identify_slot(int id) {
    auto& next = next_identify[id % kBuckets];
    const auto at = std::max(Clock::now(), next);
    next = at + std::chrono::milliseconds(5);
    return at;
  }

  void fail(int shard, const char* what, const beast::error_code& ec) {
    if (ec == net::error::operation_aborted) return;
    if (errors++ < 3)
      std::fprintf(stderr, "beast: shard %d: %s: %s\n", shard, what, ec.message().c_str());
  }

  void opened() {
    if (started) return;
    started = true;
    first_open = Clock::now();
    end.expires_after(
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
    end.async_wait([this](beast::error_code ec) {
      if (!ec) finish();
    });
  }

  void finish() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto secs = [](const timeval& a, const timeval& b) {
      return double(a.tv_sec - b.tv_sec) + double(a.tv_usec - b.tv_usec) / 1e6;
    };
    double cpu = secs(ru.ru_utime, ru0.ru_utime) + secs(ru.ru_stime, ru0.ru_stime);
    double elapsed = std::chrono::duration<double>(Clock::now() - first_open).count();
    std::printf(
        "{\"client\":\"beast\",\"events\":%llu,\"cpu_s\":%.6f,\"seconds\":%.6f,\"peak_rss_kib\":%"
        "ld}\n",
        static_cast<unsigned long long>(events), cpu, elapsed, ru.ru_maxrss);
    std::fflush(stdout);
    ioc.stop();
  }
};

template <class WsStream>
class Session : public std::enable_shared_from_this<Session<WsStream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<WsStream, websocket::stream<beast::tcp_stream>>;

  Session(Run& run, int id)
      : run_(run), id_(id), ws_(make_stream(run)), heartbeat_(run.ioc), reidentify_(run.ioc) {}

  void start() {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(60));
    beast::get_lowest_layer(ws_).async_connect(
        run_.endpoint, beast::bind_front_handler(&Session::on_connect, this->shared_from_this()));
  }

 private:
  static WsStream make_stream(Run& run) {
    if constexpr (kTls) {
      return WsStream(run.ioc, *run.tls);
    } else {
      return WsStream(run.ioc);
    }
  }

  void on_connect(beast::error_code ec) {
    if (ec) return run_.fail(id_, "connect", ec);
    if constexpr (kTls) {
      ws_.next_layer().set_verify_mode(ssl::verify_peer);
      ws_.next_layer().set_verify_callback(ssl::host_name_verification(run_.host));
      ws_.next_layer().async_handshake(
          ssl::stream_base::client,
          beast::bind_front_handler(&Session::on_tls_handshake, this->shared_from_this()));
    } else {
      on_tls_handshake({});
    }
  }

  void on_tls_handshake(beast::error_code ec) {
    if (ec) return run_.fail(id_, "tls handshake", ec);
    // The websocket stream has its own timeouts from here on.
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "beast-bench");
    }));
    ws_.async_handshake(
        run_.host_port, "/?v=10&encoding=json",
        beast::bind_front_handler(&Session::on_handshake, this->shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (ec) return run_.fail(id_, "websocket handshake", ec);
    ws_.text(true);
    run_.opened();
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      heartbeat_.cancel();
      reidentify_.cancel();
      return run_.fail(id_, "read", ec);
    }
    handle(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.consume(buffer_.size());
    do_read();
  }

  void handle(const char* data, std::size_t size) {
    simdjson::dom::element msg;
    if (auto err = run_.parser.parse(data, size).get(msg)) {
      std::fprintf(stderr, "beast: shard %d: bad JSON: %s\n", id_, simdjson::error_message(err));
      return;
    }
    std::int64_t op = -1;
    if (msg["op"].get_int64().get(op)) return;
    switch (op) {
      case 0: {
        ++run_.events;
        std::int64_t s;
        if (!msg["s"].get_int64().get(s)) seq_ = s;
        break;
      }
      case 10: {
        double interval_ms = 41250;
        if (msg["d"]["heartbeat_interval"].get_double().get(interval_ms)) interval_ms = 41250;
        interval_ = std::chrono::milliseconds(static_cast<std::int64_t>(interval_ms));
        schedule_heartbeat();
        paced_identify(Clock::now());
        break;
      }
      case 1:
        send_heartbeat();
        break;
      case 9:
        paced_identify(Clock::now() + std::chrono::seconds(1));
        break;
      default:
        break;  // 11: heartbeat ACK
    }
  }

  // IDENTIFY in this shard's bucket's next slot at or after `earliest`.
  void paced_identify(Clock::time_point earliest) {
    if (earliest > Clock::now()) {  // op 9: wait first, then take a slot
      reidentify_.expires_at(earliest);
      reidentify_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
        if (!ec) self->paced_identify(Clock::now());
      });
      return;
    }
    const auto at = run_.identify_slot(id_);
    if (at <= Clock::now()) return identify();
    reidentify_.expires_at(at);
    reidentify_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->identify();
    });
  }

  void schedule_heartbeat() {
    heartbeat_.expires_after(interval_);
    heartbeat_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->send_heartbeat();
      self->schedule_heartbeat();
    });
  }

  void send_heartbeat() {
    send(seq_ < 0 ? std::string(R"({"op":1,"d":null})")
                  : R"({"op":1,"d":)" + std::to_string(seq_) + "}");
  }

  void identify() {
    send(R"({"op":2,"d":{"token":"x","intents":513,"shard":[)" + std::to_string(id_) + "," +
         std::to_string(run_.shards) +
         R"(],"properties":{"os":"linux","browser":"beast-bench","device":"beast-bench"}}})");
  }

  void send(std::string message) {
    queue_.push_back(std::move(message));
    if (queue_.size() == 1) do_write();
  }

  void do_write() {
    ws_.async_write(net::buffer(queue_.front()),
                    beast::bind_front_handler(&Session::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return run_.fail(id_, "write", ec);
    queue_.pop_front();
    if (!queue_.empty()) do_write();
  }

  Run& run_;
  int id_;
  WsStream ws_;
  beast::flat_buffer buffer_;
  net::steady_timer heartbeat_;
  net::steady_timer reidentify_;
  Clock::duration interval_{};
  std::deque<std::string> queue_;
  std::int64_t seq_ = -1;
};

using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || (argc > 5 && (argc != 7 || std::string(argv[5]) != "tls"))) {
    std::fprintf(stderr, "usage: %s HOST PORT SHARDS SECONDS [tls CAFILE]\n", argv[0]);
    return 2;
  }
  Run run;
  run.host = argv[1];
  run.host_port = run.host + ":" + argv[2];
  run.shards = std::atoi(argv[3]);
  run.seconds = std::atof(argv[4]);
  try {
    tcp::resolver resolver(run.ioc);
    run.endpoint = *resolver.resolve(run.host, argv[2]).begin();
    if (argc == 7) {
      run.tls.emplace(ssl::context::tls_client);
      run.tls->load_verify_file(argv[6]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beast: %s\n", e.what());
    return 1;
  }
  getrusage(RUSAGE_SELF, &run.ru0);
  for (int i = 0; i < run.shards; ++i) {
    if (run.tls) {
      std::make_shared<Session<TlsWs>>(run, i)->start();
    } else {
      std::make_shared<Session<PlainWs>>(run, i)->start();
    }
  }
  // No connection at all within a minute: give up.
  net::steady_timer give_up(run.ioc, std::chrono::seconds(60));
  give_up.async_wait([&run](beast::error_code ec) {
    if (!ec && !run.started) {
      std::fprintf(stderr, "beast: no connection opened in 60 s\n");
      std::exit(1);
    }
  });
  run.ioc.run();
  // The figures are out; skip tearing down thousands of connections.
  std::fflush(stdout);
  std::_Exit(run.started ? 0 : 1);
}
