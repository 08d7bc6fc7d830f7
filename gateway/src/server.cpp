// One io_context per io thread, each run by that thread alone; accepted connections are dealt
// round-robin to them, and a connection's coroutine stays on its context (no strand, no shared
// scheduler lock). An io thread never waits for the store (decision 0027):
// - a read by id the read cache answers is answered on the io thread (no hop);
// - every other request that reads the store (a cache miss, vread, search, history,
//   $everything, operations) runs on a reader thread (ReaderPool; each has its own SQLite
//   reader connection, or takes a pooled session), and the coroutine is resumed on its own io
//   thread with the response (posted), so a slow search delays no other connection;
// - writes are prepared on the io thread and handed to the commit queue (group commit,
//   commit_queue.hpp; with commit_queue 0 they run on a reader thread); the coroutine waits for
//   its group's commit without blocking the thread (with 50 connections, many writes are in
//   flight and commit together). A Bundle is prepared, and answered after its commit, on a
//   reader thread: its GET entries read the store. A write with a body of 16 KiB or more is
//   prepared on a reader thread too (parsing and validating it would hold the io thread).
// The coroutine handles one request at a time, so a connection's answers keep their order, and
// its socket and buffers are touched only by its io thread (the reader thread sees the request,
// not the socket). Nothing throws across a coroutine: completions are read with as_tuple.
//
// Per request the loop does as little as it can (read by id was bound by this layer, not by the
// store: docs/performance.md, Gateway):
// - the head is parsed in place from the connection's read buffer (http_head.hpp), no
//   allocation per header field; only requests with a body go through Beast's parser, fed from
//   the same buffer (Beast owns Content-Length/chunked body framing);
// - `GET|HEAD [base]/Type/id` is answered from Handler::ReadCurrent (the read cache: no store
//   session, no Request/Response, pre-rendered ETag and Last-Modified, gzip computed once);
// - responses are serialised straight into one output buffer; pipelined requests already in
//   the read buffer are answered together in one write;
// - timeouts are a deadline per connection checked by one timer per io_context (a few ticks a
//   second), instead of arming a timer around every read and write.
#include "kakehashi/gateway/server.hpp"

#include "kakehashi/common/log.hpp"
#include "kakehashi/gateway/commit_queue.hpp"
#include "kakehashi/gateway/health.hpp"

#include "gzip.hpp"
#include "handler_util.hpp"
#include "http_head.hpp"
#include "read_cache.hpp"
#include "read_readiness.hpp"
#include "reader_pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace kakehashi::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

using namespace std::string_view_literals;  // appends of literals without strlen

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kInitialBuffer = 8 * 1024;
constexpr std::size_t kFlushAt = 64 * 1024;  // pipelined responses gathered up to this size
// A write request with at least this much body is prepared on a reader thread, not on its io
// thread (Server::Impl::Answer; docs/performance.md "Large write bodies off the io threads").
constexpr std::size_t kPrepareOnReaderBytes = 16 * 1024;

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

// If-None-Match: W/"3" or "3" naming `version` (R4 §3.1.0.8.2; as the handler's read).
bool MatchesVersion(std::string_view value, std::int64_t version) {
  if (value.starts_with("W/")) value.remove_prefix(2);
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  return ec == std::errc() && ptr == value.data() + value.size() && v == version;
}

std::string_view Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

bool HasNoBody(int status) {
  return status == 204 || status == 304 || (status >= 100 && status < 200);
}

// Serialises one response into `out` (RFC 9112 §4, §6). `body` is what a GET would send;
// `head_only` (HEAD) sends its Content-Length without it.
class ResponseWriter {
 public:
  explicit ResponseWriter(std::string& out) : out_(out) {}
  void Status(int status) {
    status_ = status;
    if (status == 200) {
      out_ += "HTTP/1.1 200 OK\r\nServer: kakehashi\r\n"sv;
      return;
    }
    out_ += "HTTP/1.1 "sv;
    char digits[8];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, status);
    out_.append(digits, end);
    out_ += ' ';
    out_ += Reason(status);
    out_ += "\r\nServer: kakehashi\r\n"sv;
  }
  void Field(std::string_view name, std::string_view value) {
    // Values come from the handler; a CR or LF would split the head (never sent).
    if (name.find_first_of("\r\n:") != std::string_view::npos ||
        value.find_first_of("\r\n") != std::string_view::npos) {
      return;
    }
    out_ += name;
    out_ += ": "sv;
    out_ += value;
    out_ += "\r\n"sv;
  }
  // Header lines rendered by the read cache (CachedResource::Fields200), CRLF-terminated.
  void PreRendered(std::string_view lines) { out_ += lines; }
  void Finish(std::string_view body, bool head_only, bool keep_alive, int minor_version) {
    if (!HasNoBody(status_)) {
      out_ += "Content-Length: "sv;
      char digits[24];
      auto [end, ec] = std::to_chars(digits, digits + sizeof digits, body.size());
      out_.append(digits, end);
      out_ += "\r\n"sv;
    }
    if (!keep_alive) {
      out_ += "Connection: close\r\n"sv;
    } else if (minor_version == 0) {
      out_ += "Connection: keep-alive\r\n"sv;
    }
    out_ += "\r\n"sv;
    if (!head_only && !HasNoBody(status_)) out_ += body;
  }

 private:
  std::string& out_;
  int status_ = 200;
};

// A descriptor closed with its owner unless handed on (fd set to -1).
struct OwnedFd {
  int fd = -1;
  OwnedFd() = default;
  OwnedFd(OwnedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
};

struct Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  // Only the connection's own io thread touches these two.
  Clock::time_point deadline = Clock::time_point::max();
  std::size_t slot = 0;          // index in Context::live
  std::atomic<bool> idle{true};  // waiting for the next request: cancelled on shutdown
};

