// Lookups over the generated R4 tables (fhir/src/generated/r4_meta*.cpp).
#include "kakehashi/fhir/r4/meta.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace kakehashi::fhir::r4 {
namespace generated {
extern const TypeInfo kTypes[];
extern const std::size_t kTypeCount;
extern const ValueSetInfo kValueSets[];
extern const std::size_t kValueSetCount;
extern const std::string_view kSpecVersion;
extern const std::string_view kSourcePackage;
}  // namespace generated

namespace {

constexpr std::string_view kFhirPathSystem = "http://hl7.org/fhirpath/System.";

// A choice suffix names its type with the first letter capitalised ("valueQuantity",
// "effectiveDateTime"): http://hl7.org/fhir/R4/formats.html#choice.
bool SuffixMatches(std::string_view suffix, std::string_view code) {
  if (suffix.size() != code.size() || suffix.empty()) return false;
  const char first =
      code[0] >= 'a' && code[0] <= 'z' ? static_cast<char>(code[0] - 'a' + 'A') : code[0];
  return suffix[0] == first && suffix.substr(1) == code.substr(1);
}

// The specification's scan: the first element (in order) whose name, or typed choice name,
// is `json_name`. Used for TypeInfos outside the generated tables and to build the index.
const ElementInfo* FindElementLinear(std::span<const ElementInfo> elements,
                                     std::string_view json_name, std::string_view* choice_type) {
  for (const ElementInfo& element : elements) {
    if (!element.is_choice) {
      if (element.name == json_name) return &element;
      continue;
    }
    if (json_name.size() <= element.name.size() ||
        json_name.substr(0, element.name.size()) != element.name)
      continue;
    const std::string_view suffix = json_name.substr(element.name.size());
    for (const TypeRef& type : element.types) {
      if (SuffixMatches(suffix, type.code)) {
        if (choice_type != nullptr) *choice_type = type.code;
        return &element;
      }
    }
  }
  return nullptr;
}

const TypeInfo* FindTypeSorted(std::string_view name) {
  const auto all = AllTypes();
  const auto it =
      std::lower_bound(all.begin(), all.end(), name,
                       [](const TypeInfo& t, std::string_view n) { return t.name < n; });
  return it != all.end() && it->name == name ? &*it : nullptr;
}

// The FHIR primitive that a FHIRPath system type code stands for (Element.id, Extension.url
// and Resource.id are typed "http://hl7.org/fhirpath/System.String" in the R4 snapshot).
std::string_view SystemTypeName(std::string_view system) {
  if (system == "Boolean") return "boolean";
  if (system == "Integer") return "integer";
  if (system == "Decimal") return "decimal";
  if (system == "Date") return "date";
  if (system == "DateTime") return "dateTime";
  if (system == "Time") return "time";
  return "string";
}

// The value type of a match (see ElementMatch::type).
ElementMatch Resolved(const ElementInfo* element, std::string_view choice_type) {
  ElementMatch match;
  match.element = element;
  if (element == nullptr) return match;
  if (element->is_choice) {
    match.choice_type = choice_type;
    match.type = FindTypeSorted(choice_type);
  } else if (!element->element_type.empty()) {
    match.type = FindTypeSorted(element->element_type);
  } else if (!element->types.empty()) {
    const std::string_view code = element->types[0].code;
    if (code.substr(0, kFhirPathSystem.size()) == kFhirPathSystem) {
      match.system_type = true;
      match.type = FindTypeSorted(SystemTypeName(code.substr(kFhirPathSystem.size())));
    } else {
      match.type = FindTypeSorted(code);
    }
  }
  return match;
}

// A hash of `text` seeded with the owning type, 8 bytes per step (member names are 2-30
// bytes, hashed for every member of every object written or validated), with a final avalanche
// so that the low bits used for the slot index depend on every byte.
std::uint64_t Hash(std::string_view text, const void* owner) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h =
      (static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(owner)) ^ text.size()) * kMul;
  const char* p = text.data();
  std::size_t n = text.size();
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ word) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {  // the 1-7 tail bytes, read with fixed-size loads (no variable-length memcpy)
    std::uint64_t word;
    if (n >= 4) {
      std::uint32_t lo;
      std::uint32_t hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + n - 4, 4);  // overlaps lo when n < 8
      word = (static_cast<std::uint64_t>(hi) << 32) | lo;
    } else {
      word = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
             (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
             static_cast<unsigned char>(p[n - 1]);
    }
    h = (h ^ word) * kMul;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

// Byte equality of two names of equal length `n`, a word at a time (inline: no memcmp call for
// the one check of a matched name).
inline bool SameBytes(const char* a, const char* b, std::size_t n) {
  while (n >= 8) {
    std::uint64_t x;
    std::uint64_t y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    if (x != y) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  while (n > 0) {
    if (*a++ != *b++) return false;
    --n;
  }
  return true;
}

// Open-addressing hash tables over the generated metadata, built once (thread-safe static
// initialisation, immutable afterwards): type names -> TypeInfo, and (type, JSON member name,
// including every typed choice name such as "valueQuantity") -> ElementMatch. The validator and
// the JSON writer resolve every member of every object this way, so a lookup must not scan the
// element list comparing strings.
class Index {
 public:
  Index() {
    const auto all = AllTypes();
    std::size_t element_names = 0;
    for (const TypeInfo& type : all) {
      for (const ElementInfo& element : type.elements) {
        element_names += element.is_choice ? element.types.size() : 1;
      }
    }
    types_.Init(all.size());
    for (const TypeInfo& type : all)
      types_.Insert(Hash(type.name, nullptr), {nullptr, type.name, {}, &type});
    elements_.Init(element_names);
    for (const TypeInfo& type : all) {
      for (const ElementInfo& element : type.elements) {
        if (!element.is_choice) {
          Add(type, element.name, Resolved(&element, {}));
          continue;
        }
        for (const TypeRef& ref : element.types) {
          if (ref.code.empty()) continue;
          std::string& name = choice_names_.emplace_back(element.name);
          const char first = ref.code[0];
          name += first >= 'a' && first <= 'z' ? static_cast<char>(first - 'a' + 'A') : first;
          name += ref.code.substr(1);
          Add(type, name, Resolved(&element, ref.code));
        }
      }
    }
  }

  bool Owns(const TypeInfo* type) const {
    const auto all = AllTypes();
    return std::less_equal<const TypeInfo*>()(all.data(), type) &&
           std::less<const TypeInfo*>()(type, all.data() + all.size());
  }

  const TypeInfo* FindType(std::string_view name) const {
    const Entry* entry = types_.Find(Hash(name, nullptr), nullptr, name);
    return entry != nullptr ? entry->type : nullptr;
  }

  ElementMatch Match(const TypeInfo* owner, std::string_view json_name) const {
    const Entry* entry = elements_.Find(Hash(json_name, owner), owner, json_name);
    return entry != nullptr ? entry->match : ElementMatch{};
  }

 private:
  struct Entry {
    const TypeInfo* owner = nullptr;
    std::string_view name;
    ElementMatch match;
    const TypeInfo* type = nullptr;  // the type table
  };

  class Table {
   public:
    void Init(std::size_t count) {
      std::size_t size = 16;
      while (size < count * 2) size <<= 1;  // load factor <= 1/2: short probe sequences
      slots_.assign(size, 0);
      hashes_.assign(size, 0);
      entries_.reserve(count);
    }
    // First insertion of a key wins (FindElement's first-match order).
    void Insert(std::uint64_t hash, Entry entry) {
      const std::size_t mask = slots_.size() - 1;
      for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
        if (slots_[i] == 0) {
          entries_.push_back(entry);
          slots_[i] = static_cast<std::uint32_t>(entries_.size());
          hashes_[i] = hash;
          return;
        }
        const Entry& e = entries_[slots_[i] - 1];
        if (hashes_[i] == hash && e.owner == entry.owner && e.name == entry.name) return;
      }
    }
    const Entry* Find(std::uint64_t hash, const TypeInfo* owner, std::string_view name) const {
      const std::size_t mask = slots_.size() - 1;
      for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
        if (slots_[i] == 0) return nullptr;
        if (hashes_[i] != hash) continue;
        const Entry& e = entries_[slots_[i] - 1];
        if (e.owner == owner && e.name.size() == name.size() &&
            SameBytes(e.name.data(), name.data(), name.size()))
          return &e;
      }
    }

   private:
    std::vector<std::uint32_t> slots_;  // entry index + 1; 0 = empty
    std::vector<std::uint64_t> hashes_;
    std::vector<Entry> entries_;
  };

  void Add(const TypeInfo& owner, std::string_view name, ElementMatch match) {
    elements_.Insert(Hash(name, &owner), {&owner, name, match, nullptr});
  }

  Table types_;
  Table elements_;
  std::deque<std::string> choice_names_;  // stable storage for the typed choice names
};

