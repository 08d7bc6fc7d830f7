// The FHIR R4 RESTful API over a Store, as a plain function of a Request (R4 §3.1.0 "RESTful
// API"). Base path "/fhir". Interactions: read, vread, update (create-on-update), create
// (conditional If-None-Exist), delete, history (instance, type, system), search (GET and POST
// _search), capabilities (/metadata), batch/transaction, Patient/$everything. Errors are
// OperationOutcome resources with status 400/404/405/409/410/412/415/422/500.
// docs/gateway.md lists the supported search features.
//
// Thread-safety: Handle() may be called concurrently from any number of threads (each call takes
// its own pooled store session).
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/gateway/http.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kakehashi::fhir {
class Node;  // kakehashi/fhir/node.hpp
}

namespace kakehashi::gateway {

class Health;  // kakehashi/gateway/health.hpp

// Validates one resource (JSON text) before it is stored; issues of severity error or fatal
// reject the write with 422 and the issues as OperationOutcome. Injected so that conformance/
// (level 2) is wired by the CLI; must be thread-safe.
using Validator = std::function<void(std::string_view resource_json, IssueSink& issues)>;
// The same check given the resource as a tree: the one the handler prepared (the stored shape,
// with the provisional meta.versionId "1" and lastUpdated), equal to what fhir::ParseJson of the
// text a Validator gets would return, so the hook parses nothing again (decision 0052).
using NodeValidator = std::function<void(const fhir::Node& resource, IssueSink& issues)>;

// A type-level operation, [base]/Type/$name by GET (query parameters) or POST (a Parameters
// body or a form), e.g. the terminology operations (terminology_ops.hpp). Listed in the
// CapabilityStatement under its type. `run` must be thread-safe.
struct TypeOperation {
  std::string type;        // "CodeSystem"
  std::string name;        // "lookup" (without '$')
  std::string definition;  // canonical OperationDefinition URL
  std::function<Response(const Request& request)> run;
};

// Called by Handler::Transaction inside the store transaction after every entry succeeded.
using BeforeCommit = std::function<Result<void>(store::Session& session)>;

// Value set membership for token :in / :not-in (R4 search.html "in"; decision 0045): the
// (system, code) pairs of the ValueSet canonical `url` (every spelling of a system a stored
// resource may carry), at most `limit` + 1 of them (more than `limit`: too large to search by).
// nullopt: the value set is not known.
using ValueSetCodes = std::function<std::optional<std::vector<std::pair<std::string, std::string>>>(
    std::string_view url, std::size_t limit)>;

struct HandlerOptions {
  // Absolute base used in fullUrl, Location and paging links.
  std::string base_url = "http://127.0.0.1:8080/fhir";
  int default_count = 20;
  int max_count = 1000;
  Validator validator;           // empty: only the built-in structural checks
  NodeValidator node_validator;  // when set, used instead of `validator`
  std::vector<TypeOperation> type_operations;
  // Token :in / :not-in (ValueSetCodes); empty: they are 400.
  ValueSetCodes value_set_codes;
  // Read cache for read by id (docs/gateway.md, "Read cache"): on when `read_cache_sqlite_file`
  // names the SQLite database file of the store (WAL mode); an entry is served only while that
  // database has seen no commit from any connection or process since it was read. Never used on
  // PostgreSQL. `read_cache_bytes`: approximate memory bound (0: off; the WAL-index header is
  // still read, so that Store::ReadCurrent can keep its read transaction open while it is
  // unchanged).
  std::string read_cache_sqlite_file;
  std::size_t read_cache_bytes = 128 * 1024 * 1024;
  // What GET /health/live and /health/ready report (health.hpp, decision 0054; outside the FHIR
  // base). nullptr: the handler makes one over its store, without a background re-index; the
  // server marks it draining when its shutdown begins.
  std::shared_ptr<Health> health;
};

namespace detail {
struct CachedResource;  // read_cache.hpp
}

// A resource checked, validated and indexed by Handler::PrepareWrite, ready for
// Handler::WritePrepared. Move-only; its content is private to the handler.
class PreparedResource {
 public:
  PreparedResource();
  ~PreparedResource();
  PreparedResource(PreparedResource&&) noexcept;
  PreparedResource& operator=(PreparedResource&&) noexcept;
  const std::string& Type() const;
  const std::string& Id() const;
  struct Data;  // defined in handler.cpp

