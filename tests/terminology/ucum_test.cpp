#include "kakehashi/terminology/ucum.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace kakehashi::terminology::ucum;

namespace {

// value in `unit` expressed in the canonical unit
double In(double value, std::string_view unit) {
  Canonical c = Canonicalize(unit);
  REQUIRE(c.status == Status::kOk);
  return UnitTable::ToCanonical(value, c.factor);
}

}  // namespace

TEST_CASE("ucum: the built-in table parses", "[ucum]") {
  std::string error;
  auto table = UnitTable::Parse(BuiltinUnitTableText(), error);
  INFO(error);
  REQUIRE(table != nullptr);
  CHECK(error.empty());
  CHECK(table->Canonicalize("mg").status == Status::kOk);
}

TEST_CASE("ucum: canonical units of the lab units", "[ucum]") {
  struct Case {
    std::string_view expression;
    double factor;
    std::string_view unit;
  };
  const Case cases[] = {
      {"g", 1, "g"},
      {"mg", 1e-3, "g"},
      {"kg", 1e3, "g"},
      {"mg/dL", 10, "m-3.g"},  // 1e-3 g / 1e-4 m3
      {"g/dL", 1e4, "m-3.g"},
      {"g/L", 1e3, "m-3.g"},
      {"mmol/L", 1, "m-3.mol"},
      {"umol/L", 1e-3, "m-3.mol"},
      {"mEq/L", 0, ""},  // case-sensitive UCUM: "Eq" is no unit (meq is)
      {"meq/L", 1, "m-3.mol"},
      {"10*3/uL", 1e12, "m-3"},
      {"10*9/L", 1e12, "m-3"},
      {"10^3/uL", 1e12, "m-3"},
      {"%", 0.01, "1"},
      {"1", 1, "1"},
      {"{cells}", 1, "1"},
      {"mL/min/{1.73_m2}", 1e-6 / 60, "m3.s-1"},
      {"mL/min", 1e-6 / 60, "m3.s-1"},
      {"/min", 1.0 / 60, "s-1"},
      {"h", 3600, "s"},
      {"d", 86400, "s"},
      {"wk", 604800, "s"},
      {"a", 365.25 * 86400, "s"},
      {"mo", 365.25 * 86400 / 12, "s"},
      {"m2", 1, "m2"},
      {"cm2", 1e-4, "m2"},
      {"(m.s)/s", 1, "m"},
      {"kg.m/s2", 1e3, "m.s-2.g"},
      {"mm[Hg]", 133322, "m-1.s-2.g"},  // 133.322 Pa, and Pa = 1000 g/(m s2)
      {"[in_i]2", 2.54 * 2.54 * 1e-4, "m2"},
      {"[iU]/L", 1e3, "m-3.[iU]"},
      {"[IU]/L", 1e3, "m-3.[iU]"},
      {"U/L", 1e-6 / 60 * 1e3, "m-3.s-1.mol"},
      {"10*-3", 1e-3, "1"},
      {"cd", 1, "cd"},  // candela, not centi-day
      {"Pa", 1e3, "m-1.s-2.g"},
  };
  for (const Case& c : cases) {
    INFO(c.expression);
    Canonical r = Canonicalize(c.expression);
    if (c.unit.empty()) {
      CHECK(r.status == Status::kUnknownUnit);
      continue;
    }
    REQUIRE(r.status == Status::kOk);
    CHECK(r.factor == Approx(c.factor).epsilon(1e-12));
    CHECK(r.unit == c.unit);
  }
}

TEST_CASE("ucum: equal quantities in other spellings give the same canonical double", "[ucum]") {
  CHECK(In(540, "mg/dL") == In(5.4, "g/L"));
  CHECK(In(5.4, "g/L") == 5400);
  CHECK(In(6, "mg") == In(0.006, "g"));
  CHECK(In(1000, "umol/L") == In(1, "mmol/L"));
  CHECK(In(7.2, "10*3/uL") == In(7.2, "10*9/L"));
  CHECK(In(50, "%") == 0.5);
}

TEST_CASE("ucum: commensurability is equality of the canonical unit", "[ucum]") {
  auto same = [](std::string_view a, std::string_view b) {
    Canonical x = Canonicalize(a);
    Canonical y = Canonicalize(b);
    return x.status == Status::kOk && y.status == Status::kOk && x.unit == y.unit;
  };
  CHECK(same("mg/dL", "g/L"));
  CHECK(same("mmol/L", "umol/mL"));
  CHECK(same("10*3/uL", "/nL"));
  CHECK(same("%", "{ratio}"));
  CHECK(same("U/L", "ukat/L"));
  CHECK(same("[IU]/mL", "[iU]/L"));
  CHECK_FALSE(same("mg/dL", "mmol/L"));    // molar <-> mass needs a molecular weight: not done
  CHECK_FALSE(same("mmol/L", "10*3/uL"));  // mol is a base unit here (ucum.tsv)
  CHECK_FALSE(same("[iU]/L", "U/L"));      // arbitrary units compare only with themselves
  CHECK_FALSE(same("mg", "mL"));
  CHECK_FALSE(same("%", "mg"));
}