// An io_context with the connections it runs and the timer that enforces their deadlines.
// Declaration order matters: `live` outlives the context, whose destruction may destroy
// suspended coroutines that unregister themselves.
//
// Run by one thread, and the reactor state of its sockets is only ever touched by that thread
// (Accept hands a connection over as a descriptor that this thread registers; cancellations
// from elsewhere are posted): so the context runs without Asio's per-descriptor locks
// (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO). Its scheduler and timer/registration locks stay,
// since other threads post to it (commit completions, shutdown, hand-overs).
struct Context {
  std::vector<Connection*> live;
  // Reads of its connections (ServerStats), written by its thread only (no locked add).
  std::atomic<std::uint64_t> reads_without_try{0};
  std::atomic<std::uint64_t> reads_at_once{0};
  static void Count(std::atomic<std::uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::steady_timer sweep{ioc};
};

// Registers a connection in its context's `live` list for the coroutine's lifetime.
class LiveGuard {
 public:
  LiveGuard(Context& ctx, Connection& conn) : ctx_(ctx), conn_(conn) {
    conn.slot = ctx.live.size();
    ctx.live.push_back(&conn);
  }
  ~LiveGuard() {
    Connection* last = ctx_.live.back();
    ctx_.live[conn_.slot] = last;
    last->slot = conn_.slot;
    ctx_.live.pop_back();
  }
  LiveGuard(const LiveGuard&) = delete;
  LiveGuard& operator=(const LiveGuard&) = delete;

 private:
  Context& ctx_;
  Connection& conn_;
};

// A write waiting for its group's commit: Done() (commit thread) posts the waiting coroutine's
// resumption to its io_context.
struct ServerJob final : CommitJob {
  using CommitJob::CommitJob;
  std::function<void()> wake;  // one-shot; set before Submit
  void Done() noexcept override {
    auto w = std::move(wake);
    wake = nullptr;
    if (w) w();
  }
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  const Handler* handler = nullptr;
  ServerOptions options;
  // contexts[0] also runs the acceptor, the signals and the shutdown timer.
  std::vector<std::unique_ptr<Context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::atomic<bool> finished{false};
  std::size_t next_context = 0;  // round-robin, used by the accept loop only
  bool accept_starved = false;   // accept loop only: in an out-of-descriptors episode (logged)
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::steady_timer> grace;
  std::unique_ptr<asio::steady_timer> drain;  // ServerOptions::drain_delay
  std::atomic<bool> draining{false};
  std::atomic<Health*> health{nullptr};  // the handler's, set by Run (Stop may run on any thread)
  // The accept loop waits on it while `connections` is at max_connections, and after an accept
  // failed for lack of descriptors (AcceptBackoff); Forget cancels it (context 0).
  std::unique_ptr<asio::steady_timer> slot_free;
  std::size_t max_connections = 0;
  bool accept_waiting = false;  // under `mutex`
  // accept() errors since construction (Server::Stats), and the back-off waits among them.
  std::atomic<std::uint64_t> accept_failures{0};
  std::atomic<std::uint64_t> accept_pauses{0};
  std::atomic<std::uint64_t> io_thread_reads{0};
  std::atomic<std::uint64_t> io_thread_read_fallbacks{0};
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::set<std::shared_ptr<Connection>> connections;
  unsigned short port = 0;
  tcp protocol = tcp::v4();  // the acceptor's, set by Listen
  Clock::duration tick{};
  std::unique_ptr<CommitQueue> commit;          // group commit; null when options.commit_queue == 0
  std::unique_ptr<detail::ReaderPool> readers;  // started by Run()

  explicit Impl(ServerOptions o) : options(std::move(o)) {
    const int n = options.threads > 0 ? options.threads : DefaultIoThreads();
    for (int i = 0; i < n; ++i) contexts.push_back(std::make_unique<Context>());
    readers = std::make_unique<detail::ReaderPool>(options.read_threads > 0 ? options.read_threads
                                                                            : DefaultReadThreads());
    asio::io_context& main = contexts[0]->ioc;
    acceptor = std::make_unique<tcp::acceptor>(main);
    signals = std::make_unique<asio::signal_set>(main);
    grace = std::make_unique<asio::steady_timer>(main);
    drain = std::make_unique<asio::steady_timer>(main);
    slot_free = std::make_unique<asio::steady_timer>(main);
    max_connections = static_cast<std::size_t>(
        options.max_connections > 0 ? options.max_connections : DefaultMaxConnections());
    // The deadline check runs a few times per shortest timeout (at most every 250 ms).
    auto shortest = std::min({options.read_timeout, options.idle_timeout, options.write_timeout});
    tick = std::clamp<Clock::duration>(shortest / 4, std::chrono::milliseconds(5),
                                       std::chrono::milliseconds(250));
  }

  ~Impl() {
    // Coroutine frames (destroyed with their io_context) unregister from `live`; the acceptor
    // and timers go before the contexts they belong to.
    grace.reset();
    drain.reset();
    slot_free.reset();
    signals.reset();
    acceptor.reset();
  }

  Context& NextContext() { return *contexts[next_context++ % contexts.size()]; }

  void StopAll() {
    for (auto& c : contexts) c->ioc.stop();
  }

  // Cancels the pending operation of every connection past its deadline; the coroutine then
  // closes it. Re-arms until the server has finished.
  void Sweep(Context& ctx) {
    ctx.sweep.expires_after(tick);
    // `this` outlives the handler: the contexts are members and run only inside Run().
    ctx.sweep.async_wait([self = this, &ctx](beast::error_code ec) {
      if (ec || self->finished.load()) return;
      const auto now = Clock::now();
      for (Connection* c : ctx.live) {
        if (c->deadline < now) {
          beast::error_code ignored;
          c->socket.cancel(ignored);
          c->deadline = Clock::time_point::max();
        }
      }
      self->Sweep(ctx);
    });
  }

  // An OperationOutcome answer the server gives itself (not the handler's).
  static Response Refusal(int status, std::string_view code, std::string diagnostics) {
    detail::Failure f;
    f.status = status;
    f.code = std::string(code);
    f.diagnostics = std::move(diagnostics);
    return detail::FailureResponse(f);
  }

  static Response InternalError() { return Refusal(500, "exception", "internal error"); }

  Response Dispatch(const Request& r) const {
    try {
      return handler->Handle(r);
    } catch (const std::exception&) {
      // Exceptions mean a bug (STYLE: errors are values); answer 500 instead of dropping the
      // connection, and keep serving.
      return InternalError();
    }
  }

