#include "kakehashi/adapters/hl7v2/path.hpp"

#include <catch2/catch.hpp>

namespace hl7v2 = kakehashi::adapters::hl7v2;
using hl7v2::Path;

TEST_CASE("hl7v2 path: grammar", "[hl7v2][path]") {
  auto p = hl7v2::ParsePath("PID-5[2].1");
  REQUIRE(p);
  CHECK(p->SegmentName() == "PID");
  CHECK(p->occurrence == 1);
  CHECK(p->field == 5);
  CHECK(p->repetition == 2);
  CHECK(p->component == 1);
  CHECK(p->subcomponent == 0);

  p = hl7v2::ParsePath("OBX[3]-5");
  REQUIRE(p);
  CHECK(p->occurrence == 3);
  CHECK(p->field == 5);
  CHECK(p->repetition == 1);

  p = hl7v2::ParsePath("RXE-19.2.1");
  REQUIRE(p);
  CHECK(p->component == 2);
  CHECK(p->subcomponent == 1);

  p = hl7v2::ParsePath("PID-3[*]");
  REQUIRE(p);
  CHECK(p->repetition == Path::kAll);
  CHECK(p->HasWildcard());

  p = hl7v2::ParsePath("OBX[*]-3.1");
  REQUIRE(p);
  CHECK(p->occurrence == Path::kAll);
  CHECK(p->SegmentName() == "OBX");

  p = hl7v2::ParsePath("IN1-2");
  REQUIRE(p);
  CHECK(p->SegmentName() == "IN1");
  CHECK_FALSE(p->HasWildcard());
}

TEST_CASE("hl7v2 path: rejects malformed paths", "[hl7v2][path]") {
  for (const char* bad : {"", "PID", "PID-", "PID-0", "pid-5", "PI-5", "PIDX-5", "PID-5[0]",
                          "PID-5[]", "PID-5[2", "PID-5.", "PID-5.0", "PID-5.1.", "PID-5.1.2.3",
                          "PID[0]-5", "PID-5 ", "PID-x", "PID--5", "PID-5[-1]"}) {
    INFO(bad);
    CHECK_FALSE(hl7v2::ParsePath(bad));
  }
}

TEST_CASE("hl7v2 path: canonical text round trips", "[hl7v2][path]") {
  for (const char* text :
       {"PID-5[2].1", "OBX[3]-5", "RXE-19.2.1", "PID-3[*]", "OBX[*]-3.1", "ZPR-7"}) {
    const auto p = hl7v2::ParsePath(text);
    REQUIRE(p);
    CHECK(p->ToString() == text);
  }
  CHECK(hl7v2::ParsePath("PID[1]-5[1].1")->ToString() == "PID-5.1");
}
