#include "kakehashi/mapping/hl7v2_view.hpp"

#include "kakehashi/adapters/hl7v2/parser.hpp"

#include <catch2/catch.hpp>

using namespace kakehashi;

TEST_CASE("hl7v2 view: positions, repetitions, explicit null, escapes", "[mapping]") {
  CollectingSink issues;
  auto parsed = adapters::hl7v2::Parse(
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401||RDE^O11|C1|P|2.5\r"
      "PID|1||123^^^^PI||山本^万里子^^^^^L^I~ヤマモト^マリコ^^^^^L^P\r"
      "RXE||\"\"^軟膏^99XYZ|\"\"||TAB^錠^MR9P||||||||||||||3^TAB&錠&MR9P|||A\\F\\B\r",
      {}, issues);
  REQUIRE(parsed.messages.size() == 1);
  mapping::Hl7v2View view(parsed.messages.front());
  REQUIRE(view.SegmentCount() == 3);
  CHECK(view.SegmentId(1) == "PID");
  CHECK(view.FieldCount(1) == 5);
  CHECK(view.RepetitionCount(1, 5) == 2);
  CHECK(view.RepetitionCount(1, 4) == 0);
  CHECK(view.Value(1, 5, 2, 1, 1) == "ヤマモト");
  CHECK(view.Value(1, 5, 1, 8, 1) == "I");
  CHECK(view.Value(1, 5, 3, 1, 1).empty());  // past the last repetition
  CHECK(view.Value(1, 3, 1, 0, 0) == "123^^^^PI");
  // `""` is present-and-empty (JAHIS explicit null), never the text "".
  CHECK(view.Value(2, 2, 1, 1, 1).empty());
  CHECK(view.Value(2, 2, 1, 2, 1) == "軟膏");
  CHECK(view.Value(2, 3, 1, 1, 1).empty());
  CHECK(view.RepetitionCount(2, 3) == 0);
  // CQ with the unit as subcomponents: RXE-19.2.2.
  CHECK(view.Value(2, 19, 1, 2, 2) == "錠");
  CHECK(view.Value(2, 22, 1, 1, 1) == "A|B");  // \F\ unescaped
  CHECK(view.Original().rfind("MSH|^~\\&|", 0) == 0);
}