 private:
  friend class Handler;
  std::unique_ptr<Data> data_;
};

// What Handler::WritePrepared / WriteDelete did.
enum class WriteOutcome {
  kCreated,    // a new resource (or a new version after a delete)
  kUpdated,    // a new version
  kUnchanged,  // the current version already has this content: nothing written
  kDeleted,    // a delete marker written
  kAbsent,     // nothing to delete
};

// A write request (PUT or DELETE [base]/Type/id, POST [base]/Type, POST [base] with a batch or
// transaction Bundle) split for group commit (commit_queue.hpp): Handler::PrepareRequest did
// what needs no store (parse, checks, validation, serialisation, index rows); Apply does the
// rest inside a store transaction that other requests may share, in a savepoint of its own;
// Finish renders the response once that transaction has ended. Handler::Handle runs the same
// steps in a transaction of its own. Used by one thread at a time (Apply may run on another
// thread than PrepareRequest and Finish).
class PreparedRequest {
 public:
  virtual ~PreparedRequest() = default;
  // Inside session.Begin() (and a savepoint): version checks (If-Match, conditional create)
  // and writes. False: the request failed (roll back to the savepoint; Finish answers why).
  // May be called again after its writes were rolled back (the commit queue's retries): each
  // call starts from the prepared state and decides anew (versions, conditional matches).
  virtual bool Apply(store::Session& session) = 0;
  // After Apply: the store error behind its outcome, if any: a store call of it failed (Apply
  // false, answered 409/500/503), or one of a batch's entries did (Apply true). The commit
  // queue then rolls it back and runs it again alone (commit_queue.hpp). nullptr: the outcome
  // is the request's own (2xx, 412, 422, ...).
  virtual const ErrorCode* StoreError() const { return nullptr; }
  // After the transaction ended. `lost`: why the writes of a successful Apply were not
  // committed (the release of its savepoint or the commit failed); nullptr: committed, or
  // Apply failed.
  virtual Response Finish(const ErrorCode* lost) = 0;
  // The number of resources it may write (bounds a group's size).
  virtual std::size_t Weight() const { return 1; }
};

class Handler {
 public:
  Handler(store::Store& store, HandlerOptions options);
  ~Handler();
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

  Response Handle(const Request& request) const;

  // The final answer to a request that carries a body not yet read, when its method, target
  // and headers decide it alone: what Handle would answer whatever the body (404 outside the
  // base or for an unknown type, operation or endpoint; 405 with Allow; 400 malformed id; 406
  // _format XML; 415 content type). No store use. nullopt: the answer needs the body. The
  // server answers `Expect: 100-continue` with it instead of 100 (RFC 9110 §10.1.1).
  // `request.body` is ignored.
  std::optional<Response> AnswerFromHead(const Request& request) const;

  // Handle split for group commit: a write request is returned prepared, not yet applied (see
  // PreparedRequest); anything else (reads, metadata, and writes that fail before they need
  // the store: bad JSON, 415, 422) is answered as Handle answers it.
  std::variant<Response, std::unique_ptr<PreparedRequest>> PrepareRequest(
      const Request& request) const;

  // POST [base] with a transaction Bundle, plus `before_commit` run in the same store transaction
  // (the importer records its checkpoint there, so resources and checkpoint commit together).
  // An error from it rolls everything back (500 OperationOutcome).
  Response Transaction(const Request& request, const BeforeCommit& before_commit) const;

  const HandlerOptions& Options() const;

