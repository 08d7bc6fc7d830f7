// Loading SS-MIX2 stores and HL7 v2 files into the gateway's store (`kakehashi import`,
// `kakehashi serve --load`; docs/gateway.md "Import").
//
// The conversion is mapping::Converter's (the same as `kakehashi convert`); the writes go
// through gateway::Handler::Transaction, so every resource is validated and indexed exactly as
// if it had been PUT over REST, and deletes (SS-MIX2 condition flag 0, diseases removed from a
// PPR-01 list) are DELETEs. Ids are deterministic, so a replayed unit updates, never duplicates.
//
// Units and resumption: an SS-MIX2 store is imported one patient folder at a time, an HL7 v2
// file as one unit. `jobs` worker threads convert units and prepare their resources
// (Handler::PrepareWrite: validation, index rows, JSON) in parallel; one writer stores them in
// input order (Handler::WritePrepared) in transactions of at least `chunk_resources` resources
// (whole units), streaming: memory is bounded by the units in flight (a few per job), not by
// the transaction. Each transaction also writes the units' checkpoints
// (store::Session::WriteCheckpoint: unit -> fingerprint of its files' names, sizes and
// modification times) and the list of resources each unit wrote before it commits. A killed
// import restarted with the same command skips every committed unit whose fingerprint is
// unchanged and redoes the rest; a unit whose files changed since (new, replaced or removed
// messages) is imported again, and what it wrote before but no longer yields is deleted. A
// patient folder removed from the store is deleted from the database (its resources, then its
// checkpoint) once a walk of the whole store has completed. Resources whose type is not tied
// to a patient (SharedResourceTypes: an insurer's Organization) are never deleted that way.
// A resource whose content equals its current version is not written again (no new version).
//
// Encounters across units: the converter merges the ADT messages of one stay within a unit; the
// importer also keeps every Encounter version it imported (with its merge time: SS-MIX2 発生日時,
// else MSH-7) in a side table (import_unit_resources, source "import:encounter-versions") and
// writes the merge of the versions of every unit, so a stay imported over several runs (an HL7 v2
// file per message, a delta SS-MIX2 root, in any order) equals one import of all its messages.
// A unit imported again replaces its versions; a unit that no longer yields the Encounter
// withdraws them. A deleted SS-MIX2 key (flag 0) or an HL7 v2 cancel message (A13 …) withdraws
// only its own message's contribution (the key's version is replaced by its flag-0 file's cancel
// message, or by a withdrawal line that is kept, so the deletion is remembered whichever unit is
// imported or redone later); the Encounter is deleted only when no live version is left
// (docs/decisions/0012-import-encounter-versions.md, 0013-adt-cancels.md).
//
// Deletes and updates across units: a key that was deleted, or that a second unit writes (the
// same patient folder in two roots, a delta root's replaced record, an HL7 v2 file of a patient
// a root holds), is remembered per resource key (side table source "import:deletes": per unit a
// delete or a PUT with its JSON, with the merge time), and the newest decides, so a unit
// imported or redone later whose message is older writes nothing over the newer state; a unit
// that no longer yields the key drops its line and the resource comes back from (or stays with)
// the unit that still yields it (docs/decisions/0019-import-deletes.md,
// 0020-import-newest-wins.md). Keys of a unit no other unit shares a patient folder with are
// written as before.
//
// Bad input never aborts the import: a resource the gateway refuses (its validator) is left
// out with an `import.rejected` error (location: the source file, record Type/id; the
// validator's own issues before it) and its source file is kept for replay in the reject
// directory (RejectStore), as is every file whose conversion reported an error; the rest of the
// unit is stored. Only operational failures (the database fails) stop the import (an error
// result); rerunning resumes it.
//
// Issue codes besides the converter's, the SS-MIX2 reader's and the validator's:
//   import.rejected        error    the gateway refused a converted resource
//   import.unusable_input  error    a file given as input is not HL7 v2 / not readable
//   import.store_empty     warning  a store that was imported before has no patient folder now:
//                                   nothing is deleted (an unmounted or emptied root)
// Not thread-safe (one call at a time; the importer runs its own threads).
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"
#include "kakehashi/mapping/converter.hpp"
#include "kakehashi/mapping/rule_set.hpp"

#include <csignal>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace kakehashi::app {

struct ImportOptions {
  mapping::MapOptions map;
  // Rejected input is kept here (created when needed); empty: not kept.
  std::filesystem::path reject_dir;
  // Whole units are grouped into one transaction until it holds at least this many resources.
  std::size_t chunk_resources = 1000;
  // Worker threads converting and preparing units; 0: the number of hardware threads.
  std::size_t jobs = 0;
  // SS-MIX2 stores: threads that read patient folders ahead of the workers (list them, preload
  // their files, take the fingerprint), as `kakehashi convert --io-threads` does
  // (gateway/app/read_ahead.hpp, docs/decisions/0018); 0: the walk reads them one at a time.
  // The result does not depend on it. The files of a unit to convert are read together through
  // the SS-MIX2 reader's batch path (StorageReader::Load: inode order, one io_uring submission
  // per patient, docs/decisions/0021) by those threads, else by the walk; `io_uring` false:
  // plain read(2) calls instead (`--io-uring off`; the same bytes).
  std::size_t io_threads = 0;
  bool io_uring = true;
  bool progress = false;         // progress line on stderr
  std::string label = "import";  // progress/summary prefix: "kakehashi <label>: …"
  // Names the conversion settings (profile, facility, rule and terminology sources): mixed into
  // every unit's fingerprint, so changing them imports every unit again (updates in place).
  std::string settings;
  // Test hook (simulated interruption): stop once this many units have been committed in this
  // run (0 = never). Stats().stopped tells that it happened.
  std::size_t stop_after_units = 0;
  // Polled between units (e.g. set from a SIGINT handler): when it becomes non-zero the pending
  // transaction is committed and the import stops; Stats().stopped is then true. May be null.
  const volatile std::sig_atomic_t* cancel = nullptr;
};