  // Runs `fn` on a reader thread; the calling coroutine is resumed on its own io thread
  // (posted, never inline) with fn's result, nullopt if it threw. What `fn` refers to in the
  // coroutine's frame stays put while the coroutine waits; the io thread serves its other
  // connections meanwhile. `brief`: one read by id from a store read in this process, whose
  // resumption may be posted together with the next jobs' (reader_pool.hpp).
  // (Not a coroutine itself: one frame per hand-off.)
  template <class Fn>
  auto OnReader(Fn fn, bool brief = false) const {
    return detail::RunOnReader(*readers, std::move(fn), brief);
  }

  // A read-cache miss of the fast read path (GET|HEAD [base]/Type/id), in the coroutine's frame.
  struct FastRead {
    std::string_view type;  // type and id view the request head, as `head` does
    std::string_view id;
    const detail::RequestHead* head = nullptr;
    bool is_head = false;
    std::shared_ptr<const detail::CachedResource> found;  // a current row: the fast path answers
    std::optional<Response> resp;                         // else the handler's answer
    bool failed = false;                                  // threw: 500
  };

  // FastRead on a reader thread. Brief only on a store read in this process (SQLite): a read
  // that waits for a database server (PostgreSQL) must not hold the answers its reader finished
  // before it (decision 0034); such reads queued together run as one batch (FastReadBatch,
  // decision 0040).
  class FastReadJob : public detail::ReaderJob {
   public:
    FastReadJob(asio::any_io_executor home, const Impl* impl, FastRead* read)
        : ReaderJob(std::move(home), impl->handler->ReadsInProcess(),
                    impl->handler->ReadsInProcess() ? nullptr : &impl->fast_reads),
          impl_(impl),
          read_(read) {}
    void Run() noexcept override {
      try {
        auto row = impl_->handler->ReadCurrent(read_->type, read_->id);
        if (row && *row && !(*row)->deleted) {
          read_->found = std::move(*row);
        } else {
          Answer();
        }
      } catch (const std::exception&) {
        read_->failed = true;
      }
    }
    // What is not a current row (unknown, deleted, a store error) is the handler's answer (the
    // Request is built only then: the head's views stay valid while the coroutine waits).
    void Answer() noexcept {
      try {
        Request r = ToRequest(*read_->head);
        if (read_->is_head) r.method = "GET";  // HEAD is GET without the body (RFC 9110 §9.3.2)
        read_->resp = impl_->Dispatch(r);
      } catch (const std::exception&) {
        read_->failed = true;
      }
    }
    FastRead& read() { return *read_; }

   private:
    const Impl* impl_;
    FastRead* read_;
  };

  // Runs the fast reads queued together on a store that does not read in process with one
  // Handler::ReadCurrentMany (one pipelined round trip on PostgreSQL). A current row finishes
  // its job at once (posted with the others that arrived with it); the others are answered by
  // the handler after the batch.
  class FastReadBatch final : public detail::ReadBatch {
   public:
    explicit FastReadBatch(const Impl& impl) : impl_(impl) {}
    void Run(std::span<detail::ReaderJob* const> jobs,
             detail::BatchProgress& progress) noexcept override {
      auto job = [&jobs](std::size_t i) -> FastReadJob& {
        return *static_cast<FastReadJob*>(jobs[i]);
      };
      std::vector<std::size_t> later;  // not a current row: the handler answers
      try {
        std::vector<store::Store::ReadKey> keys;
        keys.reserve(jobs.size());
        later.reserve(jobs.size());
        for (std::size_t i = 0; i < jobs.size(); ++i) {
          keys.push_back({job(i).read().type, job(i).read().id});
        }
        struct Sink final : store::Store::ReadSink {
          decltype(job)& of;
          detail::BatchProgress& progress;
          std::vector<std::size_t>& later;
          Sink(decltype(job)& o, detail::BatchProgress& p, std::vector<std::size_t>& l)
              : of(o), progress(p), later(l) {}
          void Read(std::size_t i, Result<std::optional<store::ResourceRow>> row) override {
            if (row && *row && !(*row)->deleted) {
              try {
                of(i).read().found = detail::MakeCachedResource(std::move(**row));
              } catch (const std::exception&) {
                of(i).read().failed = true;  // e.g. bad_alloc: 500
              }
              progress.Finished(i);
            } else {
              later.push_back(i);  // never throws: reserved for every job
            }
          }
          void Waiting() override { progress.Waiting(); }
        } sink(job, progress, later);
        impl_.handler->ReadCurrentMany(keys, sink);
      } catch (const std::exception&) {
        return;  // the jobs not finished are run alone by the pool
      }
      for (std::size_t i : later) {
        progress.Waiting();
        job(i).Answer();
        progress.Finished(i);
      }
    }

   private:
    const Impl& impl_;
  };
  mutable FastReadBatch fast_reads{*this};

  // A request body's content coding (RFC 9110 §8.4): `identity` or none passes; gzip (and its
  // alias x-gzip, §18.6) is decoded into `r.body` on a reader thread (inflating up to
  // body_limit bytes is CPU the io thread's other connections would wait for); a body over the
  // limit once decoded is 413, a corrupt one 400; any other coding is 415 with the codings that
  // are accepted (§12.5.3). nullopt: `r` is ready for the handler.
  static std::optional<Response> RefuseCoding(std::string_view coding) {
    if (coding.empty() || beast::iequals(coding, "identity") || beast::iequals(coding, "gzip") ||
        beast::iequals(coding, "x-gzip")) {
      return std::nullopt;
    }
    Response r = Refusal(415, "not-supported", "request Content-Encoding must be gzip or identity");
    r.SetHeader("Accept-Encoding", "gzip");
    return r;
  }

