#include "kakehashi/mapping/coding_binder.hpp"

#include "kakehashi/terminology/concepts.hpp"
#include "kakehashi/terminology/loaders.hpp"

#include <algorithm>
#include <optional>

namespace kakehashi::mapping {
namespace {

using fhir::Node;
namespace term = kakehashi::terminology;

constexpr std::string_view kHot9 = "http://medis.or.jp/CodeSystem/master-HOT9";
constexpr std::string_view kYj = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
constexpr std::string_view kReceiptDrug = "urn:oid:1.2.392.100495.20.1.71";
constexpr std::string_view kOidPrefix = "urn:oid:";
constexpr std::string_view kV2TablePrefix = "http://terminology.hl7.org/CodeSystem/v2-";

// Whether `s` is already the spelling CodeSystemRegistry::Spell gives `info` for `target`
// (checked without building the string: the common case is "already right").
bool SpelledAs(const term::CodeSystemInfo& info, term::ProfileSet target, std::string_view s) {
  auto is_oid = [&](const std::string& oid) {
    return s.size() == kOidPrefix.size() + oid.size() &&
           s.substr(0, kOidPrefix.size()) == kOidPrefix && s.substr(kOidPrefix.size()) == oid;
  };
  switch (target) {
    case term::ProfileSet::kJpCore120:
    case term::ProfileSet::kJpClins: return !info.url.empty() ? s == info.url : is_oid(info.oid);
    case term::ProfileSet::kJpCore112: return !info.oid.empty() ? is_oid(info.oid) : s == info.url;
    case term::ProfileSet::kCda: break;
  }
  return false;
}

bool IsCoding(const Node& node) {
  const Node* system = node.Find("system");
  const Node* code = node.Find("code");
  // Quantity also has system + code; it has a value.
  return system != nullptr && system->IsString() && code != nullptr && code->IsString() &&
         node.Find("value") == nullptr;
}

bool Usable(const term::Mapping& m, term::ProfileSet target) {
  return (m.version.empty() || m.version == term::ToString(target)) &&
         m.equivalence != "unmatched" && m.equivalence != "disjoint" && !m.target_code.empty();
}

}  // namespace

struct CodingBinder::Walk {
  const CodingBinder& binder;
  const Location& base;
  IssueSink& issues;
  MessageState& state;
  std::string path;
  std::string scratch;  // canonical of a system outside the registry (valid until the next coding)

  Location Where() const {
    Location where = base;
    where.fhir_path = path;
    return where;
  }

  // Reports `code` once per message for `key`.
  bool FirstTime(std::string_view code, std::string_view key) {
    std::string k(code);
    k += '\x1f';
    k += key;
    if (std::find(state.reported.begin(), state.reported.end(), k) != state.reported.end()) {
      return false;
    }
    state.reported.push_back(std::move(k));
    return true;
  }

  // Whether a master defining `kind`'s systems was loaded (a site ConceptMap naming JLAC10 targets
  // makes those codes known, not the JLAC10 master). The HOT master and the 支払基金 drug master
  // both define the drug systems.
  bool MasterLoaded(term::MasterKind kind) const {
    const term::TerminologyStore* store = binder.store_;
    if (store == nullptr) return false;
    if (store->IsLoaded(term::ToString(kind))) return true;
    const bool drug = kind == term::MasterKind::kHot || kind == term::MasterKind::kSskDrug;
    return drug && (store->IsLoaded("hot") || store->IsLoaded("ssk-drug"));
  }

  // registry_.Find, remembered per message.
  const term::CodeSystemInfo* FindSystem(std::string_view spelling) {
    for (const auto& [seen, info] : state.systems) {
      if (seen == spelling) return info;
    }
    const term::CodeSystemInfo* info = binder.registry_.Find(spelling);
    if (state.systems.size() < kMaxRememberedSystems) state.systems.emplace_back(spelling, info);
    return info;
  }
  static constexpr std::size_t kMaxRememberedSystems = 16;

