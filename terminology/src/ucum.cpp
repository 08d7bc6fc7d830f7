// UCUM expressions -> canonical units (kakehashi/terminology/ucum.hpp for the syntax implemented,
// terminology/units/ucum.tsv for the units).
#include "kakehashi/terminology/ucum.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <system_error>
#include <unordered_map>

namespace kakehashi::terminology::ucum {

namespace {

// A unit's meaning while an expression is evaluated: exponents as int so that products of
// exponents cannot wrap before the final range check.
struct Value {
  double factor = 1;
  std::array<int, kMaxBases> exponents{};
  bool special = false;
};

struct Atom {
  Value value;
  bool metric = false;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

void Multiply(Value& a, const Value& b, int sign) {
  a.factor = sign > 0 ? a.factor * b.factor : a.factor / b.factor;
  for (std::size_t i = 0; i < kMaxBases; ++i) a.exponents[i] += sign * b.exponents[i];
  a.special = a.special || b.special;
}

}  // namespace

struct UnitTable::Impl {
  std::vector<std::string> bases;  // codes of the base units, index = exponent position
  std::unordered_map<std::string, Atom, StringHash, std::equal_to<>> atoms;
  std::vector<std::pair<std::string, double>> prefixes;  // longest code first

  // The unit of one atom, or of a metric prefix + atom; null when neither.
  bool Lookup(std::string_view code, Value& out) const {
    if (auto it = atoms.find(code); it != atoms.end()) {
      out = it->second.value;
      return true;
    }
    for (const auto& [prefix, factor] : prefixes) {
      if (code.size() <= prefix.size() || !code.starts_with(prefix)) continue;
      auto it = atoms.find(code.substr(prefix.size()));
      if (it == atoms.end() || !it->second.metric) continue;
      out = it->second.value;
      out.factor *= factor;
      return true;
    }
    return false;
  }
};

namespace {

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Recursive descent over one expression (grammar in ucum.hpp). On failure `status` and
// `position` say what and where.
class Parser {
 public:
  Parser(const UnitTable::Impl& table, std::string_view text) : table_(table), s_(text) {}

  Status Run(Value& out) {
    if (s_.empty()) return Fail(Status::kSyntax, 0);
    if (!Term(out, 0)) return status_;
    if (i_ != s_.size()) return Fail(Status::kSyntax, i_);
    return Status::kOk;
  }
  std::size_t position() const { return position_; }

 private:
  static constexpr int kMaxDepth = 32;  // nested parentheses

  bool Term(Value& out, int depth) {
    out = Value{};
    if (depth > kMaxDepth) return Error(Status::kSyntax, i_);
    if (i_ < s_.size() && s_[i_] == '/') {  // "/min": the reciprocal
      ++i_;
      Value c;
      if (!Component(c, depth)) return false;
      Multiply(out, c, -1);
    } else if (!Component(out, depth)) {
      return false;
    }
    while (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == '/')) {
      const int sign = s_[i_] == '.' ? 1 : -1;
      ++i_;
      Value c;
      if (!Component(c, depth)) return false;
      Multiply(out, c, sign);
    }
    return true;
  }

  bool Annotation() {  // at '{'
    const std::size_t start = i_;
    for (++i_; i_ < s_.size(); ++i_) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '}') {
        ++i_;
        return true;
      }
      if (c < 33 || c > 126 || c == '{') return Error(Status::kSyntax, i_);
    }
    return Error(Status::kSyntax, start);  // no closing '}'
  }

