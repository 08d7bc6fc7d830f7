// bench_ucum: UCUM unit expressions parsed and canonicalised per second (terminology::ucum,
// decision 0047), over the units of Japanese lab results (JLAC10) and a few longer expressions.
//
//   build/bench/bench_ucum [--rounds N]
//
// Prints expressions/s and ns per expression (process CPU time, user+sys: the machine is shared,
// so wall-clock time is noise). No peer: no UCUM library on this machine. The gateway caches
// each thread's last 256 units (indexer.cpp CanonicalUcum), so a write pays this at most once
// per unit and thread; a search pays it once per UCUM value.
#include "kakehashi/terminology/ucum.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace ucum = kakehashi::terminology::ucum;

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

constexpr std::string_view kUnits[] = {
    "mg/dL",       "g/dL",
    "mmol/L",      "umol/L",
    "10*3/uL",     "10*4/uL",
    "10*6/uL",     "10*9/L",
    "%",           "mL/min/{1.73_m2}",
    "U/L",         "[IU]/L",
    "ng/mL",       "pg/mL",
    "fL",          "pg",
    "mEq/L",       "meq/L",
    "s",           "mm/h",
    "mg/g{creat}", "ug/dL",
    "uU/mL",       "mm[Hg]",
    "kg/m2",       "Cel",
    "/uL",         "g/L",
    "mg/L",        "nmol/L",
    "mIU/mL",      "10*3/uL{cells}",
    "kg.m/s2",     "(mol/L)/(g/dL)",
    "[in_i]2",
};

}  // namespace

int main(int argc, char** argv) {
  long rounds = 20000;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atol(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_ucum [--rounds N]\n");
      return 2;
    }
  }
  const ucum::UnitTable& table = ucum::UnitTable::Builtin();
  std::size_t ok = 0;
  for (std::string_view u : kUnits) ok += table.Canonicalize(u).status == ucum::Status::kOk;
  std::size_t sink = 0;
  const double start = CpuSeconds();
  for (long r = 0; r < rounds; ++r) {
    for (std::string_view u : kUnits) sink += table.Canonicalize(u).unit.size();
  }
  const double cpu = CpuSeconds() - start;
  const double n = static_cast<double>(rounds) * static_cast<double>(std::size(kUnits));
  std::printf(
      "bench_ucum: %zu expressions (%zu convertible), %ld rounds: %.0f expressions/s, "
      "%.0f ns CPU per expression (sink %zu)\n",
      std::size(kUnits), ok, rounds, n / cpu, cpu / n * 1e9, sink);
  return 0;
}
