// One io_context per io thread, each run by that thread alone; accepted connections are dealt
// round-robin to them, and a connection's coroutine stays on its context (no strand, no shared
// scheduler lock: on the read-by-id profile the strand and executor dispatch were a visible share
// of a request). The handler is synchronous (store calls block the io thread), so a slow query
// delays the other connections of its thread, not the server. Nothing throws across a coroutine:
// completions are read with as_tuple.
#include "kakehashi/gateway/server.hpp"

#include "gzip.hpp"
#include "handler_util.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace kakehashi::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

bool AcceptsGzip(std::string_view accept_encoding) {
  // "gzip", "gzip;q=0.5", "deflate, gzip"; "gzip;q=0" refuses it (RFC 7231 §5.3.4).
  auto pos = accept_encoding.find("gzip");
  if (pos == std::string_view::npos) return false;
  std::string_view rest = accept_encoding.substr(pos + 4);
  auto comma = rest.find(',');
  rest = rest.substr(0, comma);
  auto q = rest.find("q=");
  if (q == std::string_view::npos) return true;
  std::string_view v = rest.substr(q + 2);
  return !(v == "0" || v.starts_with("0.0") || v == "0." || v.starts_with("0 "));
}

struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  std::atomic<bool> idle{true};  // waiting for the next request: may be cancelled on shutdown
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  const Handler* handler = nullptr;
  ServerOptions options;
  asio::io_context ioc{1};  // context 0: acceptor, signals, shutdown timer and its connections
  // Contexts 1..n-1 (created by Run) and work guards that keep idle contexts running until the
  // server has finished.
  std::vector<std::unique_ptr<asio::io_context>> extra;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::atomic<bool> finished{false};
  std::size_t next_context = 0;  // round-robin, used by the accept loop only
  tcp::acceptor acceptor{ioc};
  asio::signal_set signals{ioc};
  asio::steady_timer grace{ioc};
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::set<std::shared_ptr<Connection>> connections;
  unsigned short port = 0;

  explicit Impl(ServerOptions o) : options(std::move(o)) {}

  asio::io_context& NextContext() {
    const std::size_t n = extra.size() + 1;
    const std::size_t k = next_context++ % n;
    return k == 0 ? ioc : *extra[k - 1];
  }

  void StopAll() {
    ioc.stop();
    for (auto& c : extra) c->stop();
  }

  Response Dispatch(const http::request<http::string_body>& req) const {
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& field : req) {
      r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    r.body = req.body();
    try {
      return handler->Handle(r);
    } catch (const std::exception&) {
      // Exceptions mean a bug (STYLE: errors are values); answer 500 instead of dropping the
      // connection, and keep serving.
      detail::Failure f;
      f.status = 500;
      f.code = "exception";
      f.diagnostics = "internal error";
      return detail::FailureResponse(f);
    }
  }

  static http::response<http::string_body> ToBeast(Response&& resp, unsigned version, bool gzip,
                                                   std::size_t gzip_min) {
    http::response<http::string_body> res{static_cast<http::status>(resp.status), version};
    res.set(http::field::server, "kakehashi");
    for (auto& [k, v] : resp.headers) res.set(k, v);
    if (gzip && resp.body.size() >= gzip_min) {
      std::string compressed;
      if (detail::GzipCompress(resp.body, compressed)) {
        resp.body = std::move(compressed);
        res.set(http::field::content_encoding, "gzip");
      }
    }
    if (gzip) res.set(http::field::vary, "Accept-Encoding");
    res.body() = std::move(resp.body);
    res.prepare_payload();
    return res;
  }

  static http::response<http::string_body> ErrorReply(int status, std::string_view code,
                                                      std::string diagnostics) {
    detail::Failure f;
    f.status = status;
    f.code = std::string(code);
    f.diagnostics = std::move(diagnostics);
    Response r = detail::FailureResponse(f);
    auto res = ToBeast(std::move(r), 11, false, 0);
    res.keep_alive(false);
    return res;
  }

  asio::awaitable<void> Serve(std::shared_ptr<Connection> conn) {
    beast::flat_buffer buffer;
    int served = 0;
    while (!stopping.load()) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(options.body_limit);
      conn->idle = true;
      conn->stream.expires_after(served == 0 ? options.read_timeout : options.idle_timeout);
      // Read the header first: the request timeout starts at the first byte of a request.
      auto [hec, hn] = co_await http::async_read_header(conn->stream, buffer, parser, kNoThrow);
      conn->idle = false;
      if (!hec && !parser.is_done()) {
        conn->stream.expires_after(options.read_timeout);
        auto [bec, bn] = co_await http::async_read(conn->stream, buffer, parser, kNoThrow);
        hec = bec;
      }
      if (hec) {
        if (hec == http::error::end_of_stream || hec == asio::error::operation_aborted ||
            hec == beast::error::timeout || hec == asio::error::connection_reset ||
            hec == asio::error::eof) {
          break;
        }
        int status = 400;
        std::string text = "malformed HTTP request";
        if (hec == http::error::body_limit) {
          status = 413;
          text = "request body exceeds the configured limit";
        } else if (hec == http::error::header_limit) {
          status = 431;
          text = "request header exceeds the configured limit";
        }
        auto res = ErrorReply(status, status == 400 ? "structure" : "too-costly", text);
        conn->stream.expires_after(options.write_timeout);
        co_await http::async_write(conn->stream, res, kNoThrow);
        break;
      }
      auto req = parser.release();
      const bool gzip = AcceptsGzip(req[http::field::accept_encoding]);
      auto res = ToBeast(Dispatch(req), req.version(), gzip, options.gzip_min_bytes);
      ++served;
      const bool keep =
          req.keep_alive() && !stopping.load() && served < options.max_requests_per_connection;
      res.keep_alive(keep);
      conn->stream.expires_after(options.write_timeout);
      auto [wec, wn] = co_await http::async_write(conn->stream, res, kNoThrow);
      if (wec || !keep) break;
    }
    beast::error_code ignored;
    conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn->stream.close();
    Forget(conn);
  }

  void Forget(const std::shared_ptr<Connection>& conn) {
    std::lock_guard lock(mutex);
    connections.erase(conn);
    if (stopping.load() && connections.empty()) Finish();
  }

  // Everything done: let every io_context::run return.
  void Finish() {
    if (finished.exchange(true)) return;
    asio::post(ioc, [self = shared_from_this()] {
      for (auto& g : self->guards) g.reset();
      beast::error_code ignored;
      self->grace.cancel();
      self->signals.cancel(ignored);
    });
  }

  asio::awaitable<void> Accept() {
    while (!stopping.load()) {
      auto [ec, socket] = co_await acceptor.async_accept(NextContext(), kNoThrow);
      if (ec) {
        if (stopping.load() || ec == asio::error::operation_aborted) break;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto conn = std::make_shared<Connection>(std::move(socket));
      {
        std::lock_guard lock(mutex);
        connections.insert(conn);
      }
      auto executor = conn->stream.get_executor();
      asio::co_spawn(executor, Serve(conn), asio::detached);
    }
  }

  void BeginStop() {
    if (stopping.exchange(true)) return;
    asio::post(ioc, [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor.close(ignored);
      std::vector<std::shared_ptr<Connection>> idle;
      {
        std::lock_guard lock(self->mutex);
        for (const auto& c : self->connections) {
          if (c->idle.load()) idle.push_back(c);
        }
        if (self->connections.empty()) self->Finish();
      }
      // Idle keep-alive connections are closed now; busy ones finish their request.
      for (auto& c : idle) {
        asio::post(c->stream.get_executor(), [c] { c->stream.cancel(); });
      }
      self->grace.expires_after(self->options.shutdown_grace);
      self->grace.async_wait([self](beast::error_code ec) {
        if (!ec) self->StopAll();  // deadline passed: drop what is left
      });
    });
  }
};