TEST_CASE("ucum: special units are not convertible", "[ucum]") {
  for (std::string_view u : {"Cel", "[degF]", "[pH]", "mCel", "Cel/h", "dB"}) {
    INFO(u);
    CHECK(Canonicalize(u).status == Status::kSpecial);
  }
  CHECK(Canonicalize("K").status == Status::kOk);
}

TEST_CASE("ucum: malformed expressions say what and where", "[ucum]") {
  struct Case {
    std::string_view expression;
    Status status;
    std::size_t position;
  };
  const Case cases[] = {
      {"", Status::kSyntax, 0},
      {"mg/", Status::kSyntax, 3},
      {"mg//L", Status::kSyntax, 3},
      {"mg.", Status::kSyntax, 3},
      {"(mg/L", Status::kSyntax, 5},
      {"mg)", Status::kSyntax, 2},
      {"mg/dL{", Status::kSyntax, 5},
      {"{a{b}", Status::kSyntax, 2},
      {"mg L", Status::kSyntax, 2},
      {"[in_i", Status::kSyntax, 0},
      {"mg\xE3\x81\x82", Status::kSyntax, 2},
      {"foo", Status::kUnknownUnit, 0},
      {"mg/foo", Status::kUnknownUnit, 3},
      {"kh", Status::kUnknownUnit, 0},  // h (hour) is not metric: no prefix
      {"Mmin", Status::kUnknownUnit, 0},
      {"m100", Status::kRange, 1},
      {"mg.10*999", Status::kRange, 6},
      {"MG", Status::kUnknownUnit, 0},  // case-sensitive
  };
  for (const Case& c : cases) {
    INFO(c.expression);
    Canonical r = Canonicalize(c.expression);
    CHECK(r.status == c.status);
    CHECK(r.position == c.position);
    CHECK(r.unit.empty());
  }
  CHECK(StatusName(Status::kUnknownUnit) == "unknown-unit");
}

TEST_CASE("ucum: powers, annotations, parentheses", "[ucum]") {
  CHECK(Canonicalize("m3").unit == "m3");
  CHECK(Canonicalize("m-2").unit == "m-2");
  CHECK(Canonicalize("m+2").unit == "m2");
  CHECK(Canonicalize("m2/m2").unit == "1");
  CHECK(Canonicalize("g{total}/dL").unit == "m-3.g");
  CHECK(Canonicalize("{score}").unit == "1");
  CHECK(Canonicalize("/(m.s)").unit == "m-1.s-1");
  CHECK(Canonicalize("((g))").unit == "g");
  CHECK(Canonicalize("2.g").status == Status::kOk);
  CHECK(Canonicalize("2.g").factor == 2);
  CHECK(Canonicalize("10*3").factor == Approx(1e3));
  CHECK(Canonicalize("10^-6").factor == Approx(1e-6));
  // 40 nested parentheses: refused, no deep recursion
  std::string deep(40, '(');
  deep += "g";
  deep += std::string(40, ')');
  CHECK(Canonicalize(deep).status == Status::kSyntax);
}

TEST_CASE("ucum: a malformed table is refused with its line", "[ucum]") {
  const std::string header = "kind\tcode\tvalue\tdefinition\tflags\tname\n";
  struct Case {
    std::string text;
    std::string_view error;
  };
  const Case cases[] = {
      {"", "line 0: no header line"},
      {"kind\tcode\n", "line 1: expected 6 tab-separated columns"},
      {header + "base\tm\t\t\tmetric\tmeter\nbase\tm\t\t\t\tmeter\n", "line 3: duplicate unit 'm'"},
      {header + "unit\tx\t1\ty\t\tx\n", "line 2: definition 'y' uses a unit defined nowhere"},
      {header + "unit\tx\t1\ty\t\tx\nunit\ty\t1\tx\t\ty\n", "line 2: definition 'y' uses"},
      {header + "unit\tx\t0\tm\t\tx\n", "line 2: unit value must be a number > 0"},
      {header + "base\tm\t\t\tbig\tm\n", "line 2: unknown flag 'big'"},
      {header + "thing\tm\t\t\t\tm\n", "line 2: kind must be base, prefix or unit"},
      {header + "base\tm\t\t\t\tm\nunit\tx\t1\tm/\t\tx\n", "line 3: definition 'm/' is not"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    std::string error;
    CHECK(UnitTable::Parse(c.text, error) == nullptr);
    CHECK(error.starts_with(c.error));
  }
  std::string error;
  auto t = UnitTable::Parse(header + "base\tm\t\t\tmetric\tm\nprefix\tk\t1e3\t\t\tkilo\n" +
                                "unit\tmile\t1.609344\tkm\t\tmile\n",
                            error);
  REQUIRE(t != nullptr);
  CHECK(t->Canonicalize("mile").factor == Approx(1609.344));
  CHECK(t->Canonicalize("kmile").status == Status::kUnknownUnit);  // not metric
}