struct ImportStats {
  std::size_t units = 0;          // units imported (committed) in this run
  std::size_t skipped_units = 0;  // units already imported with the same fingerprint
  std::size_t files = 0;          // files converted
  std::size_t messages = 0;       // messages mapped
  std::size_t transactions = 0;   // committed transactions
  std::size_t rejected = 0;       // resources the store refused
  std::size_t unchanged = 0;      // resources whose current version already had the content
  std::size_t removed_units = 0;  // units gone from their store: their resources deleted
  std::size_t jobs = 0;           // worker threads used
  // Checkpoint rows read to find the other SS-MIX2 roots' units of the patient folders imported
  // (one indexed read per folder when the database holds another root): a probe for tests that
  // this does not grow with the number of roots imported before.
  std::size_t peer_checkpoint_rows = 0;
  // Lines of those units' resource lists read (of an HL7 v2 file spanning several patients only
  // the lines of the folder's patient) and lookups of a key in them: probes for tests that an
  // import stays linear in the patients of a batch file.
  std::size_t peer_list_lines = 0;
  std::size_t peer_lookups = 0;
  std::map<std::string, std::size_t> put_by_type;      // resources written (new versions)
  std::map<std::string, std::size_t> deleted_by_type;  // resources deleted
  bool stopped = false;                                // stop_after_units reached, or cancelled
};

class Importer {
 public:
  // `handler` must write to `store`. `rules` must outlive the importer.
  Importer(const gateway::Handler& handler, gateway::store::Store& store,
           const mapping::RuleSet& rules, ImportOptions options, IssueSink& issues);
  ~Importer();
  Importer(const Importer&) = delete;
  Importer& operator=(const Importer&) = delete;

  // Imports a standardized-storage root (the folder holding the 3-character ID folders).
  // `label` (several roots: the root as the operator gave it) names the root in issue locations,
  // "ssmix2:<label>/<root-relative path>" (StorageReader::LabelRoot, decisions 0003, 0017);
  // empty: root-relative. It changes no checkpoint and no resource.
  // Errors: common::errc::kNotFound (root missing), kIoError (a folder cannot be listed),
  // store errors (the database failed; rerun to resume).
  Result<void> ImportStore(const std::filesystem::path& root, const std::string& label = {});

  // Imports one HL7 v2 file (one or more messages), or one file inside an SS-MIX2 store (its
  // sibling versions decide update/delete). A file that is not HL7 v2 is an
  // import.unusable_input issue, not an error result.
  Result<void> ImportFile(const std::filesystem::path& file);

  const ImportStats& Stats() const;
  // Seconds since construction.
  double Seconds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The default ImportOptions::io_threads of `kakehashi import` and `serve --load`: convert's
// --io-threads default (docs/decisions/0018-convert-read-ahead.md).
inline constexpr std::size_t kDefaultImportIoThreads = 8;

// The label of an SS-MIX2 root named `given` on the command line, for issue locations when
// several roots are read (decision 0017): as given, trailing '/' dropped. `convert`, `import`
// and `serve --load` all label their roots with it (Importer::ImportStore, LabelRoot).
std::string RootLabel(std::string given);

// The default ImportOptions::chunk_resources for a --db URL: 10,000 on SQLite (fewer, larger
// transactions write each touched page to the WAL fewer times), 1,000 on PostgreSQL (each
// resource written holds a transaction-scoped advisory lock; the server's lock table holds
// max_locks_per_transaction x max_connections, 6,400 by default).
std::size_t DefaultImportChunk(std::string_view db);

// "sqlite:PATH" (creating PATH's folder) or "postgresql://…": the store for an import. Prints a
// one-line reason on stderr and returns null when the database cannot be opened.
std::unique_ptr<gateway::store::Store> OpenImportStore(const std::string& db, const char* command);

// The write validator `kakehashi serve` and `kakehashi import` give the Handler: conformance/
// against the R4 base definitions (references are not resolved: their targets are in the store).
// Empty when the conformance module is not built.
gateway::Validator ConformanceValidator();

// Resource types whose ids are tied neither to a patient nor to a stored file (their id rule
// reads no PID field, no patient-ID system and not the source), e.g. the insurer's
// Organization: they repeat across patient folders. `kakehashi convert` remembers them across
// units; the importer never deletes them on behalf of one unit.
std::set<std::string> SharedResourceTypes(const mapping::RuleSet& rules);

}  // namespace kakehashi::app
