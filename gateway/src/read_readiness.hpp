// Whether Asio's epoll reactor would try a socket read at once when the next read starts
// (decision 0051, amendment of session 15).
//
// Asio's reactive sockets start every async_read_some with a "speculative" recv. For a client
// that waits for its answer before it sends the next request, that recv, made right after the
// answer went out, fails with EAGAIN: one wasted system call per keep-alive request (~2.4 µs on
// the benchmark machine, ~1 in 4 of a cache hit's system calls). Waiting for readiness instead
// (async_wait(wait_read)) costs as much: Asio 1.26 (Boost 1.81) re-registers the descriptor
// with epoll_ctl(EPOLL_CTL_MOD) for every wait it does not try first (that re-arms the
// edge-triggered registration, so no readiness is lost).
//
// The reactor already keeps what is needed to skip the recv safely: per descriptor and
// operation type, `try_speculative_` is set whenever epoll reports the descriptor readable
// (descriptor_state::perform_io) and cleared only after a read found the end of the stream. A
// read op queued while it is false waits for the next readiness event, with no system call and
// no epoll_ctl (the registration is EPOLLIN | EPOLLET from the start). So a read that has just
// drained the socket may clear it: bytes that arrive later put the descriptor on epoll's ready
// list, and the event either finds the next read queued or sets the flag again (the read then
// tries at once). Clearing it is safe only right after such a read, in the same handler, before
// the io thread's epoll_wait can run again: see Server::Impl::Serve (read_more).
//
// The flag is private to Asio; it is reached through an explicit instantiation (which the
// language exempts from access checking, [temp.explicit]/12 in C++20) and only for the one
// Asio release whose reactor was read for this; elsewhere ReadSpeculationFlag returns nullptr
// and reads start as Asio starts them.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/version.hpp>

#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && \
    !defined(BOOST_ASIO_DISABLE_EPOLL) && BOOST_ASIO_VERSION == 102600
#define KAKEHASHI_READ_SPECULATION_FLAG 1
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactive_socket_service.hpp>
#endif

namespace kakehashi::gateway::detail {

#if defined(KAKEHASHI_READ_SPECULATION_FLAG)

namespace read_readiness {

using Reactor = boost::asio::detail::epoll_reactor;
using Socket = boost::asio::ip::tcp::socket;

// The socket's implementation object (protected in basic_socket: named through a derived
// class, whose member pointer applies to any socket).
struct SocketImplAccess : Socket {
  static constexpr auto kImpl = &SocketImplAccess::impl_;
};

// descriptor_state::try_speculative_ (private), by explicit instantiation.
struct TrySpeculativeTag {
  friend constexpr auto Member(TrySpeculativeTag);
};
template <auto Pointer>
struct Expose {
  friend constexpr auto Member(TrySpeculativeTag) { return Pointer; }
};
template struct Expose<&Reactor::descriptor_state::try_speculative_>;

}  // namespace read_readiness

// The reactor's "try a read at once" flag of `socket`; nullptr when the socket is closed.
// Only the thread that runs the socket's io_context may touch it (the contexts here are each
// run by one thread, with the reactor's per-descriptor locking off).
inline bool* ReadSpeculationFlag(boost::asio::ip::tcp::socket& socket) {
  using namespace read_readiness;
  auto& impl = (socket.*SocketImplAccess::kImpl).get_implementation();
  Reactor::descriptor_state* state = impl.reactor_data_;
  if (state == nullptr) return nullptr;
  return &(state->*Member(TrySpeculativeTag{}))[Reactor::read_op];
}

#else

inline bool* ReadSpeculationFlag(boost::asio::ip::tcp::socket&) {
  return nullptr;
}

#endif

}  // namespace kakehashi::gateway::detail
