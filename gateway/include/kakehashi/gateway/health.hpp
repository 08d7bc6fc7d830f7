// Health endpoints for load balancers, orchestrators (Kubernetes probes) and operators
// (decision 0054). They sit outside the FHIR base and are not FHIR interactions, so the
// CapabilityStatement does not list them:
//
//   GET|HEAD /health/live   200 while the process answers HTTP. Never touches the store.
//   GET|HEAD /health/ready  200 when the gateway should get traffic: the store answers one cheap
//                           statement (Session::SchemaVersion), no background re-index runs
//                           (its searches would be 503, decision 0055) and the server is not
//                           draining for a shutdown; else 503 with Retry-After.
//
// Both answer `application/health+json` with `Cache-Control: no-store`, in the shape of the
// IETF draft "Health Check Response Format for HTTP APIs" (draft-inadarei-api-health-check:
// top-level "status" pass / warn / fail), and hold counts and names only, never patient data:
// the store's backend (and, from ready, its recorded schema version), the re-index progress
// (running, done, total, rate, seconds left) and whether the server drains. Other methods: 405.
//
// The handler routes the two paths here (Handler::Handle; /health/ready runs on a reader
// thread, /health/live on the io thread); FHIR requests never reach this code.
// Thread-safety: every member may be called from any thread.
#pragma once

#include "kakehashi/gateway/http.hpp"
#include "kakehashi/gateway/store/background_reindex.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include <atomic>
#include <optional>

namespace kakehashi::gateway {

class Health {
 public:
  // `store`: the store the handler serves (a pooled session of it answers the readiness
  // statement); `reindex`: `serve`'s background re-index (nullptr: none). Both must outlive
  // this.
  explicit Health(store::Store& store, const store::BackgroundReindex* reindex = nullptr);

  // From now on /health/ready answers 503 (the server calls it when its graceful shutdown
  // begins, ServerOptions::drain_delay before it stops accepting connections).
  void SetDraining();
  bool Draining() const;

  Response Live() const;   // no store use
  Response Ready() const;  // one pooled session, one statement

 private:
  std::optional<store::BackgroundReindex::Progress> Progress() const;
  store::Store& store_;
  const store::BackgroundReindex* reindex_;
  std::atomic<bool> draining_{false};
};

}  // namespace kakehashi::gateway
