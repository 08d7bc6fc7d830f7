// UCUM unit expressions (The Unified Code for Units of Measure, https://ucum.org/ucum, the
// case-sensitive codes "c/s"): parsing and canonicalisation, so quantities in commensurable units
// compare (R4 search.html "quantity": a server SHOULD compare UCUM quantities in canonical units).
//
// Syntax implemented (UCUM §§ 2.1-2.2 "Syntax rules"):
//   term      := component | term '.' component | term '/' component | '/' term
//   component := simple-unit [exponent] [annotation] | annotation | factor | '(' term ')'
//   simple-unit := [metric prefix] atom       exponent := ['+'|'-'] digits
//   factor    := digits (a positive integer)  annotation := '{' printable ASCII but '{' '}' '}'
// '.' and '/' bind equally and left to right ("mL/min/{1.73_m2}" = (mL/min)/1); an annotation
// alone is the unity; "10*" and "10^" are the atom "the number ten" ("10*3", "10^-6"); an atom
// in square brackets may contain any character but ']' ("[in_i]2" is inch squared). A whole
// atom is looked up before prefix + atom ("cd" is candela, not centi-day; "Pa" is pascal), and
// only atoms flagged metric take a prefix.
//
// The units are data: terminology/units/ucum.tsv (base units, prefixes, derived units with their
// definitions; docs/terminology.md "UCUM units"). Special (non-ratio) units (Cel, [degF], [pH])
// are never converted: an expression using one is kSpecial and compares only with the same code.
// Molar <-> mass conversion needs a molecular weight: not done (mol is a base unit here).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::terminology::ucum {

inline constexpr std::string_view kSystem = "http://unitsofmeasure.org";

enum class Status {
  kOk,
  kSyntax,       // not a UCUM expression (position says where)
  kUnknownUnit,  // an atom (or prefix + atom) the table does not define
  kSpecial,      // uses a special (non-ratio) unit: not convertible by multiplication
  kRange,        // an exponent or factor out of range (|exponent| > 99, factor overflow)
};
std::string_view StatusName(Status status);

// Up to this many base units (dimensions) in a table.
inline constexpr std::size_t kMaxBases = 16;

// A unit expression's meaning: `factor` times the product of the base units to `exponents`.
struct Canonical {
  Status status = Status::kOk;
  std::size_t position = 0;  // kSyntax / kUnknownUnit / kRange: byte offset of the problem
  double factor = 1;
  std::array<std::int8_t, kMaxBases> exponents{};
  // The canonical unit as a UCUM expression of base units in table order ("m-3.g", "s-1",
  // "1" for a pure number); empty unless kOk. Two units are commensurable iff these are equal.
  std::string unit;
};

class UnitTable {
 public:
  // Parses a table in the format of terminology/units/ucum.tsv. On a malformed table, returns
  // null and sets `error` to "line N: what" (never the case for the built-in table: tested).
  static std::unique_ptr<UnitTable> Parse(std::string_view text, std::string& error);
  // terminology/units/ucum.tsv as compiled into the library (parsed once, thread-safe).
  static const UnitTable& Builtin();

  Canonical Canonicalize(std::string_view expression) const;
  // Value in `from` as a value in the canonical unit: value * factor, rounded to 12 significant
  // digits so equal quantities in different spellings give the same double (540 mg/dL and
  // 5.4 g/L are both 5400 m-3.g, not 5400.000000000001).
  static double ToCanonical(double value, double factor);

  ~UnitTable();
  UnitTable(const UnitTable&) = delete;
  UnitTable& operator=(const UnitTable&) = delete;

  struct Impl;

 private:
  explicit UnitTable(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The built-in table's Canonicalize.
inline Canonical Canonicalize(std::string_view expression) {
  return UnitTable::Builtin().Canonicalize(expression);
}

// The text of terminology/units/ucum.tsv compiled into the library.
std::string_view BuiltinUnitTableText();

}  // namespace kakehashi::terminology::ucum