const Index& GetIndex() {
  static const Index kIndex;
  return kIndex;
}

}  // namespace

ElementMatch TypeInfo::MatchElement(std::string_view json_name) const {
  const Index& index = GetIndex();
  if (index.Owns(this)) return index.Match(this, json_name);
  std::string_view choice_type;
  const ElementInfo* element = FindElementLinear(elements, json_name, &choice_type);
  return Resolved(element, choice_type);
}

const ElementInfo* TypeInfo::FindElement(std::string_view json_name,
                                         std::string_view* choice_type) const {
  const ElementMatch match = MatchElement(json_name);
  if (match.element != nullptr && match.element->is_choice && choice_type != nullptr) {
    *choice_type = match.choice_type;
  }
  return match.element;
}

std::span<const TypeInfo> AllTypes() {
  return {generated::kTypes, generated::kTypeCount};
}

const TypeInfo* FindType(std::string_view name) {
  return GetIndex().FindType(name);
}

bool IsResourceType(std::string_view name) {
  const TypeInfo* type = FindType(name);
  return type != nullptr && type->kind == TypeKind::kResource;
}

bool ValueSetInfo::Contains(std::string_view code, std::string_view system) const {
  for (const CodeInfo& c : codes) {
    if (c.code == code && (system.empty() || c.system == system)) return true;
  }
  return false;
}

const ValueSetInfo* FindValueSet(std::string_view url) {
  if (const auto bar = url.find('|'); bar != std::string_view::npos) url = url.substr(0, bar);
  const ValueSetInfo* begin = generated::kValueSets;
  const ValueSetInfo* end = begin + generated::kValueSetCount;
  const auto* it = std::lower_bound(
      begin, end, url, [](const ValueSetInfo& v, std::string_view u) { return v.url < u; });
  return it != end && it->url == url ? it : nullptr;
}

std::string_view SpecVersion() {
  return generated::kSpecVersion;
}
std::string_view SourcePackage() {
  return generated::kSourcePackage;
}

}  // namespace kakehashi::fhir::r4
