#include "kakehashi/mapping/hl7v2_view.hpp"

namespace kakehashi::mapping {

int Hl7v2View::RepetitionCount(std::size_t segment, int field) const {
  auto value = message_.SegmentAt(segment).Field(field);
  if (!value.Present() || value.Empty() || value.IsNull()) return 0;
  return value.RepetitionCount();
}

std::string Hl7v2View::Value(std::size_t segment, int field, int repetition, int component,
                             int subcomponent) const {
  auto value = message_.SegmentAt(segment).Field(field);
  if (!value.Present()) return {};
  auto rep = value.Repetition(repetition);
  if (component == 0) return rep.IsNull() ? std::string() : rep.Text();
  auto leaf = rep.Component(component).Subcomponent(subcomponent);
  if (!leaf.Present() || leaf.IsNull()) return {};
  return leaf.Text();
}

}  // namespace kakehashi::mapping
