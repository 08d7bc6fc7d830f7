#include "kakehashi/terminology/store.hpp"

#include "kakehashi/terminology/code_table.hpp"
#include "kakehashi/terminology/errc.hpp"
#include "sql_database.hpp"

#include <algorithm>
#include <mutex>
#include <optional>

namespace kakehashi::terminology {
namespace {

constexpr std::string_view kMappingColumns =
    "SELECT map_url, source_system, source_code, target_system, target_code, target_display, "
    "equivalence, version, comment, source FROM term_mapping ";

Mapping MappingFromRow(const std::vector<std::string_view>& r) {
  Mapping m;
  m.map = r[0];
  m.source_system = r[1];
  m.source_code = r[2];
  m.target_system = r[3];
  m.target_code = r[4];
  m.target_display = r[5];
  m.equivalence = r[6];
  m.version = r[7];
  m.comment = r[8];
  m.source = r[9];
  return m;
}

bool SameMapping(const Mapping& a, const Mapping& b) {
  return a.map == b.map && a.source_system == b.source_system && a.source_code == b.source_code &&
         a.target_system == b.target_system && a.target_code == b.target_code &&
         a.version == b.version;
}

}  // namespace

// Options::preload = false: what was read from the database, per (system, code), including what
// is known to be absent. Node-based maps keep the addresses handed out stable.
struct TerminologyStore::Lazy {
  std::mutex mu;
  Map<Map<std::optional<Concept>>> concepts;
  Map<bool> systems;  // HasSystem() answers for the database part
  std::vector<std::unique_ptr<Mapping>> owned;
  MapIndex forward;  // merged with the tables' mappings; a key present = already looked up
  MapIndex reverse;
  void Clear() {
    concepts.clear();
    systems.clear();
    forward.clear();
    reverse.clear();
    owned.clear();
  }
};

TerminologyStore::TerminologyStore(const CodeSystemRegistry& registry,
                                   std::unique_ptr<SqlDatabase> db)
    : registry_(registry), db_(std::move(db)) {}

TerminologyStore::~TerminologyStore() = default;

Result<std::unique_ptr<TerminologyStore>> TerminologyStore::Open(const Options& options,
                                                                 const CodeSystemRegistry& registry,
                                                                 IssueSink& issues) {
  KAKEHASHI_TRY(auto db, SqlDatabase::Open(options.db));
  std::unique_ptr<TerminologyStore> store(new TerminologyStore(registry, std::move(db)));
  store->options_ = options;
  if (!options.preload) {
    store->lazy_ = std::make_unique<Lazy>();
    // Lookups by source and by target (the primary key starts with the map URL). Best effort: a
    // read-only database still answers, by table scans.
    (void)store->db_->Exec(
        "CREATE INDEX IF NOT EXISTS term_mapping_by_source ON term_mapping (source_system, "
        "source_code);\n"
        "CREATE INDEX IF NOT EXISTS term_mapping_by_target ON term_mapping (target_system, "
        "target_code);");
  }
  if (options.builtin_tables || !options.site_tables.empty()) {
    std::vector<CodeTable> tables;
    if (options.builtin_tables) {
      KAKEHASHI_TRY(tables, LoadCodeTables(registry, options.site_tables, issues));
    }
    for (const CodeTable& t : tables) store->tables_.push_back(t.ToContent());
  }
  KAKEHASHI_TRY_VOID(store->Reload(issues));
  return store;
}

Result<void> TerminologyStore::Reload(IssueSink& /*issues*/) {
  concepts_.clear();
  mappings_.clear();
  forward_.clear();
  reverse_.clear();
  loads_.clear();
  for (const TerminologyContent& t : tables_) {
    for (const Concept& c : t.concepts) AddToCache(c);
    for (const Mapping& m : t.mappings) AddToCache(m);
  }
  if (lazy_) {
    std::lock_guard<std::mutex> lock(lazy_->mu);
    lazy_->Clear();
    return ReloadLoads();
  }
  // Database content after the tables: a loaded master's display wins over a table's.
  KAKEHASHI_TRY_VOID(
      db_->Query("SELECT system, code, display, active, version, source FROM term_concept", {},
                 [&](const std::vector<std::string_view>& r) {
                   Concept c;
                   c.system = r[0];
                   c.code = r[1];
                   c.display = r[2];
                   c.active = r[3] != "false";
                   c.version = r[4];
                   c.source = r[5];
                   AddToCache(std::move(c));
                 }));
  KAKEHASHI_TRY_VOID(
      db_->Query("SELECT system, code, property, value FROM term_property", {},
                 [&](const std::vector<std::string_view>& r) {
                   auto bucket = concepts_.find(r[0]);
                   if (bucket == concepts_.end()) return;
                   auto concept_it = bucket->second.find(r[1]);
                   if (concept_it == bucket->second.end()) return;
                   concept_it->second.properties.push_back({std::string(r[2]), std::string(r[3])});
                 }));
  KAKEHASHI_TRY_VOID(db_->Query(
      "SELECT map_url, source_system, source_code, target_system, target_code, target_display, "
      "equivalence, version, comment, source FROM term_mapping",
      {}, [&](const std::vector<std::string_view>& r) {
        Mapping m;
        m.map = r[0];
        m.source_system = r[1];
        m.source_code = r[2];
        m.target_system = r[3];
        m.target_code = r[4];
        m.target_display = r[5];
        m.equivalence = r[6];
        m.version = r[7];
        m.comment = r[8];
        m.source = r[9];
        AddToCache(std::move(m));
      }));
  return ReloadLoads();
}

Result<void> TerminologyStore::ReloadLoads() {
  KAKEHASHI_TRY_VOID(
      db_->Query("SELECT source, kind, file, version, concepts, mappings, loaded_at FROM term_load "
                 "ORDER BY source",
                 {}, [&](const std::vector<std::string_view>& r) {
                   LoadRecord l;
                   l.source = r[0];
                   l.kind = r[1];
                   l.file = r[2];
                   l.version = r[3];
                   l.concepts = std::stoul(std::string(r[4]));
                   l.mappings = std::stoul(std::string(r[5]));
                   l.loaded_at = r[6];
                   loads_.push_back(std::move(l));
                 }));
  return {};
}

void TerminologyStore::AddToCache(Concept c) {
  Bucket& bucket = concepts_[c.system];
  auto it = bucket.find(c.code);
  if (it == bucket.end()) {
    std::string code = c.code;
    bucket.emplace(std::move(code), std::move(c));
    return;
  }
  // Merge: a non-empty display replaces; properties accumulate without duplicates.
  Concept& existing = it->second;
  if (!c.display.empty()) {
    existing.display = std::move(c.display);
    existing.active = c.active;
    existing.version = std::move(c.version);
    existing.source = std::move(c.source);
  }
  for (Property& p : c.properties) {
    if (std::find(existing.properties.begin(), existing.properties.end(), p) ==
        existing.properties.end()) {
      existing.properties.push_back(std::move(p));
    }
  }
}

void TerminologyStore::AddToCache(Mapping m) {
  auto owned = std::make_unique<Mapping>(std::move(m));
  const Mapping* p = owned.get();
  auto& fwd = forward_[p->source_system][p->source_code];
  for (const Mapping* other : fwd) {
    if (other->map == p->map && other->target_system == p->target_system &&
        other->target_code == p->target_code && other->version == p->version) {
      return;  // duplicate (HOT rows repeat HOT9 -> YJ pairs across packages)
    }
  }
  fwd.push_back(p);
  reverse_[p->target_system][p->target_code].push_back(p);
  mappings_.push_back(std::move(owned));
}

Result<void> TerminologyStore::Put(TerminologyContent content, LoadRecord record) {
  KAKEHASHI_TRY_VOID(db_->Exec("BEGIN"));
  auto body = [&]() -> Result<void> {
    const std::vector<std::string_view> src{record.source};
    KAKEHASHI_TRY_VOID(db_->Query(kDeleteConcepts, src, {}));
    KAKEHASHI_TRY_VOID(db_->Query(kDeleteProperties, src, {}));
    KAKEHASHI_TRY_VOID(db_->Query(kDeleteMappings, src, {}));
    KAKEHASHI_TRY(auto ins_concept, db_->Prepare(kInsertConcept));
    KAKEHASHI_TRY(auto ins_property, db_->Prepare(kInsertProperty));
    KAKEHASHI_TRY(auto ins_mapping, db_->Prepare(kInsertMapping));
    for (const Concept& c : content.concepts) {
      KAKEHASHI_TRY(int changed,
                    ins_concept->Run({c.system, c.code, c.display, c.active ? "true" : "false",
                                      c.version, record.source}));
      (void)changed;
      for (const Property& p : c.properties) {
        KAKEHASHI_TRY(int added,
                      ins_property->Run({c.system, c.code, p.code, p.value, record.source}));
        (void)added;
      }
    }
    // Duplicate mappings (HOT repeats HOT9 -> YJ pairs) are skipped by ON CONFLICT DO NOTHING.
    std::size_t mappings_written = 0;
    for (const Mapping& m : content.mappings) {
      KAKEHASHI_TRY(
          int added,
          ins_mapping->Run({m.map, m.source_system, m.source_code, m.target_system, m.target_code,
                            m.target_display, m.equivalence, m.version, m.comment, record.source}));
      mappings_written += static_cast<std::size_t>(added);
    }
    record.concepts = content.concepts.size();
    record.mappings = mappings_written;
    std::string concepts = std::to_string(record.concepts);
    std::string mappings = std::to_string(record.mappings);
    KAKEHASHI_TRY(auto upsert, db_->Prepare(kUpsertLoad));
    KAKEHASHI_TRY(int upserted,
                  upsert->Run({record.source, record.kind, record.file, record.version, concepts,
                               mappings, record.loaded_at}));
    (void)upserted;
    return {};
  };
  if (auto r = body(); !r) {
    (void)db_->Exec("ROLLBACK");
    return r.error();
  }
  KAKEHASHI_TRY_VOID(db_->Exec("COMMIT"));
  if (lazy_) {  // the content is in the database; forget what was read before
    NullSink sink;
    return Reload(sink);
  }
  bool replaced = std::any_of(loads_.begin(), loads_.end(),
                              [&](const LoadRecord& l) { return l.source == record.source; });
  if (replaced) {
    NullSink sink;
    return Reload(sink);  // drop the earlier load's rows from the cache
  }
  for (Concept& c : content.concepts) {
    c.source = record.source;
    AddToCache(std::move(c));
  }
  for (Mapping& m : content.mappings) {
    m.source = record.source;
    AddToCache(std::move(m));
  }
  loads_.push_back(std::move(record));
  return {};
}

const Concept* TerminologyStore::TableFind(std::string_view system, std::string_view code) const {
  auto bucket = concepts_.find(system);
  if (bucket == concepts_.end()) return nullptr;
  auto it = bucket->second.find(code);
  return it == bucket->second.end() ? nullptr : &it->second;
}

const Concept* TerminologyStore::Find(std::string_view system, std::string_view code) const {
  if (!lazy_) return TableFind(system, code);
  std::lock_guard<std::mutex> lock(lazy_->mu);
  if (auto s = lazy_->concepts.find(system); s != lazy_->concepts.end()) {
    if (auto c = s->second.find(code); c != s->second.end()) {
      return c->second ? &*c->second : TableFind(system, code);
    }
  }
  // First use: the table's concept (if any) with the database rows merged on top, as Reload()
  // merges them when preloading.
  std::optional<Concept> found;
  if (const Concept* table = TableFind(system, code)) found = *table;
  bool from_db = false;
  const std::vector<std::string_view> key{system, code};
  (void)db_->Query(
      "SELECT display, active, version, source FROM term_concept WHERE system = ? AND code = ?",
      key, [&](const std::vector<std::string_view>& r) {
        from_db = true;
        if (!found) {
          found.emplace();
          found->system = system;
          found->code = code;
        }
        if (!r[0].empty()) {
          found->display = r[0];
          found->active = r[1] != "false";
          found->version = r[2];
          found->source = r[3];
        }
      });
  if (from_db) {
    (void)db_->Query("SELECT property, value FROM term_property WHERE system = ? AND code = ?", key,
                     [&](const std::vector<std::string_view>& r) {
                       Property p{std::string(r[0]), std::string(r[1])};
                       if (std::find(found->properties.begin(), found->properties.end(), p) ==
                           found->properties.end()) {
                         found->properties.push_back(std::move(p));
                       }
                     });
  } else {
    found.reset();  // absent from the database: the table's own concept (or none) answers
  }
  auto& slot = lazy_->concepts[std::string(system)][std::string(code)];
  slot = std::move(found);
  return slot ? &*slot : TableFind(system, code);
}

bool TerminologyStore::HasSystem(std::string_view system) const {
  auto bucket = concepts_.find(system);
  if (bucket != concepts_.end() && !bucket->second.empty()) return true;
  if (!lazy_) return false;
  std::lock_guard<std::mutex> lock(lazy_->mu);
  if (auto it = lazy_->systems.find(system); it != lazy_->systems.end()) return it->second;
  bool any = false;
  (void)db_->Query("SELECT 1 FROM term_concept WHERE system = ? LIMIT 1", {system},
                   [&](const std::vector<std::string_view>&) { any = true; });
  lazy_->systems.emplace(std::string(system), any);
  return any;
}

std::size_t TerminologyStore::ConceptCount(std::string_view system) const {
  auto bucket = concepts_.find(system);
  return bucket == concepts_.end() ? 0 : bucket->second.size();
}

template <class Index>
const std::vector<const Mapping*>* TerminologyStore::Lookup(const Index& index,
                                                            std::string_view system,
                                                            std::string_view code) {
  auto s = index.find(system);
  if (s == index.end()) return nullptr;
  auto c = s->second.find(code);
  return c == s->second.end() ? nullptr : &c->second;
}

namespace {

// Reads the database mappings with (system, code) on one side into `into` (after the tables'),
// owned by `owned`; duplicates of a mapping already present are skipped.
void ReadMappings(SqlDatabase& db, bool by_source, std::string_view system, std::string_view code,
                  std::vector<const Mapping*>& into, std::vector<std::unique_ptr<Mapping>>& owned) {
  const std::string sql =
      std::string(kMappingColumns) + (by_source ? "WHERE source_system = ? AND source_code = ?"
                                                : "WHERE target_system = ? AND target_code = ?");
  (void)db.Query(sql, {system, code}, [&](const std::vector<std::string_view>& r) {
    auto m = std::make_unique<Mapping>(MappingFromRow(r));
    for (const Mapping* other : into) {
      if (SameMapping(*other, *m)) return;
    }
    into.push_back(m.get());
    owned.push_back(std::move(m));
  });
}

}  // namespace

const std::vector<const Mapping*>* TerminologyStore::MappingsFrom(std::string_view system,
                                                                  std::string_view code) const {
  if (!lazy_) return Lookup(forward_, system, code);
  std::lock_guard<std::mutex> lock(lazy_->mu);
  const std::vector<const Mapping*>* merged = Lookup(lazy_->forward, system, code);
  if (merged == nullptr) {
    auto& v = lazy_->forward[std::string(system)][std::string(code)];
    if (const auto* table = Lookup(forward_, system, code)) v = *table;
    ReadMappings(*db_, true, system, code, v, lazy_->owned);
    merged = &v;
  }
  return merged->empty() ? nullptr : merged;
}

const std::vector<const Mapping*>* TerminologyStore::MappingsTo(std::string_view system,
                                                                std::string_view code) const {
  if (!lazy_) return Lookup(reverse_, system, code);
  std::lock_guard<std::mutex> lock(lazy_->mu);
  const std::vector<const Mapping*>* merged = Lookup(lazy_->reverse, system, code);
  if (merged == nullptr) {
    auto& v = lazy_->reverse[std::string(system)][std::string(code)];
    if (const auto* table = Lookup(reverse_, system, code)) v = *table;
    ReadMappings(*db_, false, system, code, v, lazy_->owned);
    merged = &v;
  }
  return merged->empty() ? nullptr : merged;
}

void TerminologyStore::ForEachConcept(std::string_view system,
                                      const std::function<void(const Concept&)>& fn) const {
  auto bucket = concepts_.find(system);
  if (bucket == concepts_.end()) return;
  for (const auto& [code, c] : bucket->second) fn(c);
}

bool TerminologyStore::IsLoaded(std::string_view kind) const {
  return std::any_of(loads_.begin(), loads_.end(),
                     [&](const LoadRecord& l) { return l.kind == kind; });
}

StoreStats TerminologyStore::Stats() const {
  StoreStats s;
  for (const auto& [system, bucket] : concepts_) s.concepts_by_system[system] = bucket.size();
  for (const auto& m : mappings_) ++s.mappings_by_map[m->map];
  s.loads = loads_;
  s.builtin_tables = tables_.size();
  return s;
}

}  // namespace kakehashi::terminology
