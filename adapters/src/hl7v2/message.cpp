// Message index and lazy unescaping (HL7 v2.5 §2.5-§2.7).
#include "kakehashi/adapters/hl7v2/message.hpp"

#include "hl7v2/escape.hpp"

#include "kakehashi/common/charset.hpp"

#include <algorithm>
#include <map>

namespace kakehashi::adapters::hl7v2 {
namespace detail {

namespace {
bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}
bool AllHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), IsHex);
}
}  // namespace

EscapeKind Classify(std::string_view c) {
  if (c.size() == 1) {
    switch (c[0]) {
      case 'F':
      case 'S':
      case 'T':
      case 'R':
      case 'E': return EscapeKind::kDelimiter;
      case 'H':
      case 'N': return EscapeKind::kRemoved;
      default: return EscapeKind::kUnknown;
    }
  }
  if (c[0] == 'X' && c.size() >= 3 && c.size() % 2 == 1 && AllHex(c.substr(1))) {
    return EscapeKind::kHex;
  }
  if ((c[0] == 'C' && c.size() == 5 && AllHex(c.substr(1))) ||
      (c[0] == 'M' && (c.size() == 5 || c.size() == 7) && AllHex(c.substr(1)))) {
    return EscapeKind::kRemoved;
  }
  if (c == ".br" || c.starts_with(".sp")) return EscapeKind::kLineBreak;
  return EscapeKind::kUnknown;
}

}  // namespace detail

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return c - 'a' + 10;
}

// The n-th (1-based) part of `s` split on `sep`; nullopt when there are fewer parts.
std::optional<std::string_view> NthPart(std::string_view s, char sep, int n) {
  std::size_t start = 0;
  for (int k = 1; k < n; ++k) {
    const std::size_t p = s.find(sep, start);
    if (p == std::string_view::npos) return std::nullopt;
    start = p + 1;
  }
  const std::size_t end = s.find(sep, start);
  return s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

int CountParts(std::string_view s, char sep) {
  if (s.empty()) return 0;
  return static_cast<int>(std::count(s.begin(), s.end(), sep)) + 1;
}

bool SameName(std::string_view a, std::string_view b) {
  return a == b;
}

}  // namespace

void UnescapeAppend(std::string_view raw, const Delimiters& d, std::string& out) {
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::size_t esc = raw.find(d.escape, i);
    if (esc == std::string_view::npos) {
      out.append(raw.substr(i));
      return;
    }
    out.append(raw.substr(i, esc - i));
    const std::size_t close = raw.find(d.escape, esc + 1);
    if (close == std::string_view::npos) {  // unterminated: verbatim
      out.append(raw.substr(esc));
      return;
    }
    const std::string_view content = raw.substr(esc + 1, close - esc - 1);
    if (content.empty()) {  // "\\": keep the first escape char, rescan from the second
      out.push_back(d.escape);
      i = esc + 1;
      continue;
    }
    switch (detail::Classify(content)) {
      case detail::EscapeKind::kDelimiter:
        switch (content[0]) {
          case 'F': out.push_back(d.field); break;
          case 'S': out.push_back(d.component); break;
          case 'T': out.push_back(d.subcomponent); break;
          case 'R': out.push_back(d.repetition); break;
          default: out.push_back(d.escape); break;
        }
        break;
      case detail::EscapeKind::kHex: {
        std::string bytes;
        for (std::size_t k = 1; k + 1 < content.size(); k += 2) {
          bytes.push_back(static_cast<char>(HexValue(content[k]) * 16 + HexValue(content[k + 1])));
        }
        if (common::IsValidUtf8(bytes)) {
          out += bytes;
        } else {
          out.append(raw.substr(esc, close - esc + 1));
        }
        break;
      }
      case detail::EscapeKind::kLineBreak: out.push_back('\n'); break;
      case detail::EscapeKind::kRemoved: break;
      case detail::EscapeKind::kUnknown: out.append(raw.substr(esc, close - esc + 1)); break;
    }
    i = close + 1;
  }
}