  bool Component(Value& out, int depth) {
    out = Value{};
    if (i_ >= s_.size()) return Error(Status::kSyntax, i_);
    if (s_[i_] == '(') {
      ++i_;
      if (!Term(out, depth + 1)) return false;
      if (i_ >= s_.size() || s_[i_] != ')') return Error(Status::kSyntax, i_);
      ++i_;
      return true;
    }
    if (s_[i_] == '{') return Annotation();  // the unity
    const std::size_t start = i_;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '.' || c == '/' || c == '(' || c == ')' || c == '{' || c == '}') break;
      if (c < 33 || c > 126) return Error(Status::kSyntax, i_);
      if (c == '[') {  // anything but ']' up to the matching ']'
        const auto close = s_.find(']', i_ + 1);
        if (close == std::string_view::npos) return Error(Status::kSyntax, i_);
        for (std::size_t k = i_ + 1; k < close; ++k) {
          const auto b = static_cast<unsigned char>(s_[k]);
          if (b < 33 || b > 126) return Error(Status::kSyntax, k);
        }
        i_ = close + 1;
        continue;
      }
      ++i_;
    }
    const std::string_view token = s_.substr(start, i_ - start);
    if (token.empty()) return Error(Status::kSyntax, start);
    if (std::all_of(token.begin(), token.end(), IsDigit)) {  // a factor: a positive integer
      double f = 0;
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), f);
      if (ec != std::errc() || ptr != token.data() + token.size() || !std::isfinite(f) || f <= 0) {
        return Error(Status::kRange, start);
      }
      out.factor = f;
      return true;
    }
    // simple-unit [exponent]: the exponent is the trailing digits with an optional sign.
    std::size_t j = token.size();
    while (j > 0 && IsDigit(token[j - 1])) --j;
    int exponent = 1;
    if (j < token.size()) {
      const std::string_view digits = token.substr(j);
      bool negative = false;
      if (j > 0 && (token[j - 1] == '+' || token[j - 1] == '-')) {
        negative = token[j - 1] == '-';
        --j;
      }
      if (digits.size() > 2) return Error(Status::kRange, start + j);
      exponent = 0;
      for (char d : digits) exponent = exponent * 10 + (d - '0');
      if (negative) exponent = -exponent;
    }
    const std::string_view atom = token.substr(0, j);
    if (atom.empty()) return Error(Status::kSyntax, start);
    Value unit;
    if (!table_.Lookup(atom, unit)) return Error(Status::kUnknownUnit, start);
    out.factor = std::pow(unit.factor, exponent);
    for (std::size_t k = 0; k < kMaxBases; ++k) out.exponents[k] = unit.exponents[k] * exponent;
    out.special = unit.special;
    if (i_ < s_.size() && s_[i_] == '{') return Annotation();
    return true;
  }

  bool Error(Status status, std::size_t position) {
    Fail(status, position);
    return false;
  }
  Status Fail(Status status, std::size_t position) {
    status_ = status;
    position_ = position;
    return status;
  }

  const UnitTable::Impl& table_;
  std::string_view s_;
  std::size_t i_ = 0;
  Status status_ = Status::kOk;
  std::size_t position_ = 0;
};

std::vector<std::string_view> SplitTabs(std::string_view line) {
  std::vector<std::string_view> out;
  for (;;) {
    auto tab = line.find('\t');
    out.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) return out;
    line.remove_prefix(tab + 1);
  }
}

bool ParseNumber(std::string_view text, double& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(out) && out > 0;
}

}  // namespace

std::string_view StatusName(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kSyntax: return "syntax";
    case Status::kUnknownUnit: return "unknown-unit";
    case Status::kSpecial: return "special";
    case Status::kRange: return "range";
  }
  return "unknown";
}

