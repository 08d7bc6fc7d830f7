// The HTTP ceiling of this machine for docs/performance.md (Gateway, "Read by id"): a fixed
// ~1 KB response with keep-alive over raw Asio, one coroutine per connection, one io_context per
// thread, no parsing beyond finding the blank line. Not part of the build:
//   g++ -std=c++20 -O2 -DNDEBUG -o /tmp/http_ceiling bench/http_ceiling.cpp -pthread
//   /tmp/http_ceiling PORT [THREADS] & wrk -t2 -c50 -d10s --latency http://127.0.0.1:PORT/
#include <boost/asio.hpp>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
static std::string g_resp;
asio::awaitable<void> Serve(tcp::socket s) {
  std::string buf;
  buf.resize(16384);
  size_t have = 0;
  std::string out;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf.data() + have, buf.size() - have),
                                              asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    have += n;
    size_t pos = 0;
    out.clear();
    for (;;) {
      std::string_view v(buf.data() + pos, have - pos);
      auto e = v.find("\r\n\r\n");
      if (e == std::string_view::npos) break;
      pos += e + 4;
      out += g_resp;
    }
    std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
    if (!out.empty()) {
      auto [wec, wn] =
          co_await asio::async_write(s, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
    }
  }
}
int main(int argc, char** argv) {
  int port = std::atoi(argv[1]);
  int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  std::string body(1000, 'x');
  body[0] = '{';
  body.back() = '}';
  g_resp =
      "HTTP/1.1 200 OK\r\nServer: kakehashi\r\nContent-Type: application/fhir+json; "
      "charset=utf-8\r\nETag: W/\"1\"\r\nLast-Modified: Mon, 30 Nov 2026 10:00:00 "
      "GMT\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<std::unique_ptr<asio::io_context>> ctx;
  for (int i = 0; i < threads; ++i) ctx.push_back(std::make_unique<asio::io_context>(1));
  tcp::acceptor acc(*ctx[0], tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  size_t next = 0;
  asio::co_spawn(
      *ctx[0],
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto& c = *ctx[next++ % ctx.size()];
          tcp::socket s = co_await acc.async_accept(c, asio::use_awaitable);
          s.set_option(tcp::no_delay(true));
          asio::co_spawn(c, Serve(std::move(s)), asio::detached);
        }
      },
      asio::detached);
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> g;
  for (auto& c : ctx) g.push_back(asio::make_work_guard(*c));
  std::vector<std::thread> t;
  for (int i = 1; i < threads; ++i) t.emplace_back([&, i] { ctx[i]->run(); });
  ctx[0]->run();
}
