#include "kakehashi/common/issue.hpp"

#include <catch2/catch.hpp>

using kakehashi::Issue;
using kakehashi::Location;
using kakehashi::Severity;

TEST_CASE("severity names are the FHIR issue-severity codes", "[common][issue]") {
  CHECK(kakehashi::ToString(Severity::kFatal) == "fatal");
  CHECK(kakehashi::ToString(Severity::kInformation) == "information");
  CHECK(kakehashi::SeverityFromString("warning") == Severity::kWarning);
  CHECK_FALSE(kakehashi::SeverityFromString("warn").has_value());
}

TEST_CASE("locations render compactly and in a fixed order", "[common][issue]") {
  Location where;
  CHECK(where.ToString() == "(unknown location)");
  where.source = "adt.hl7";
  where.record = "MSG0001";
  where.field = "PID-7";
  where.byte = 120;
  where.fhir_path = "Patient.birthDate";
  CHECK(where.ToString() == "adt.hl7 record MSG0001 PID-7 byte 120 -> Patient.birthDate");
  const Issue issue{Severity::kError, "hl7v2.pid.bad_date", where, "PID-7 is not a date"};
  CHECK(issue.ToString() ==
        "error hl7v2.pid.bad_date at adt.hl7 record MSG0001 PID-7 byte 120 -> Patient.birthDate: "
        "PID-7 is not a date");
}