Server::Server(ServerOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

Server::~Server() = default;

Result<void> Server::Listen() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return ec;
  tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  impl_->acceptor.bind(endpoint, ec);
  if (ec) return ec;
  impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  impl_->port = impl_->acceptor.local_endpoint().port();
  return {};
}

unsigned short Server::Port() const {
  return impl_->port;
}

void Server::Run(const Handler& handler) {
  auto impl = impl_;
  impl->handler = &handler;
  if (impl->options.handle_signals) {
    impl->signals.add(SIGINT);
    impl->signals.add(SIGTERM);
    impl->signals.async_wait([impl](beast::error_code ec, int) {
      if (!ec) impl->BeginStop();
    });
  }
  int n = impl->options.threads > 0
              ? impl->options.threads
              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n; ++i) {
    impl->extra.push_back(std::make_unique<asio::io_context>(1));
    impl->guards.push_back(asio::make_work_guard(*impl->extra.back()));
  }
  asio::co_spawn(impl->ioc, impl->Accept(), asio::detached);
  std::vector<std::thread> threads;
  for (auto& c : impl->extra) threads.emplace_back([ctx = c.get()] { ctx->run(); });
  impl->ioc.run();
  for (auto& g : impl->guards) g.reset();  // ioc ended (e.g. the grace deadline): release all
  for (auto& t : threads) t.join();
}

void Server::Stop() {
  impl_->BeginStop();
}

}  // namespace kakehashi::gateway