  // Steps 1-2 of the header on one Coding. Returns the canonical system ("" when unknown to the
  // registry: such systems were reported by the mapper and are left as they are). Sets
  // *replaced_display to the source display when the master's display replaced it.
  std::string_view BindOne(Node& coding, std::string* replaced_display) {
    Node* system = coding.Find("system");
    const std::string_view code = coding.Find("code")->Text();
    const term::CodeSystemInfo* info = FindSystem(system->Text());
    if (info == nullptr) {
      // Already-canonical local and HL7 v2 table URIs (the mapper writes these): no allocation.
      const std::string_view text = system->Text();
      if (text.rfind(term::kLocalSystemPrefix, 0) == 0 || text.rfind(kV2TablePrefix, 0) == 0) {
        return text;
      }
      term::NormalizedSystem n = binder.registry_.Normalize(system->Text());
      if (n.match == term::SystemMatch::kKnown) {
        info = n.info;
      } else {
        // Local ("99LAB" -> urn:kakehashi:code-system:99LAB) and HL7 v2 table systems: no
        // spelling to change and no master, but a site ConceptMap may translate them.
        const bool local = n.match == term::SystemMatch::kLocal ||
                           n.match == term::SystemMatch::kHl7v2Table ||
                           system->Text().rfind(term::kLocalSystemPrefix, 0) == 0;
        if (!local) return {};
        scratch = std::move(n.canonical);
        return scratch;
      }
    }
    std::string_view canonical = info->canonical;
    if (std::string_view home = term::RehomeByCodeShape(canonical, code); home != canonical) {
      if (const term::CodeSystemInfo* rehomed = binder.registry_.Find(home)) {
        if (FirstTime("mapping.rehomed", path)) {
          issues.Info("mapping.rehomed", Where(),
                      "the code's shape belongs to another code system than the one the message "
                      "names; the coding was re-homed (eprescription.md §5)");
        }
        info = rehomed;
        canonical = info->canonical;
      }
    }
    if (!SpelledAs(*info, binder.target_, system->Text())) {
      *system = Node::String(binder.registry_.Spell(canonical, binder.target_));
    }
    const term::Concept* concept_found =
        binder.store_ != nullptr ? binder.store_->Find(canonical, code) : nullptr;
    if (concept_found != nullptr) {
      if (!concept_found->display.empty()) {
        Node* display = coding.Find("display");
        if (display == nullptr) {
          coding.Set("display", Node::String(concept_found->display));
        } else if (display->Text() != concept_found->display) {
          *replaced_display = display->Text();
          *display = Node::String(concept_found->display);
        }
      }
    } else if (auto kind_of = term::MasterKindOf(canonical)) {
      const bool loaded = MasterLoaded(*kind_of);
      const char* issue_code = loaded ? "mapping.code_not_in_master" : "mapping.master_not_loaded";
      if (FirstTime(issue_code, canonical)) {
        const std::string kind(term::ToString(*kind_of));
        if (!issues.Keeps(Severity::kWarning)) {  // only counted: no location or message
          issues.CountOnly(Severity::kWarning, issue_code, base.field);
        } else if (loaded) {
          issues.Warning("mapping.code_not_in_master", Where(),
                         "a code of " + info->title + " is not in the loaded " + kind +
                             " master (outdated master or local code); code and text kept");
        } else {
          issues.Warning("mapping.master_not_loaded", Where(),
                         "the " + kind + " master defining " + info->title +
                             " is not loaded (kakehashi terminology load " + kind +
                             " FILE, then convert --terminology); code and text kept as given");
        }
      }
    }
    return canonical;
  }

