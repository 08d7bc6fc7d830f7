// The HTTP/1.1 server in front of Handler: Boost.Asio/Beast, one C++20 coroutine per connection
// (read a request, Handle it, write the response), N io threads, M reader threads for the
// requests that read the store (docs/decisions/0027-gateway-reader-pool.md).
//
// Protection: read/write timeouts (slow clients cannot hold a connection), a header and a body
// limit (413/431 answers), a cap on requests per connection, malformed HTTP answered with 400
// and the connection closed. Responses are gzip-compressed when the client accepts gzip and the
// body is large enough. Stop() (or SIGINT/SIGTERM when handle_signals) marks the handler's
// health draining, serves on for drain_delay, then stops accepting, lets in-flight requests
// finish for up to shutdown_grace, then closes everything; queued writes are committed before
// Run() returns.
//
// Thread-safety: Stop() may be called from any thread; Run() blocks the calling thread.
#pragma once

#include "kakehashi/common/result.hpp"
#include "kakehashi/gateway/handler.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace kakehashi::gateway {

struct ServerOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;  // 0: any free port (see Server::Port())
  int threads = 0;             // io threads; 0: DefaultIoThreads() (one per core)
  // Reader threads: the requests that read the store (a read by id the read cache cannot
  // answer, vread, search, history, $everything, operations; and writes when commit_queue is
  // 0) run there, so that an io thread never blocks on the store; cached reads by id stay on
  // the io thread. 0: hardware concurrency, at least 2.
  int read_threads = 0;
  // A read by id the read cache misses is first tried on the io thread with the store's read
  // that never waits (Handler::TryReadCurrent: on SQLite, when its pages are in memory and no
  // lock is held elsewhere); only what that cannot answer goes to a reader thread (decision
  // 0051). false (the default): every miss goes to a reader thread (decision 0027's hand-off);
  // with it on, wrk's p99 rose above 5 ms in every quiet run at the session-13 close.
  bool io_thread_reads = false;
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 32 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{30000};  // whole request, from its first byte
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{30000};
  int max_requests_per_connection = 100000;  // pipelining/keep-alive cap, then Connection: close
  // Open connections at most; at the cap the server stops accepting until one closes (the
  // kernel's listen backlog holds new ones meanwhile). 0: DefaultMaxConnections().
  int max_connections = 0;
  std::size_t gzip_min_bytes = 1024;
  std::chrono::milliseconds shutdown_grace{10000};
  // A graceful shutdown (Stop(), SIGINT/SIGTERM) first drains: the handler's Health is marked
  // draining at once (/health/ready answers 503, decision 0054) and everything is still served
  // for this long, so that a load balancer polling readiness takes the gateway out of rotation
  // before it stops accepting connections; a second Stop() or signal ends the wait. 0: stop
  // accepting at once (readiness is 503 for the requests still in flight).
  std::chrono::milliseconds drain_delay{0};
  bool handle_signals = false;  // SIGINT/SIGTERM call Stop()
  // Group commit (commit_queue.hpp): write requests are prepared on the io thread and applied
  // by one commit thread, several per store transaction, while the io coroutine waits without
  // blocking its thread. At most `commit_queue` requests wait (more are answered 503 with
  // Retry-After); 0: each write runs in its own transaction on its io thread.
  std::size_t commit_queue = 1024;
  std::size_t commit_group = 64;  // requests per transaction at most
};

// Counters of the accept loop (for tests and monitoring; read at any time).
struct ServerStats {
  std::uint64_t accept_failures = 0;  // accept() errors (out of descriptors, aborted, ...)
  // Waits of up to 100 ms after an accept() failed for lack of descriptors or memory (EMFILE,
  // ENFILE, ENOBUFS, ENOMEM), instead of retrying at once.
  std::uint64_t accept_pauses = 0;
  // Read-cache misses of reads by id answered on the io thread (ServerOptions::io_thread_reads),
  // and those tried there and then sent to a reader thread.
  std::uint64_t io_thread_reads = 0;
  std::uint64_t io_thread_read_fallbacks = 0;
  // Connection reads queued to wait for readiness without a recv tried first (the reactor had
  // seen no readiness since the last read drained the socket: no recv that fails with EAGAIN),
  // and reads whose bytes were already there. Both stay 0 where the Asio reactor's read flag is
  // not reachable (server.cpp, read_readiness.hpp): reads then start as Asio starts them.
  std::uint64_t reads_without_try = 0;
  std::uint64_t reads_at_once = 0;
};

// The thread counts ServerOptions' zeros stand for on this host.
int DefaultIoThreads();
int DefaultReadThreads();
// The soft RLIMIT_NOFILE less 128 descriptors kept for the store and the process, between 16
// and 4096.
int DefaultMaxConnections();

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. Errors: the OS error (address in use, permission denied, bad host).
  Result<void> Listen();
  unsigned short Port() const;  // the bound port, after Listen()

  // Serves `handler` until Stop(); returns after the graceful shutdown. Listen() first (so the
  // bound port can go into the handler's base URL).
  void Run(const Handler& handler);
  void Stop();
  ServerStats Stats() const;  // any thread

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kakehashi::gateway