  asio::awaitable<std::optional<Response>> DecodeBody(Request& r) const {
    const std::string coding(r.Header("Content-Encoding"));
    if (auto refused = RefuseCoding(coding)) co_return refused;
    if (coding.empty() || beast::iequals(coding, "identity")) co_return std::nullopt;
    // No content, nothing coded: a chunked body of no bytes is what Content-Length: 0 is (that
    // request never gets here), so the handler judges the empty body (a POST or PUT without a
    // resource 400 "no resource body", a DELETE 204) instead of a gzip stream error.
    if (r.body.empty()) co_return std::nullopt;
    const std::size_t limit = options.body_limit;
    auto decoded = co_await OnReader([&r, limit]() -> std::optional<Response> {
      std::string plain;
      if (!detail::GzipDecompress(r.body, plain, limit)) {
        if (plain.size() > limit) {
          return Refusal(413, "too-costly",
                         "request body exceeds the configured limit once decompressed");
        }
        return Refusal(400, "structure", "the gzip request body could not be decompressed");
      }
      r.body = std::move(plain);
      std::erase_if(r.headers, [](const auto& h) {
        return EqualsIgnoreCase(h.first, "Content-Encoding") ||
               EqualsIgnoreCase(h.first, "Content-Length");
      });
      return std::nullopt;
    });
    if (!decoded) co_return InternalError();
    co_return std::move(*decoded);
  }

