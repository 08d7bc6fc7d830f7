#include "kakehashi/mapping/hl7v2_view.hpp"

namespace kakehashi::mapping {
namespace {

using adapters::hl7v2::Delimiters;

// The n-th (1-based) part of `s` split on `sep`, as Value::Repetition/Component/Subcomponent
// split (message.cpp NthPart); false when there are fewer parts or n < 1. (A byte loop instead of
// find/memchr was measured: more instructions, the fields are longer than they look.)
bool NthPart(std::string_view s, char sep, int n, std::string_view& out) {
  if (n < 1) return false;
  std::size_t start = 0;
  for (int k = 1; k < n; ++k) {
    const std::size_t p = s.find(sep, start);
    if (p == std::string_view::npos) return false;
    start = p + 1;
  }
  const std::size_t end = s.find(sep, start);
  out = s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  return true;
}

// Value::Text() of a present value: "" for the explicit null `""`, else unescaped.
std::string TextOf(std::string_view raw, const Delimiters& d) {
  if (raw == "\"\"") return {};
  if (raw.find(d.escape) == std::string_view::npos) return std::string(raw);
  return adapters::hl7v2::Unescape(raw, d);
}

// Component(c).Subcomponent(s).Text() of a repetition's raw text.
std::string Leaf(std::string_view part, const Delimiters& d, int component, int subcomponent) {
  if (component == 0) return TextOf(part, d);
  if (!NthPart(part, d.component, component, part)) return {};
  if (subcomponent != 0 && !NthPart(part, d.subcomponent, subcomponent, part)) return {};
  return TextOf(part, d);
}

}  // namespace

int Hl7v2View::RepetitionCount(std::size_t segment, int field) const {
  auto value = message_.SegmentAt(segment).Field(field);
  if (!value.Present() || value.Empty() || value.IsNull()) return 0;
  return value.RepetitionCount();
}

std::string Hl7v2View::Value(std::size_t segment, int field, int repetition, int component,
                             int subcomponent) const {
  const Delimiters& d = message_.GetDelimiters();
  if (last_.segment == segment && last_.field == field && last_.repetition == repetition) {
    return last_.found ? Leaf(last_.raw, d, component, subcomponent) : std::string();
  }
  auto value = message_.SegmentAt(segment).Field(field);
  if (!value.Present()) return {};
  if (value.GetLevel() != adapters::hl7v2::Value::Level::kField) {
    // MSH-1 and MSH-2 (never split): the adapter's navigation.
    auto rep = value.Repetition(repetition);
    if (component == 0) return rep.IsNull() ? std::string() : rep.Text();
    auto leaf = rep.Component(component).Subcomponent(subcomponent);
    if (!leaf.Present() || leaf.IsNull()) return {};
    return leaf.Text();
  }
  // The same navigation as Value::Repetition(r).Component(c).Subcomponent(s).Text() on the raw
  // text, without building a Value per level (this runs for every path the rules read).
  std::string_view part;
  const bool found = NthPart(value.Raw(), d.repetition, repetition, part);
  last_ = {segment, field, repetition, found, part};
  return found ? Leaf(part, d, component, subcomponent) : std::string();
}

}  // namespace kakehashi::mapping
