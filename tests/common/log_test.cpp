#include "kakehashi/common/log.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

using namespace kakehashi;

namespace {
std::string Capture(bool json) {
  std::FILE* f = std::tmpfile();
  Logger log(f, LogLevel::kInfo);
  log.SetJson(json);
  log.Log(LogLevel::kDebug, "hidden");
  log.Log(LogLevel::kInfo, "convert.done",
          {{"files", std::size_t{3}}, {"rate", 2.5}, {"code", SafeText::FromCode("hl7v2.x")}});
  std::rewind(f);
  char buf[256] = {};
  const auto n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  return std::string(buf, n);
}
}  // namespace

TEST_CASE("logger prints events with numeric and program-text fields only", "[common][log]") {
  CHECK(Capture(false) == "info convert.done files=3 rate=2.500 code=hl7v2.x\n");
  CHECK(Capture(true) ==
        "{\"level\":\"info\",\"event\":\"convert.done\",\"files\":3,\"rate\":2.500,"
        "\"code\":\"hl7v2.x\"}\n");
}