std::string Unescape(std::string_view raw, const Delimiters& delimiters) {
  std::string out;
  out.reserve(raw.size());
  UnescapeAppend(raw, delimiters, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Value

std::string Value::Text() const {
  if (IsNull() || delimiters_ == nullptr) return {};
  if (raw_.find(delimiters_->escape) == std::string_view::npos) return std::string(raw_);
  return Unescape(raw_, *delimiters_);
}

std::string_view Value::TextView(std::string& scratch) const {
  if (IsNull() || delimiters_ == nullptr) return {};
  if (raw_.find(delimiters_->escape) == std::string_view::npos) return raw_;
  scratch.clear();
  UnescapeAppend(raw_, *delimiters_, scratch);
  return scratch;
}

Value Value::Repetition(int n) const {
  if (!present_ || n < 1) return {};
  if (level_ != Level::kField) return n == 1 ? *this : Value();
  const auto part = NthPart(raw_, delimiters_->repetition, n);
  if (!part) return {};
  return Value(*part, delimiters_, Level::kRepetition);
}

Value Value::Component(int n) const {
  if (n == 0) return *this;
  if (!present_ || n < 1) return {};
  switch (level_) {
    case Level::kField: return Repetition(1).Component(n);
    case Level::kRepetition: {
      const auto part = NthPart(raw_, delimiters_->component, n);
      if (!part) return {};
      return Value(*part, delimiters_, Level::kComponent);
    }
    default: return n == 1 ? *this : Value();
  }
}

Value Value::Subcomponent(int n) const {
  if (n == 0) return *this;
  if (!present_ || n < 1) return {};
  switch (level_) {
    case Level::kField:
    case Level::kRepetition: return Component(1).Subcomponent(n);
    case Level::kComponent: {
      const auto part = NthPart(raw_, delimiters_->subcomponent, n);
      if (!part) return {};
      return Value(*part, delimiters_, Level::kSubcomponent);
    }
    case Level::kSubcomponent: return n == 1 ? *this : Value();
  }
  return {};
}

int Value::RepetitionCount() const {
  if (!present_) return 0;
  if (level_ != Level::kField) return raw_.empty() ? 0 : 1;
  return CountParts(raw_, delimiters_->repetition);
}

int Value::ComponentCount() const {
  if (!present_) return 0;
  if (level_ == Level::kField) return Repetition(1).ComponentCount();
  if (level_ != Level::kRepetition) return raw_.empty() ? 0 : 1;
  return CountParts(raw_, delimiters_->component);
}

// ---------------------------------------------------------------------------------------------
// Segment

std::string_view Segment::Name() const {
  const auto& s = message_->segments_[index_];
  return std::string_view(message_->text_).substr(s.name, s.name_size);
}

std::string_view Segment::Raw() const {
  return message_->SpanView(message_->segments_[index_].raw);
}

int Segment::Occurrence() const {
  const std::string_view name = Name();
  int n = 1;
  for (std::size_t i = 0; i < index_; ++i) {
    if (Segment(*message_, i).Name() == name) ++n;
  }
  return n;
}

int Segment::FieldCount() const {
  return static_cast<int>(message_->segments_[index_].field_count);
}

Value Segment::Field(int n) const {
  const auto& s = message_->segments_[index_];
  if (n < 1 || static_cast<std::uint32_t>(n) > s.field_count) return {};
  const std::string_view raw = message_->SpanView(message_->fields_[s.first_field + n - 1]);
  // MSH-1 and MSH-2 hold the delimiters themselves: never split them.
  if (index_ == 0 && n <= 2 && Name() == "MSH") {
    return Value(raw, &message_->delimiters_, Value::Level::kSubcomponent);
  }
  return Value(raw, &message_->delimiters_, Value::Level::kField);
}

std::int64_t Segment::Line() const {
  return message_->segments_[index_].line;
}

// ---------------------------------------------------------------------------------------------
// SegmentRange

namespace {

// Addresses the element of `field` (a whole-field Value) selected by path's repetition,
// component and subcomponent. `repetition` is the concrete repetition (wildcards expanded).
Value Select(const Value& field, int repetition, const Path& path) {
  if (field.GetLevel() == Value::Level::kSubcomponent) {  // MSH-1 / MSH-2
    return (repetition == 1 && path.component <= 1 && path.subcomponent <= 1) ? field : Value();
  }
  Value v = field.Repetition(repetition);
  if (path.component > 0) v = v.Component(path.component);
  if (path.subcomponent > 0) v = v.Subcomponent(path.subcomponent);
  return v;
}

}  // namespace

Value SegmentRange::Get(std::string_view path) const {
  const auto p = ParsePath(path);
  if (!p) return {};
  return Get(*p);
}

Value SegmentRange::Get(const Path& path) const {
  const std::string_view name = path.SegmentName();
  int seen = 0;
  for (std::size_t i = first_; i < last_; ++i) {
    const Segment seg(*message_, i);
    if (!SameName(seg.Name(), name)) continue;
    ++seen;
    if (path.occurrence != Path::kAll && seen != path.occurrence) continue;
    const auto& idx = message_->segments_[i];
    if (path.field < 1 || static_cast<std::uint32_t>(path.field) > idx.field_count) {
      if (path.occurrence != Path::kAll) return {};
      continue;
    }
    message_->MarkUsed(idx.first_field + path.field - 1, path.component);
    const Value field = seg.Field(path.field);
    return Select(field, path.repetition == Path::kAll ? 1 : path.repetition, path);
  }
  return {};
}

std::string SegmentRange::GetText(std::string_view path) const {
  return Get(path).Text();
}

std::vector<Value> SegmentRange::GetAll(std::string_view path) const {
  const auto p = ParsePath(path);
  if (!p) return {};
  return GetAll(*p);
}

std::vector<Value> SegmentRange::GetAll(const Path& path) const {
  std::vector<Value> out;
  const std::string_view name = path.SegmentName();
  int seen = 0;
  for (std::size_t i = first_; i < last_; ++i) {
    const Segment seg(*message_, i);
    if (!SameName(seg.Name(), name)) continue;
    ++seen;
    if (path.occurrence != Path::kAll && seen != path.occurrence) continue;
    const auto& idx = message_->segments_[i];
    if (path.field >= 1 && static_cast<std::uint32_t>(path.field) <= idx.field_count) {
      message_->MarkUsed(idx.first_field + path.field - 1, path.component);
      const Value field = seg.Field(path.field);
      if (path.repetition == Path::kAll) {
        const int reps = std::max(1, field.RepetitionCount());
        for (int r = 1; r <= reps; ++r) {
          const Value v = Select(field, r, path);
          if (v.Present()) out.push_back(v);
        }
      } else {
        const Value v = Select(field, path.repetition, path);
        if (v.Present()) out.push_back(v);
      }
    }
    if (path.occurrence != Path::kAll) break;
  }
  return out;
}

std::optional<Segment> SegmentRange::Find(std::string_view name, int occurrence) const {
  int seen = 0;
  for (std::size_t i = first_; i < last_; ++i) {
    const Segment seg(*message_, i);
    if (seg.Name() == name && ++seen == occurrence) return seg;
  }
  return std::nullopt;
}

int SegmentRange::Count(std::string_view name) const {
  int n = 0;
  for (std::size_t i = first_; i < last_; ++i) {
    if (Segment(*message_, i).Name() == name) ++n;
  }
  return n;
}

std::vector<SegmentRange> SegmentRange::Groups(
    std::string_view starter, std::initializer_list<std::string_view> terminators) const {
  std::vector<SegmentRange> groups;
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t open = kNone;
  for (std::size_t i = first_; i < last_; ++i) {
    const std::string_view name = Segment(*message_, i).Name();
    const bool starts = name == starter;
    const bool ends =
        starts || std::find(terminators.begin(), terminators.end(), name) != terminators.end();
    if (ends && open != kNone) {
      groups.emplace_back(*message_, open, i);
      open = kNone;
    }
    if (starts) open = i;
  }
  if (open != kNone) groups.emplace_back(*message_, open, last_);
  return groups;
}

// ---------------------------------------------------------------------------------------------
// Message

namespace {
std::string_view MshField(const Message& m, int n) {
  if (m.SegmentCount() == 0) return {};
  return m.SegmentAt(0).Field(n).Raw();
}
}  // namespace

std::string_view Message::ControlId() const {
  return MshField(*this, 10);
}

std::string_view Message::MessageCode() const {
  if (segments_.empty()) return {};
  return SegmentAt(0).Field(9).Component(1).Raw();
}

std::string_view Message::TriggerEvent() const {
  if (segments_.empty()) return {};
  return SegmentAt(0).Field(9).Component(2).Raw();
}

std::string_view Message::Structure() const {
  if (segments_.empty()) return {};
  return SegmentAt(0).Field(9).Component(3).Raw();
}

std::string_view Message::Version() const {
  if (segments_.empty()) return {};
  return SegmentAt(0).Field(12).Component(1).Raw();
}

Location Message::LocationOf(std::string_view field) const {
  Location where;
  where.source = source_name_;
  where.record = std::string(ControlId());
  where.field = std::string(field);
  where.byte = static_cast<std::int64_t>(source_offset_);
  return where;
}

void Message::MarkUsed(std::size_t slot, int component) const {
  if (slot >= fields_.size()) return;
  if (used_.empty()) used_.assign(fields_.size(), 0);  // allocated on the first read
  if (component <= 0) {
    used_[slot] |= 1;
  } else {
    used_[slot] |= std::uint64_t{1} << std::min(component, 63);
  }
}

void Message::ResetUsage() const {
  std::fill(used_.begin(), used_.end(), 0);
}

std::vector<std::string> Message::UnusedFields() const {
  std::vector<std::string> out;
  std::map<std::string_view, int> occurrences;  // per segment name, so long messages stay O(n)
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const Segment seg(*this, i);
    const auto& idx = segments_[i];
    const bool msh = i == 0 && seg.Name() == "MSH";
    std::string prefix(seg.Name());
    const int occ = ++occurrences[seg.Name()];
    if (occ > 1) {
      prefix += '[';
      prefix += std::to_string(occ);
      prefix += ']';
    }
    for (std::uint32_t f = 1; f <= idx.field_count; ++f) {
      if (msh && f <= 2) continue;
      const Value field = seg.Field(static_cast<int>(f));
      if (field.Empty()) continue;
      const std::uint64_t mask = used_.empty() ? 0 : used_[idx.first_field + f - 1];
      if (mask & 1) continue;
      std::string field_path = prefix;
      field_path += '-';
      field_path += std::to_string(f);
      if (mask == 0) {
        out.push_back(field_path);
        continue;
      }
      // Some components were read: list the other non-empty ones (across repetitions).
      int max_components = 0;
      for (int r = 1; r <= field.RepetitionCount(); ++r) {
        max_components = std::max(max_components, field.Repetition(r).ComponentCount());
      }
      for (int c = 1; c <= max_components; ++c) {
        const int bit = std::min(c, 63);
        if (mask & (std::uint64_t{1} << bit)) continue;
        bool non_empty = false;
        for (int r = 1; r <= field.RepetitionCount() && !non_empty; ++r) {
          non_empty = !field.Repetition(r).Component(c).Empty();
        }
        if (non_empty) {
          std::string component_path = field_path;
          component_path += '.';
          component_path += std::to_string(c);
          out.push_back(std::move(component_path));
        }
      }
    }
  }
  return out;
}

}  // namespace kakehashi::adapters::hl7v2