UnitTable::UnitTable(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UnitTable::~UnitTable() = default;

std::unique_ptr<UnitTable> UnitTable::Parse(std::string_view text, std::string& error) {
  auto impl = std::make_unique<Impl>();
  struct Pending {
    std::string code;
    double value = 1;
    std::string definition;
    bool metric = false;
    bool special = false;
    std::size_t line = 0;
  };
  std::vector<Pending> pending;
  std::size_t line_no = 0;
  bool header = false;
  auto fail = [&](std::size_t line, const std::string& what) {
    error = "line " + std::to_string(line) + ": " + what;
    return nullptr;
  };
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto f = SplitTabs(line);
    if (f.size() != 6) return fail(line_no, "expected 6 tab-separated columns");
    if (!header) {
      if (line != "kind\tcode\tvalue\tdefinition\tflags\tname") {
        return fail(line_no, "header must be kind, code, value, definition, flags, name");
      }
      header = true;
      continue;
    }
    const std::string code(f[1]);
    if (code.empty()) return fail(line_no, "empty code");
    bool metric = false;
    bool special = false;
    bool arbitrary = false;
    for (std::string_view flags = f[4]; !flags.empty();) {
      auto comma = flags.find(',');
      std::string_view flag = flags.substr(0, comma);
      flags.remove_prefix(comma == std::string_view::npos ? flags.size() : comma + 1);
      if (flag == "metric") {
        metric = true;
      } else if (flag == "special") {
        special = true;
      } else if (flag == "arbitrary") {
        arbitrary = true;
      } else {
        return fail(line_no, "unknown flag '" + std::string(flag) + "'");
      }
    }
    const bool known =
        impl->atoms.contains(code) || std::any_of(pending.begin(), pending.end(),
                                                  [&](const Pending& p) { return p.code == code; });
    if (f[0] == "base") {
      if (!f[2].empty() || !f[3].empty()) return fail(line_no, "a base unit has no value");
      if (known) return fail(line_no, "duplicate unit '" + code + "'");
      if (impl->bases.size() == kMaxBases) return fail(line_no, "too many base units");
      if (special) return fail(line_no, "a base unit cannot be special");
      Atom atom;
      atom.value.exponents[impl->bases.size()] = 1;
      atom.metric = metric;
      impl->bases.push_back(code);
      impl->atoms.emplace(code, atom);
    } else if (f[0] == "prefix") {
      double value = 0;
      if (!ParseNumber(f[2], value)) return fail(line_no, "prefix value must be a number > 0");
      if (!f[3].empty() || !f[4].empty()) return fail(line_no, "a prefix has no definition");
      for (const auto& p : impl->prefixes) {
        if (p.first == code) return fail(line_no, "duplicate prefix '" + code + "'");
      }
      impl->prefixes.emplace_back(code, value);
    } else if (f[0] == "unit") {
      Pending p{code, 1, std::string(f[3]), metric, special, line_no};
      if (known) return fail(line_no, "duplicate unit '" + code + "'");
      if (arbitrary) return fail(line_no, "only a base unit can be arbitrary");
      if (!ParseNumber(f[2], p.value)) return fail(line_no, "unit value must be a number > 0");
      if (p.definition.empty()) return fail(line_no, "a unit needs a definition");
      pending.push_back(std::move(p));
    } else {
      return fail(line_no, "kind must be base, prefix or unit");
    }
  }
  if (!header) return fail(line_no, "no header line");
  std::stable_sort(impl->prefixes.begin(), impl->prefixes.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  // Units may be defined by units further down: resolve in passes until none is left.
  for (bool progress = true; !pending.empty() && progress;) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      Value v;
      Parser parser(*impl, it->definition);
      const Status status = parser.Run(v);
      if (status == Status::kUnknownUnit) {
        ++it;
        continue;
      }
      if (status != Status::kOk) {
        return fail(it->line, "definition '" + it->definition + "' is not a UCUM expression");
      }
      Atom atom;
      atom.value = v;
      atom.value.factor *= it->value;
      atom.value.special = v.special || it->special;
      atom.metric = it->metric;
      impl->atoms.emplace(it->code, atom);
      it = pending.erase(it);
      progress = true;
    }
  }
  if (!pending.empty()) {
    return fail(pending.front().line, "definition '" + pending.front().definition +
                                          "' uses a unit defined nowhere (or in a cycle)");
  }
  return std::unique_ptr<UnitTable>(new UnitTable(std::move(impl)));
}

const UnitTable& UnitTable::Builtin() {
  static const std::unique_ptr<UnitTable> table = [] {
    std::string error;
    auto t = Parse(BuiltinUnitTableText(), error);
    // The built-in table is tested (ucum_test "the built-in table parses"); should it ever be
    // broken, no unit is known and every quantity compares as today: by system|code.
    if (!t) t = Parse("kind\tcode\tvalue\tdefinition\tflags\tname\n", error);
    return t;
  }();
  return *table;
}

Canonical UnitTable::Canonicalize(std::string_view expression) const {
  Canonical out;
  Value v;
  Parser parser(*impl_, expression);
  out.status = parser.Run(v);
  if (out.status != Status::kOk) {
    out.position = parser.position();
    return out;
  }
  if (v.special) {
    out.status = Status::kSpecial;
    return out;
  }
  if (!std::isfinite(v.factor) || v.factor <= 0) {
    out.status = Status::kRange;
    return out;
  }
  for (std::size_t i = 0; i < kMaxBases; ++i) {
    if (v.exponents[i] < -99 || v.exponents[i] > 99) {
      out.status = Status::kRange;
      return out;
    }
    out.exponents[i] = static_cast<std::int8_t>(v.exponents[i]);
  }
  out.factor = v.factor;
  for (std::size_t i = 0; i < impl_->bases.size(); ++i) {
    if (v.exponents[i] == 0) continue;
    if (!out.unit.empty()) out.unit += '.';
    out.unit += impl_->bases[i];
    if (v.exponents[i] != 1) out.unit += std::to_string(v.exponents[i]);
  }
  if (out.unit.empty()) out.unit.push_back('1');  // not = "1": GCC 12 -Wrestrict false positive
  return out;
}

double UnitTable::ToCanonical(double value, double factor) {
  const double raw = value * factor;
  if (!std::isfinite(raw) || raw == 0) return raw;
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, raw, std::chars_format::general, 12);
  if (ec != std::errc()) return raw;
  double out = raw;
  std::from_chars(buf, end, out);
  return out;
}

}  // namespace kakehashi::terminology::ucum
