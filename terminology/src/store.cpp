#include "kakehashi/terminology/store.hpp"

#include "kakehashi/terminology/code_table.hpp"
#include "kakehashi/terminology/errc.hpp"
#include "sql_database.hpp"

#include <algorithm>

namespace kakehashi::terminology {
namespace {}  // namespace

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

const Concept* TerminologyStore::Find(std::string_view system, std::string_view code) const {
  auto bucket = concepts_.find(system);
  if (bucket == concepts_.end()) return nullptr;
  auto it = bucket->second.find(code);
  return it == bucket->second.end() ? nullptr : &it->second;
}

bool TerminologyStore::HasSystem(std::string_view system) const {
  auto bucket = concepts_.find(system);
  return bucket != concepts_.end() && !bucket->second.empty();
}

std::size_t TerminologyStore::ConceptCount(std::string_view system) const {
  auto bucket = concepts_.find(system);
  return bucket == concepts_.end() ? 0 : bucket->second.size();
}

const std::vector<const Mapping*>* TerminologyStore::MappingsFrom(std::string_view system,
                                                                  std::string_view code) const {
  auto s = forward_.find(system);
  if (s == forward_.end()) return nullptr;
  auto c = s->second.find(code);
  return c == s->second.end() ? nullptr : &c->second;
}

const std::vector<const Mapping*>* TerminologyStore::MappingsTo(std::string_view system,
                                                                std::string_view code) const {
  auto s = reverse_.find(system);
  if (s == reverse_.end()) return nullptr;
  auto c = s->second.find(code);
  return c == s->second.end() ? nullptr : &c->second;
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