  // The translations of one (canonical) coding, appended to `out`.
  void Translations(std::string_view canonical, std::string_view code, std::vector<Node>& out) {
    const term::TerminologyStore& store = *binder.store_;
    auto add = [&](std::string_view system, const std::string& target_code,
                   const std::string& display) {
      Node coding = Node::Object();
      coding.Set("system", Node::String(binder.registry_.Spell(system, binder.target_)));
      coding.Set("code", Node::String(target_code));
      std::string shown = display;
      if (const term::Concept* c = store.Find(system, target_code); c != nullptr) {
        if (!c->display.empty()) shown = c->display;
      }
      if (!shown.empty()) coding.Set("display", Node::String(std::move(shown)));
      out.push_back(std::move(coding));
    };
    if (const auto* from = store.MappingsFrom(canonical, code)) {
      for (const term::Mapping* m : *from) {
        if (m->source.rfind("conceptmap:", 0) != 0 || !Usable(*m, binder.target_)) continue;
        add(m->target_system, m->target_code, m->target_display);
      }
    }
    if (canonical == kYj || canonical == kReceiptDrug) {
      // The HOT master maps HOT9 -> YJ / レセ電; read it backwards.
      if (const auto* to = store.MappingsTo(canonical, code)) {
        const term::Mapping* only = nullptr;
        bool ambiguous = false;
        for (const term::Mapping* m : *to) {
          if (m->source != "hot" || m->source_system != kHot9) continue;
          if (only != nullptr && only->source_code != m->source_code) ambiguous = true;
          only = m;
        }
        if (ambiguous) {
          if (FirstTime("mapping.translation_ambiguous", path)) {
            issues.Info("mapping.translation_ambiguous", Where(),
                        "the HOT master names several HOT9 codes for this drug code; no HOT9 "
                        "coding was added");
          }
        } else if (only != nullptr) {
          const term::Concept* c = store.Find(kHot9, only->source_code);
          add(kHot9, only->source_code, c != nullptr ? c->display : std::string());
        }
      }
    }
  }

  // A CodeableConcept (an object with a "coding" array).
  void BindConcept(Node& concept_node) {
    Node* coding = concept_node.Find("coding");
    std::string source_text;
    std::vector<Node> added;
    const std::size_t count = coding->Size();
    for (std::size_t i = 0; i < count; ++i) {
      Node& c = coding->Child(i);
      if (!c.IsObject() || !IsCoding(c)) continue;
      std::string replaced;
      std::string_view canonical = BindOne(c, &replaced);
      if (source_text.empty()) source_text = std::move(replaced);
      if (!canonical.empty() && binder.store_ != nullptr) {
        Translations(canonical, c.Find("code")->Text(), added);
      }
    }
    for (auto& a : added) {
      const std::string_view system = a.Find("system")->Text();
      const std::string_view code = a.Find("code")->Text();
      bool present = false;
      for (const auto& c : coding->Items()) {
        const Node* s = c.Find("system");
        const Node* k = c.Find("code");
        present =
            present || (s != nullptr && k != nullptr && s->Text() == system && k->Text() == code);
      }
      if (!present) coding->Push(std::move(a));
    }
    if (!source_text.empty() && concept_node.Find("text") == nullptr) {
      concept_node.Set("text", Node::String(std::move(source_text)));
    }
  }

  void Visit(Node& node) {
    if (node.IsArray()) {
      for (std::size_t i = 0; i < node.Size(); ++i) Visit(node.Child(i));
      return;
    }
    if (!node.IsObject()) return;
    // One scan over the members (this runs for every object of every resource).
    bool coding = false, system = false, code = false, value = false, nested = false;
    for (std::size_t i = 0; i < node.Size(); ++i) {
      const std::string_view key = node.Key(i);
      const Node& child = node.Child(i);
      nested = nested || child.IsObject() || child.IsArray();
      if (key.size() < 4 || key.size() > 6) continue;
      // string_view compares: the length first, no strlen per member.
      const std::string_view k(key);
      if (k == std::string_view("coding")) {
        coding = child.IsArray();
      } else if (k == std::string_view("system")) {
        system = child.IsString();
      } else if (k == std::string_view("code")) {
        code = child.IsString();
      } else if (k == std::string_view("value")) {
        value = true;  // Quantity: system + code + value is not a Coding
      }
    }
    if (coding) {
      BindConcept(node);
    } else if (system && code && !value) {
      std::string replaced;
      BindOne(node, &replaced);  // a lone Coding has no text to keep the source display in
    }
    if (!nested) return;
    for (std::size_t i = 0; i < node.Size(); ++i) {
      Node& child = node.Child(i);
      if (!child.IsObject() && !child.IsArray()) continue;
      if (coding && std::string_view(node.Key(i)) == std::string_view("coding")) continue;
      const std::size_t len = path.size();
      path += '.';
      path += node.Key(i);
      Visit(child);
      path.resize(len);
    }
  }
};

void CodingBinder::Bind(fhir::Node& resource, const Location& base, IssueSink& issues,
                        MessageState& state) const {
  Walk walk{*this, base, issues, state, std::string(resource.ResourceType()), {}};
  walk.Visit(resource);
}

}  // namespace kakehashi::mapping