  // The handler's answer to `r`. What needs no store is answered here; reads run on a reader
  // thread; a write goes through the commit queue: prepared here, applied and committed by the
  // commit thread with the other queued writes, answered here after the commit. A Bundle is
  // prepared and answered on a reader thread instead (its GET entries read the store). The io
  // thread serves its other connections meanwhile.
  asio::awaitable<Response> Answer(const Request& r) const {
    Handler::Work work = Handler::Work::kRead;
    try {
      work = handler->Classify(r);
    } catch (const std::exception&) {
      co_return InternalError();
    }
    if (work == Handler::Work::kNoStore) co_return Dispatch(r);
    if (work == Handler::Work::kRead || !commit) {
      auto answered = co_await OnReader([this, &r] { return Dispatch(r); });
      co_return answered ? std::move(*answered) : InternalError();
    }
    const bool bundle = work == Handler::Work::kBundle;
    std::variant<Response, std::unique_ptr<PreparedRequest>> split;
    // A large write body is prepared on a reader thread too: preparing costs the thread ~25-40
    // us per KiB of JSON with validation (bench_prepare_write: a 16 KiB Observation 0.45 ms, a
    // 1 MiB Binary 5.6 ms), time in which the io thread would answer none of its connections.
    if (bundle || r.body.size() >= kPrepareOnReaderBytes) {
      auto prepared = co_await OnReader([this, &r] { return handler->PrepareRequest(r); });
      if (!prepared) co_return InternalError();
      split = std::move(*prepared);
    } else {
      try {
        split = handler->PrepareRequest(r);
      } catch (const std::exception&) {
        co_return InternalError();
      }
    }
    if (auto* answered = std::get_if<Response>(&split)) co_return std::move(*answered);
    auto job = std::make_shared<ServerJob>(std::move(std::get<1>(split)));
    bool queued = true;
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&](auto resume) {
          // Runs while the coroutine is suspended; the resumption is posted to the coroutine's
          // own executor (never run inline).
          auto h = std::make_shared<decltype(resume)>(std::move(resume));
          auto ex = asio::get_associated_executor(*h);
          job->wake = [h, ex] { asio::post(ex, [h] { std::move (*h)(); }); };
          if (!commit->Submit(job)) {
            queued = false;
            job->Done();
          }
        },
        asio::use_awaitable);
    if (!queued) {
      // Backpressure: the queue is full (or the server is stopping).
      Response busy = Refusal(503, "transient", "too many writes are waiting; retry");
      busy.SetHeader("Retry-After", "1");
      co_return busy;
    }
    if (bundle) {
      auto answered = co_await OnReader([&job] { return job->Request().Finish(job->Lost()); });
      co_return answered ? std::move(*answered) : InternalError();
    }
    try {
      co_return job->Request().Finish(job->Lost());
    } catch (const std::exception&) {
      co_return InternalError();
    }
  }

  // A handler response into `out`: gzip when accepted and worth it, HEAD without the body.
  void Write(std::string& out, Response&& resp, bool head_only, bool gzip, bool keep,
             int minor) const {
    ResponseWriter w(out);
    w.Status(resp.status);
    bool compressed = false;
    const bool compressible = !HasNoBody(resp.status) && resp.body.size() >= options.gzip_min_bytes;
    if (gzip && compressible && resp.Header("Content-Encoding").empty()) {
      std::string z;
      if (detail::GzipCompress(resp.body, z)) {
        resp.body = std::move(z);
        compressed = true;
      }
    }
    for (const auto& [k, v] : resp.headers) w.Field(k, v);
    if (compressed) w.Field("Content-Encoding", "gzip");
    if (compressible) w.Field("Vary", "Accept-Encoding");
    w.Finish(resp.body, head_only, keep, minor);
  }

  static void WriteError(std::string& out, int status, std::string_view code,
                         std::string diagnostics) {
    Response r = Refusal(status, code, std::move(diagnostics));
    ResponseWriter w(out);
    w.Status(status);
    for (const auto& [k, v] : r.headers) w.Field(k, v);
    w.Finish(r.body, false, false, 1);
  }

  // The type and id of `GET|HEAD [base]/Type/id` (no query, no percent-encoding): the shape
  // the fast read path answers from Handler::ReadCached / ReadCurrent.
  static std::optional<std::pair<std::string_view, std::string_view>> FastReadTarget(
      const detail::RequestHead& head) {
    if (head.method != "HEAD" && head.method != "GET") return std::nullopt;
    std::string_view t = head.target;
    if (!t.starts_with("/fhir/")) return std::nullopt;
    t.remove_prefix(6);
    auto slash = t.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    std::string_view type = t.substr(0, slash);
    std::string_view id = t.substr(slash + 1);
    // Percent-encoded or query-bearing targets take the full route (decoding, _format).
    if (!detail::IsValidId(id) || !detail::IsResourceTypeName(type)) return std::nullopt;
    // An Accept that refuses JSON is answered 406 by the handler (Handler::Resolve).
    if (auto accept = head.Header("Accept"); !accept.empty() && !detail::AcceptsJson(accept)) {
      return std::nullopt;
    }
    return std::pair{type, id};
  }

  // The 200 or 304 of a fast read of `r` (a current version, not deleted) into `out`.
  void WriteFastRead(const detail::RequestHead& head, const detail::CachedResource& r,
                     std::string& out, bool keep) const {
    const bool is_head = head.method == "HEAD";
    ResponseWriter w(out);
    if (auto inm = head.Header("If-None-Match"); !inm.empty() && MatchesVersion(inm, r.version)) {
      w.Status(304);
      w.Field("ETag", r.etag());
      w.Finish({}, is_head, keep, head.minor_version);
      return;
    }
    std::shared_ptr<const std::string> zipped;
    const std::string_view json = r.json();
    const bool compressible = json.size() >= options.gzip_min_bytes;
    if (compressible && AcceptsGzip(head.Header("Accept-Encoding"))) zipped = r.Gzip();
    w.Status(200);
    w.PreRendered(r.Fields200());  // Content-Type, ETag, Last-Modified
    if (zipped) w.Field("Content-Encoding", "gzip");
    if (compressible) w.Field("Vary", "Accept-Encoding");
    w.Finish(zipped ? std::string_view(*zipped) : json, is_head, keep, head.minor_version);
  }

  // A request with `Expect` whose head alone decides its final answer (RFC 9110 §10.1.1: such
  // a request gets that status instead of 100 Continue): an expectation other than
  // 100-continue (417), a declared body over the limit (413), a content coding other than gzip
  // (415, RefuseCoding), and whatever the handler decides without the body or the store
  // (Handler::AnswerFromHead: 404, 405, 400, 406, 415). nullopt: send 100 Continue and read the
  // body.
  std::optional<Response> RejectFromHead(const detail::RequestHead& head) const {
    std::string_view expect = head.Header("Expect");
    if (!beast::iequals(expect, "100-continue")) {
      return Refusal(417, "not-supported", "only the expectation 100-continue is supported");
    }
    std::string_view length = head.Header("Content-Length");
    std::uint64_t declared = 0;
    std::from_chars(length.data(), length.data() + length.size(), declared);
    if (declared > options.body_limit) {
      return Refusal(413, "too-costly", "request body exceeds the configured limit");
    }
    if (auto refused = RefuseCoding(head.Header("Content-Encoding"))) return refused;
    return handler->AnswerFromHead(ToRequest(head));
  }

  static Request ToRequest(const detail::RequestHead& head) {
    Request r;
    r.method = std::string(head.method);
    r.target = std::string(head.target);
    r.headers.reserve(head.headers.size());
    for (const auto& [k, v] : head.headers) r.headers.emplace_back(k, v);
    return r;
  }

  asio::awaitable<void> Serve(std::shared_ptr<Connection> conn, Context& ctx) {
    LiveGuard live(ctx, *conn);
    std::vector<char> in(kInitialBuffer);
    std::size_t start = 0;  // first unconsumed byte
    std::size_t have = 0;   // bytes read into `in`
    std::string out;
    detail::RequestHead head;
    int served = 0;
    // read_more and flush try the socket before they wait (user-level non-blocking mode).
    beast::error_code blocking;
    conn->socket.non_blocking(true, blocking);
    bool open = !blocking;
    bool linger = false;  // closing with a request body maybe still on its way
    // What a read waits against: the idle keep-alive deadline before a request's first byte,
    // then read_timeout from that byte for the whole request (head and body).
    Clock::time_point read_deadline;

    // Writes what `out` holds (pipelined answers gathered). False: the connection is gone.
    // The send is made at once (the socket is non-blocking); only what the socket does not
    // take is written asynchronously.
    auto flush = [&]() -> asio::awaitable<bool> {
      if (out.empty()) co_return true;
      conn->deadline = Clock::now() + options.write_timeout;
      beast::error_code ec;
      std::size_t sent = conn->socket.write_some(asio::buffer(out), ec);
      if (ec == asio::error::would_block) {
        ec = {};
        sent = 0;
      }
      if (!ec && sent < out.size()) {
        auto [wec, n] = co_await asio::async_write(
            conn->socket, asio::buffer(out.data() + sent, out.size() - sent), kNoThrow);
        ec = wec;
      }
      out.clear();
      co_return !ec;
    };
    // Reads more bytes after `have`, making room first. False: closed, error or timeout.
    //
    // Without a system call that fails (read_readiness.hpp): when the reactor has seen no
    // readiness since our last read drained the socket, the read is queued at once and waits
    // for the event. Else one recv is tried here; if it finds the socket empty, the flag is
    // cleared before the read is queued, so Asio does not try again. After a recv that drained
    // the socket (returned less than it had room for) the flag is cleared in the same handler:
    // the recv here, or the reactor's, whose completion resumes this coroutine inline
    // (descriptor_state::perform_io; this coroutine never has a write and a read pending at
    // once, so its read is the event's only completion, the one run inline).
    auto read_more = [&](std::size_t max_size) -> asio::awaitable<bool> {
      if (!co_await flush()) co_return false;
      conn->deadline = read_deadline;
      if (start == have) {
        start = have = 0;
      } else if (start > 0) {
        std::memmove(in.data(), in.data() + start, have - start);
        have -= start;
        start = 0;
      }
      if (have == in.size()) {
        if (in.size() >= max_size) co_return false;
        in.resize(std::min(in.size() * 2, max_size));
      }
      const bool first_byte = have == 0;
      const auto room = asio::buffer(in.data() + have, in.size() - have);
      std::size_t n = 0;
      bool* speculate = detail::ReadSpeculationFlag(conn->socket);
      bool ready = false;  // bytes were there already (no wait)
      if (speculate != nullptr && *speculate) {
        beast::error_code ec;
        n = conn->socket.read_some(room, ec);
        if (ec && ec != asio::error::would_block) co_return false;  // includes the peer's close
        ready = !ec;
        if (!ready || n < room.size()) *speculate = false;  // drained by this recv
      }
      if (ready) {
        // No wait: give the thread's other connections a turn (a client that keeps bytes
        // coming, e.g. pipelining, would hold the thread otherwise), as Asio does after a
        // read it completed at once.
        Context::Count(ctx.reads_at_once);
        co_await asio::post(conn->socket.get_executor(), asio::use_awaitable);
      } else {
        if (speculate != nullptr) Context::Count(ctx.reads_without_try);
        auto [ec, got] = co_await conn->socket.async_read_some(room, kNoThrow);
        if (ec) co_return false;
        n = got;
        speculate = detail::ReadSpeculationFlag(conn->socket);
        if (speculate != nullptr && n < room.size()) *speculate = false;
      }
      if (first_byte) {  // a request started: it has read_timeout from its first byte
        conn->idle = false;
        read_deadline = Clock::now() + options.read_timeout;
        conn->deadline = read_deadline;
      }
      have += n;
      co_return true;
    };

    while (open && !stopping.load()) {
      if (start == have) {
        conn->idle = true;
        read_deadline = Clock::now() + (served == 0 ? options.read_timeout : options.idle_timeout);
      } else {  // pipelined: the next request's bytes are already here
        conn->idle = false;
        read_deadline = Clock::now() + options.read_timeout;
      }
      conn->deadline = read_deadline;
      // --- the head, parsed in place
      detail::HeadStatus status;
      while (true) {
        status = detail::ParseRequestHead(std::string_view(in.data() + start, have - start),
                                          options.header_limit, head);
        if (status != detail::HeadStatus::kNeedMore) break;
        if (!co_await read_more(options.header_limit + kInitialBuffer)) {
          open = false;
          break;
        }
      }
      if (!open) break;
      conn->idle = false;
      if (status == detail::HeadStatus::kBad || status == detail::HeadStatus::kTooLarge) {
        const bool large = status == detail::HeadStatus::kTooLarge;
        WriteError(
            out, large ? 431 : 400, large ? "too-costly" : "structure",
            large ? "request header exceeds the configured limit" : "malformed HTTP request");
        break;
      }
      ++served;
      const bool keep =
          head.keep_alive && !stopping.load() && served < options.max_requests_per_connection;

      if (!head.has_body) {
        // --- no body: fast read, else the handler on a Request built from the views. `head`
        // views the read buffer, which the waits below (a reader thread, a commit) leave as is.
        const std::size_t head_size = head.size;
        const bool is_head = head.method == "HEAD";
        auto as_request = [&] {
          Request r = ToRequest(head);
          if (is_head) r.method = "GET";  // HEAD is GET without the body (RFC 9110 §9.3.2)
          return r;
        };
        bool answered = false;
        std::optional<Response> resp;  // the handler's answer, when the fast path has none
        if (auto fast = FastReadTarget(head)) {
          // A current cache entry is answered here. A miss is read here too when the store can
          // do it without waiting (decision 0051: pages in memory, no lock held elsewhere);
          // else on a reader thread, which also has the handler answer what is not a plain
          // 200/304 (unknown, deleted, a store error), so that takes one hop as well.
          std::shared_ptr<const detail::CachedResource> found;
          try {
            found = handler->ReadCached(fast->first, fast->second);
            if (!found && options.io_thread_reads) {
              found = handler->TryReadCurrent(fast->first, fast->second);
              if (found && found->deleted) found = nullptr;  // 410: the reader's handler answers
              (found ? io_thread_reads : io_thread_read_fallbacks)
                  .fetch_add(1, std::memory_order_relaxed);
            }
          } catch (const std::exception&) {
            found = nullptr;  // e.g. bad_alloc: the handler path answers (500 at worst)
          }
          if (!found) {
            FastRead read;
            read.type = fast->first;
            read.id = fast->second;
            read.head = &head;
            read.is_head = is_head;
            co_await detail::RunJobOnReader<FastReadJob>(*readers, this, &read);
            if (read.failed) {
              resp = InternalError();
            } else if (read.found) {
              found = std::move(read.found);
            } else {
              resp = std::move(read.resp);
            }
          }
          if (found && !found->deleted) {
            try {
              WriteFastRead(head, *found, out, keep);
              answered = true;
            } catch (const std::exception&) {
              answered = false;  // e.g. bad_alloc: the handler path answers (500 at worst)
            }
          }
        }
        if (!answered) {
          const bool gzip = AcceptsGzip(head.Header("Accept-Encoding"));
          const int minor = head.minor_version;
          if (!resp) resp = co_await Answer(as_request());
          Write(out, std::move(*resp), is_head, gzip, keep, minor);
        }
        start += head_size;
      } else {
        // --- Expect: 100-continue (RFC 9110 §10.1.1; ignored from HTTP/1.0 clients): the client
        // waits (curl: 1 s) for an interim "100 Continue" before it sends the body. Sent unless
        // body bytes are already here, or the head alone decides a final status: that status
        // then goes out without 100 and the connection closes, the body unread (lingering, so
        // that a body sent anyway does not reset the connection before the answer is read).
        if (head.minor_version >= 1 && !head.Header("Expect").empty()) {
          std::optional<Response> rejected;
          try {
            rejected = RejectFromHead(head);
          } catch (const std::exception&) {
            rejected = InternalError();
          }
          if (rejected) {
            Write(out, std::move(*rejected), head.method == "HEAD", false, false,
                  head.minor_version);
            linger = true;
            break;
          }
          if (have - start <= head.size) out += "HTTP/1.1 100 Continue\r\n\r\n";
        }
        // --- with a body: Beast's parser owns the framing, fed from the same buffer
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
        parser.body_limit(options.body_limit);
        parser.eager(true);
        beast::error_code ec;
        while (!parser.is_done()) {
          std::size_t used = 0;
          if (start < have) {
            used = parser.put(asio::buffer(in.data() + start, have - start), ec);
            start += used;
          }
          if (ec == http::error::need_more || (!ec && used == 0)) {
            ec = {};
            // A chunk-size line or trailer larger than the header limit is not a request.
            if (!co_await read_more(options.header_limit + kInitialBuffer + 64 * 1024)) {
              open = false;
              break;
            }
            continue;
          }
          if (ec) break;
        }
        if (!open) break;
        if (ec) {
          int code = 400;
          std::string text = "malformed HTTP request";
          if (ec == http::error::body_limit) {
            code = 413;
            text = "request body exceeds the configured limit";
          } else if (ec == http::error::header_limit) {
            code = 431;
            text = "request header exceeds the configured limit";
          }
          WriteError(out, code, code == 400 ? "structure" : "too-costly", text);
          break;
        }
        auto req = parser.release();
        Request r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        for (const auto& field : req) {
          r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        r.body = std::move(req.body());
        const bool keep_body = keep && req.keep_alive();
        std::optional<Response> refused;  // a coding the body cannot be decoded from
        if (!r.Header("Content-Encoding").empty()) refused = co_await DecodeBody(r);
        Response resp;
        if (refused) {
          resp = std::move(*refused);
        } else {
          resp = co_await Answer(r);
        }
        Write(out, std::move(resp), r.method == "HEAD", AcceptsGzip(r.Header("Accept-Encoding")),
              keep_body, head.minor_version);
        if (!keep_body) break;
      }
      if (!keep) break;
      // Pipelined requests already buffered are answered before one write; anything else
      // waits for the next read, which flushes first.
      if (out.size() >= kFlushAt || start == have) {
        if (!co_await flush()) {
          open = false;
          break;
        }
      }
    }
    co_await flush();
    beast::error_code ignored;
    conn->socket.shutdown(tcp::socket::shutdown_send, ignored);
    if (linger) {
      // Discards what the client still sends until it closes, for at most a second (closing
      // with unread data would send a reset, which can destroy the answer at the client).
      conn->deadline =
          Clock::now() + std::min<Clock::duration>(options.read_timeout, std::chrono::seconds(1));
      while (true) {
        auto [ec, n] = co_await conn->socket.async_read_some(asio::buffer(in), kNoThrow);
        if (ec) break;
      }
    }
    conn->socket.close(ignored);
    Forget(conn);
  }

  void Forget(const std::shared_ptr<Connection>& conn) {
    std::lock_guard lock(mutex);
    connections.erase(conn);
    if (stopping.load() && connections.empty()) Finish();
    if (accept_waiting && connections.size() < max_connections) {
      accept_waiting = false;
      asio::post(contexts[0]->ioc, [self = this] { self->slot_free->cancel(); });
    }
  }

  // At the connection cap: waits (on context 0) until a connection closes or the server stops.
  // Not accepting leaves new connections in the listen backlog, where they are accepted in
  // order as slots free (docs/gateway.md, "Limits and protection").
  asio::awaitable<void> WaitForSlot() {
    while (!stopping.load()) {
      {
        std::lock_guard lock(mutex);
        accept_waiting = connections.size() >= max_connections;
        if (!accept_waiting) co_return;
      }
      // Forget's cancel is posted to this thread, so it runs after the wait below has started;
      // the periodic wake-up is only a safety net.
      slot_free->expires_after(std::chrono::milliseconds(200));
      co_await slot_free->async_wait(kNoThrow);
    }
  }

  // Out of descriptors or memory: the pending connection stays in the listen backlog, so the
  // listening socket stays readable and an immediate retry fails again, spinning a core. The
  // accept loop waits until a connection closes (Forget cancels `slot_free`, as at the cap) or
  // kAcceptBackoff passes (descriptors freed elsewhere), then tries again; the connections held
  // are served meanwhile (docs/gateway.md, "Limits and protection").
  static bool OutOfResources(const beast::error_code& ec) {
    if (ec.category() != boost::system::system_category()) return false;
    const int e = ec.value();
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
  }

  static constexpr int kAcceptBackoff = 100;  // ms

  static Logger& AcceptLog() {
    static Logger logger(stderr, LogLevel::kWarn);
    return logger;
  }

  asio::awaitable<void> AcceptBackoff() {
    accept_pauses.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex);
      accept_waiting = true;
    }
    slot_free->expires_after(std::chrono::milliseconds(kAcceptBackoff));
    co_await slot_free->async_wait(kNoThrow);
    std::lock_guard lock(mutex);
    accept_waiting = false;
  }

  // Everything done: let every io_context::run return.
  void Finish() {
    if (finished.exchange(true)) return;
    for (auto& c : contexts) {
      asio::post(c->ioc, [ctx = c.get()] { ctx->sweep.cancel(); });
    }
    asio::post(contexts[0]->ioc, [self = shared_from_this()] {
      for (auto& g : self->guards) g.reset();
      beast::error_code ignored;
      self->grace->cancel();
      self->drain->cancel();
      self->signals->cancel(ignored);
    });
  }

  // Accepts on context 0 (the acceptor's). A connection dealt to another context leaves
  // context 0's reactor as a bare descriptor and is registered by its own context's thread.
  asio::awaitable<void> Accept() {
    while (!stopping.load()) {
      co_await WaitForSlot();
      if (stopping.load()) break;
      Context& ctx = NextContext();
      auto [ec, socket] = co_await acceptor->async_accept(kNoThrow);
      if (ec) {
        if (stopping.load() || ec == asio::error::operation_aborted) break;
        accept_failures.fetch_add(1, std::memory_order_relaxed);
        // Others (ECONNABORTED, EPROTO, ...) concern one connection: the next one is accepted at
        // once.
        if (OutOfResources(ec)) {
          if (!accept_starved) {
            accept_starved = true;
            AcceptLog().Log(LogLevel::kError, "gateway.accept.paused",
                            {{"errno", ec.value()}, {"retry_ms", kAcceptBackoff}});
          }
          co_await AcceptBackoff();
        }
        continue;
      }
      if (accept_starved) {
        accept_starved = false;
        AcceptLog().Log(LogLevel::kWarn, "gateway.accept.resumed",
                        {{"failed_accepts", static_cast<std::int64_t>(accept_failures.load())}});
      }
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      const bool here = &ctx == contexts[0].get();
      OwnedFd handover;
      if (!here) {
        beast::error_code released;
        handover.fd = socket.release(released);
        if (released) continue;  // still open: closed by its destructor
      }
      auto conn = std::make_shared<Connection>(here ? std::move(socket) : tcp::socket(ctx.ioc));
      {
        std::lock_guard lock(mutex);
        connections.insert(conn);
      }
      if (here) {
        asio::co_spawn(ctx.ioc, Serve(conn, ctx), asio::detached);
        continue;
      }
      // `this` outlives the handler: the contexts are members and run only inside Run().
      asio::post(ctx.ioc, [self = this, &ctx, conn, fd = std::move(handover)]() mutable {
        beast::error_code assigned;
        conn->socket.assign(self->protocol, fd.fd, assigned);
        if (assigned) {
          self->Forget(conn);
          return;  // `fd` closes the descriptor
        }
        fd.fd = -1;  // the socket owns it now
        asio::co_spawn(ctx.ioc, self->Serve(conn, ctx), asio::detached);
      });
    }
  }

  // Stop() and the signals: readiness 503 at once (Health::SetDraining), the stop itself after
  // ServerOptions::drain_delay, or at once on a second call.
  void RequestStop() {
    if (Health* h = health.load()) h->SetDraining();
    if (options.drain_delay <= std::chrono::milliseconds::zero() || draining.exchange(true)) {
      BeginStop();
      return;
    }
    asio::post(contexts[0]->ioc, [self = shared_from_this()] {
      self->drain->expires_after(self->options.drain_delay);
      self->drain->async_wait([self](beast::error_code) { self->BeginStop(); });
    });
  }

  // SIGINT/SIGTERM: RequestStop, and again on the next one.
  void WaitForSignal() {
    signals->async_wait([self = shared_from_this()](beast::error_code ec, int) {
      if (ec || self->finished.load()) return;
      self->RequestStop();
      if (!self->stopping.load()) self->WaitForSignal();
    });
  }

  void BeginStop() {
    if (stopping.exchange(true)) return;
    asio::post(contexts[0]->ioc, [self = shared_from_this()] {
      beast::error_code ignored;
      self->drain->cancel();
      self->acceptor->close(ignored);
      self->slot_free->cancel();
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
        asio::post(c->socket.get_executor(), [c] {
          beast::error_code ignored2;
          c->socket.cancel(ignored2);
        });
      }
      self->grace->expires_after(self->options.shutdown_grace);
      self->grace->async_wait([self](beast::error_code ec) {
        if (!ec) self->StopAll();  // deadline passed: drop what is left
      });
    });
  }
};

