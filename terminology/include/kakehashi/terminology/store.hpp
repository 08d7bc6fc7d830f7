// TerminologyStore: CodeSystem / ConceptMap content in a database (SQLite: file or in-memory) with
// a warm in-process cache that answers (system, code) lookups without touching the database.
//
// Content comes from three places:
//   1. built-in code tables (terminology/tables/*.tsv, compiled in) and the site override
//      directory (Options::site_tables) — cache only, never written to the database;
//   2. masters loaded with Put() (loaders.hpp: HOT, MEDIS, JLAC10, ICD-10, site ConceptMaps) —
//      written to the database in one transaction per load, replacing an earlier load of the same
//      `source`, and kept in the cache;
//   3. on Open(), everything already in the database.
//
// Database URLs: "sqlite::memory:", "sqlite:PATH" (directories are created). The schema is
// portable SQL (docs/terminology.md "Database"); "postgresql://…" is errc::kUnsupportedDb in this
// build (the PostgreSQL backend is the gateway's; the same DDL runs there).
//
// Thread-safety: lookups (const members) may run concurrently (with Options::preload = false they
// serialise on a mutex while reading the database); Put()/Reload() need exclusive access.
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/concepts.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kakehashi::terminology {

// One `load` as recorded in the database.
struct LoadRecord {
  std::string kind;     // "hot", "medis-disease", ...
  std::string source;   // identity replaced by a later load (the kind, or "conceptmap:<name>")
  std::string file;     // file name as given (no directories)
  std::string version;  // master version when known (file name / 更新年月日), else ""
  std::size_t concepts = 0;
  std::size_t mappings = 0;
  std::string loaded_at;  // ISO 8601 UTC
};

struct StoreStats {
  std::map<std::string, std::size_t> concepts_by_system;  // canonical system -> count
  std::map<std::string, std::size_t> mappings_by_map;     // ConceptMap URL -> count
  std::vector<LoadRecord> loads;
  std::size_t builtin_tables = 0;
};

class SqlDatabase;  // private (src/sql_database.hpp)

class TerminologyStore {
 public:
  struct Options {
    std::string db = "sqlite::memory:";
    std::filesystem::path site_tables;  // override directory for built-in tables; may be empty
    bool builtin_tables = true;         // false: start empty (benchmarks, tests)
    // true (default): Open() reads every concept and mapping of the database into the cache (the
    // CLI, $expand, the gateway). false: they are read on first use of each (system, code) and
    // kept, so memory follows what the caller asks for (`kakehashi convert` binding codings: a
    // full HOT master preloaded is ~670 MB). Lookups then take a lock; Stats(), ConceptCount()
    // and ForEachConcept() see only the built-in tables and what was read so far. Two indexes
    // (term_mapping by source and by target) are created on first open in this mode.
    bool preload = true;
  };

  // Opens (creating the schema when needed), loads built-in/site tables and the database content
  // into the cache. errc::kUnsupportedDb, kDatabase, kTableSyntax (issues say where), kIoError.
  static Result<std::unique_ptr<TerminologyStore>> Open(const Options& options,
                                                        const CodeSystemRegistry& registry,
                                                        IssueSink& issues);
  ~TerminologyStore();
  TerminologyStore(const TerminologyStore&) = delete;
  TerminologyStore& operator=(const TerminologyStore&) = delete;

  // Writes `content` under record.source (replacing what an earlier load with the same source
  // wrote) and refreshes the cache (content is moved into it). Systems must be canonical.
  // errc::kDatabase.
  Result<void> Put(TerminologyContent content, LoadRecord record);

  // Cache lookups; `system` must be canonical (CodeSystemRegistry::Normalize). Never allocate.
  const Concept* Find(std::string_view system, std::string_view code) const;
  bool HasSystem(std::string_view system) const;  // at least one concept is known
  std::size_t ConceptCount(std::string_view system) const;
  // Mappings whose source (or, for MappingsTo, target) is (system, code); nullptr when none.
  const std::vector<const Mapping*>* MappingsFrom(std::string_view system,
                                                  std::string_view code) const;
  const std::vector<const Mapping*>* MappingsTo(std::string_view system,
                                                std::string_view code) const;
  // Every concept of `system`, in unspecified order.
  void ForEachConcept(std::string_view system, const std::function<void(const Concept&)>& fn) const;

  // Whether a master of this kind has been loaded (LoadRecord.kind).
  bool IsLoaded(std::string_view kind) const;
  StoreStats Stats() const;
  const CodeSystemRegistry& Registry() const { return registry_; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const {  // not noexcept: nodes cache the hash
      return std::hash<std::string_view>{}(s);
    }
  };
  template <class V>
  using Map = std::unordered_map<std::string, V, Hash, std::equal_to<>>;
  using Bucket = Map<Concept>;
  using MapIndex = Map<Map<std::vector<const Mapping*>>>;

  TerminologyStore(const CodeSystemRegistry& registry, std::unique_ptr<SqlDatabase> db);
  Result<void> Reload(IssueSink& issues);
  Result<void> ReloadLoads();  // loads_ from term_load
  void AddToCache(Concept concept_value);
  void AddToCache(Mapping mapping);

  struct Lazy;  // src/store.cpp: the read-on-first-use layer of Options::preload = false
  const Concept* TableFind(std::string_view system, std::string_view code) const;
  template <class Index>
  static const std::vector<const Mapping*>* Lookup(const Index& index, std::string_view system,
                                                   std::string_view code);

  const CodeSystemRegistry& registry_;
  std::unique_ptr<SqlDatabase> db_;
  std::unique_ptr<Lazy> lazy_;  // null when preloading
  Options options_;
  std::vector<TerminologyContent> tables_;  // parsed built-in/site tables, re-added on Reload()
  Map<Bucket> concepts_;
  std::vector<std::unique_ptr<Mapping>> mappings_;
  MapIndex forward_;
  MapIndex reverse_;
  std::vector<LoadRecord> loads_;
};

}  // namespace kakehashi::terminology