  // Read by id without a Request, for the server's fast path (GET [base]/type/id): the current
  // version (a deletion marker when deleted), nullptr when unknown. Served from the read cache
  // when enabled, else from the store. Errors: store errors.
  Result<std::shared_ptr<const detail::CachedResource>> ReadCurrent(std::string_view type,
                                                                    std::string_view id) const;
  // The read cache's entry for type/id while it is current, without touching the store:
  // nullptr when the cache is off or has no current entry (ReadCurrent then asks the store).
  // The server answers such hits on its io thread and sends misses to a reader thread.
  std::shared_ptr<const detail::CachedResource> ReadCached(std::string_view type,
                                                           std::string_view id) const;
  // ReadCurrent's store read for a thread that must not wait (the server's io threads after a
  // ReadCached miss, decision 0051): Store::TryReadCurrent, filling the cache as ReadCurrent
  // does. The current version (a deletion marker when deleted), or nullptr when the store could
  // not read it without waiting, does not know it, or the read cache's database state is not
  // known (no cache file): the caller then uses ReadCurrent on a reader thread.
  std::shared_ptr<const detail::CachedResource> TryReadCurrent(std::string_view type,
                                                               std::string_view id) const;
  // The store's Store::ReadsInProcess: whether ReadCurrent's store reads are answered without
  // waiting for a database server (the server batches the answers of such reads only).
  bool ReadsInProcess() const;
  // Store::ReadCurrentMany on the handler's store, for the server's fast path on a store that
  // does not read in process (decision 0040; such a store has no read cache, so none is used).
  void ReadCurrentMany(std::span<const store::Store::ReadKey> keys,
                       store::Store::ReadSink& sink) const;

  // What answering a request involves, decided from its method, target and headers alone
  // (no body, no store), so that the server knows which thread to run it on.
  enum class Work {
    kNoStore,  // answered without the store: /metadata, failures the head decides
    kRead,     // reads the store (read, vread, search, history, $everything, operations)
    kWrite,    // a write: PrepareRequest returns it prepared (PUT, DELETE, POST Type)
    // POST [base] (a batch or transaction Bundle): a write whose preparing or finishing may
    // read the store (a batch's GET entries run after its commit, or alone when it has nothing
    // to write), so the server runs both halves on a reader thread.
    kBundle,
  };
  Work Classify(const Request& request) const;

  // Bulk writes (`kakehashi import`): a PUT split in two, so that the costly half runs on the
  // caller's worker threads and a single writer keeps its transactions short of CPU work.
  //
  // PrepareWrite runs the checks of `PUT [base]/type/id` with body `json` (JSON syntax,
  // resourceType, id, then HandlerOptions::validator) and extracts the index rows, without
  // touching the store. Thread-safe. The problems are reported to `issues` as Issues, not as an
  // OperationOutcome: the validator's own issues as it reported them, and for the structural
  // checks an error `gateway.write.invalid` (message without values). Returns nullopt when any
  // of them is an error or fatal.
  // A session of the store this handler serves (with whatever the handler keeps coherent with
  // it): the session to run WritePrepared / WriteDelete in.
  Result<std::unique_ptr<store::Session>> OpenSession() const;
  std::optional<PreparedResource> PrepareWrite(std::string_view type, std::string_view id,
                                               std::string_view json, IssueSink& issues) const;
  // Inside session.Begin() (the caller commits): stores `resource` as PUT without If-Match does
  // (next version; meta.versionId and meta.lastUpdated set), except that when the current
  // version already holds the same content nothing is written (kUnchanged), so replaying an
  // import adds no versions. Errors: store errors (the caller rolls back).
  Result<WriteOutcome> WritePrepared(store::Session& session, PreparedResource resource) const;
  // Inside session.Begin(): DELETE type/id (kDeleted; kAbsent when absent or already deleted).
  Result<WriteOutcome> WriteDelete(store::Session& session, std::string_view type,
                                   std::string_view id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kakehashi::gateway