// One io thread per core. With the store work on the reader threads (0027), one io thread on
// the 2-core VM used less CPU per request under load but served fewer cached reads on a quiet
// machine (40.8-46.6k against 52.7-52.8k req/s, p99 3.3-4.9 ms either way: docs/performance.md,
// "Session close ... session 8"): the single io thread saturates before the cores do.
int DefaultIoThreads() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int DefaultReadThreads() {
  return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
}

int DefaultMaxConnections() {
  rlimit limit{};
  rlim_t files = 1024;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) files = limit.rlim_cur;
  if (files == RLIM_INFINITY || files > 4096 + 128) return 4096;
  return std::max(16, static_cast<int>(files) - 128);
}

Server::Server(ServerOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

Server::~Server() = default;

Result<void> Server::Listen() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return ec;
  tcp::endpoint endpoint(address, impl_->options.port);
  tcp::acceptor& acceptor = *impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor.bind(endpoint, ec);
  if (ec) return ec;
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  impl_->port = acceptor.local_endpoint().port();
  impl_->protocol = endpoint.protocol();
  return {};
}

unsigned short Server::Port() const {
  return impl_->port;
}

void Server::Run(const Handler& handler) {
  auto impl = impl_;
  impl->handler = &handler;
  impl->health.store(handler.Options().health.get());
  if (impl->options.handle_signals) {
    impl->signals->add(SIGINT);
    impl->signals->add(SIGTERM);
    impl->WaitForSignal();
  }
  for (std::size_t i = 1; i < impl->contexts.size(); ++i) {
    impl->guards.push_back(asio::make_work_guard(impl->contexts[i]->ioc));
  }
  impl->readers->Start();
  if (impl->options.commit_queue > 0) {
    CommitQueueOptions commit_options;
    commit_options.max_queued = impl->options.commit_queue;
    commit_options.max_group = impl->options.commit_group;
    impl->commit = std::make_unique<CommitQueue>(handler, commit_options);
    impl->commit->Start();
  }
  for (auto& c : impl->contexts) impl->Sweep(*c);
  asio::co_spawn(impl->contexts[0]->ioc, impl->Accept(), asio::detached);
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < impl->contexts.size(); ++i) {
    threads.emplace_back([ctx = impl->contexts[i].get()] { ctx->ioc.run(); });
  }
  impl->contexts[0]->ioc.run();
  for (auto& g : impl->guards) g.reset();  // context 0 ended (e.g. the grace deadline)
  for (auto& c : impl->contexts) {
    asio::post(c->ioc, [ctx = c.get()] { ctx->sweep.cancel(); });
  }
  for (auto& t : threads) t.join();
  // The reader threads finish what is queued (its resumptions are posted to the stopped
  // contexts and dropped with them: those connections are closed without an answer).
  impl->readers->Stop();
  // Graceful shutdown drains the queue: what was queued is committed (a connection dropped at
  // the grace deadline gets no answer, but its write is not half done).
  if (impl->commit) impl->commit->Stop();
}

void Server::Stop() {
  impl_->RequestStop();
}

ServerStats Server::Stats() const {
  ServerStats s;
  s.accept_failures = impl_->accept_failures.load(std::memory_order_relaxed);
  s.accept_pauses = impl_->accept_pauses.load(std::memory_order_relaxed);
  s.io_thread_reads = impl_->io_thread_reads.load(std::memory_order_relaxed);
  s.io_thread_read_fallbacks = impl_->io_thread_read_fallbacks.load(std::memory_order_relaxed);
  for (const auto& c : impl_->contexts) {
    s.reads_without_try += c->reads_without_try.load(std::memory_order_relaxed);
    s.reads_at_once += c->reads_at_once.load(std::memory_order_relaxed);
  }
  return s;
}

}  // namespace kakehashi::gateway
