#include "kakehashi/adapters/hl7v2/message.hpp"

#include "kakehashi/adapters/hl7v2/parser.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

namespace hl7v2 = kakehashi::adapters::hl7v2;

hl7v2::Message ParseOne(const std::string& text) {
  kakehashi::CollectingSink sink;
  hl7v2::ParseOptions options;
  options.source = "test";
  auto result = hl7v2::Parse(text, options, sink);
  REQUIRE(result.messages.size() == 1);
  return std::move(result.messages.front());
}

const std::string kAdt =
    "MSH|^~\\&|HIS|SEND|GW|RCV|20240401093000||ADT^A08^ADT_A01|C0001|P|2.5||||||~ISO IR87\r"
    "EVN||20240401093000\r"
    "PID|0001||0012345678^^^^PI~X9^^^^MR||山本^万里子^^^^^L^I~ヤマモト^マリコ^^^^^L^P||19800102|F||"
    "|"
    "^^^^100-0005^JPN^H^東京都千代田区丸の内一丁目１－１||^PRN^PH^^^^^^^^^03-0000-0000~^EMR^PH^^^^^"
    "^^^^090\r"
    "OBX|1|NM|9N001000000000001^身長^JC10||158.2|cm^cm^ISO+|||||F\r"
    "OBX|2|NM|9N006000000000001^体重^JC10||52.0|kg^kg^ISO+|||||F\r"
    "RXE||103835401^ムコダイン錠２５０ｍｇ^HOT9|\"\"||TAB^錠^MR9P||||||||||||||3^TAB&錠&MR9P\r"
    "ZPR||20054174^胃炎^MDCDX2|||TSQF^胃炎^MDCDX2\r"
    "NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\H\\h\\N\\i\\X41\\\\Zq\\\r";

}  // namespace

TEST_CASE("hl7v2 message: paths address fields, repetitions, components", "[hl7v2][message]") {
  const auto msg = ParseOne(kAdt);
  CHECK(msg.GetText("PID-5.1") == "山本");
  CHECK(msg.GetText("PID-5[1].2") == "万里子");
  CHECK(msg.GetText("PID-5[2].1") == "ヤマモト");
  CHECK(msg.GetText("PID-5[2].8") == "P");
  CHECK(msg.GetText("PID-11.8") == "東京都千代田区丸の内一丁目１－１");
  CHECK(msg.GetText("PID-13[2].2") == "EMR");
  CHECK(msg.GetText("PID-13.12") == "03-0000-0000");
  CHECK(msg.GetText("OBX[2]-3.2") == "体重");
  CHECK(msg.GetText("OBX[2]-5") == "52.0");
  CHECK(msg.GetText("RXE-19.2.1") == "TAB");
  CHECK(msg.GetText("RXE-19.2.2") == "錠");
  CHECK(msg.GetText("ZPR-5.1") == "TSQF");
  // MSH numbering: MSH-1 separator, MSH-2 encoding characters, MSH-3 first field.
  CHECK(msg.GetText("MSH-1") == "|");
  CHECK(msg.Get("MSH-2").Raw() == "^~\\&");
  CHECK(msg.GetText("MSH-3") == "HIS");
  CHECK(msg.GetText("MSH-9.2") == "A08");
  CHECK(msg.GetText("MSH-18[2]") == "ISO IR87");
  CHECK(msg.ControlId() == "C0001");
  CHECK(msg.MessageCode() == "ADT");
  CHECK(msg.TriggerEvent() == "A08");
  CHECK(msg.Structure() == "ADT_A01");
  CHECK(msg.Version() == "2.5");
}

TEST_CASE("hl7v2 message: absent, empty and null values", "[hl7v2][message]") {
  const auto msg = ParseOne(kAdt);
  CHECK_FALSE(msg.Get("PID-99").Present());
  CHECK_FALSE(msg.Get("PV1-1").Present());
  CHECK_FALSE(msg.Get("OBX[3]-1").Present());
  CHECK_FALSE(msg.Get("PID-5[3].1").Present());
  CHECK_FALSE(msg.Get("PID-5.20").Present());
  const auto empty = msg.Get("PID-2");
  CHECK(empty.Present());
  CHECK(empty.Empty());
  const auto null = msg.Get("RXE-3");
  CHECK(null.IsNull());
  CHECK(null.Text().empty());
  CHECK(null.Raw() == "\"\"");
  CHECK_FALSE(msg.Get("not a path").Present());
}

TEST_CASE("hl7v2 message: GetAll with wildcards", "[hl7v2][message]") {
  const auto msg = ParseOne(kAdt);
  const auto ids = msg.GetAll("PID-3[*].1");
  REQUIRE(ids.size() == 2);
  CHECK(ids[0].Text() == "0012345678");
  CHECK(ids[1].Text() == "X9");
  const auto codes = msg.GetAll("OBX[*]-3.1");
  REQUIRE(codes.size() == 2);
  CHECK(codes[1].Text() == "9N006000000000001");
  const auto names = msg.GetAll("PID-5[*]");
  REQUIRE(names.size() == 2);
  CHECK(names[1].Component(2).Text() == "マリコ");
  CHECK(msg.GetAll("OBX[2]-5").size() == 1);
  CHECK(msg.GetAll("AL1[*]-3").empty());
}

TEST_CASE("hl7v2 message: escape sequences resolved lazily", "[hl7v2][message]") {
  const auto msg = ParseOne(kAdt);
  const auto v = msg.Get("NTE-3");
  CHECK(v.Raw().find("\\F\\") != std::string_view::npos);
  // \F\ | \S\ ^ \T\ & \R\ ~ \E\ \ ; \.br\ newline; \H\ \N\ removed; \X41\ 'A'; unknown kept.
  CHECK(v.Text() ==
        "a|b^c&d~e\\f\ngh"
        "iA\\Zq\\");
  std::string scratch;
  CHECK(v.TextView(scratch) == v.Text());
  CHECK(msg.Get("PID-5.1").TextView(scratch).data() == msg.Get("PID-5.1").Raw().data());
}

TEST_CASE("hl7v2 message: Unescape with custom delimiters", "[hl7v2][message]") {
  hl7v2::Delimiters d{'#', '!', '*', '$', '%'};
  CHECK(hl7v2::Unescape("a$F$b$S$c$T$d$R$e$E$", d) == "a#b!c%d*e$");
  CHECK(hl7v2::Unescape("unterminated$F", d) == "unterminated$F");
  CHECK(hl7v2::Unescape("$XE5B1B1$", d) == "山");
  CHECK(hl7v2::Unescape("$XFF$", d) == "$XFF$");  // not UTF-8: kept verbatim
  CHECK(hl7v2::Unescape("$C2842$x$M2442$", d) == "x");
}

TEST_CASE("hl7v2 message: segments, occurrences and groups", "[hl7v2][message]") {
  const std::string rde =
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401||RDE^O11^RDE_O11|C3|P|2.5\r"
      "PID|0001||1^^^^PI\r"
      "ORC|NW|A1\r"
      "RXE||D1^薬1^HOT9\r"
      "TQ1|1\r"
      "RXR|PO\r"
      "ORC|NW|A2\r"
      "RXE||D2^薬2^HOT9\r"
      "TQ1|1\r"
      "TQ1|2\r"
      "RXR|PO\r"
      "ZZZ|custom\r";
  const auto msg = ParseOne(rde);
  REQUIRE(msg.SegmentCount() == 12);
  CHECK(msg.SegmentAt(11).Name() == "ZZZ");
  CHECK(msg.SegmentAt(6).Occurrence() == 2);
  CHECK(msg.Segments().Count("TQ1") == 3);
  auto groups = msg.Segments().Groups("ORC");
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].size() == 4);
  CHECK(groups[1].size() == 6);  // ORC RXE TQ1 TQ1 RXR ZZZ
  CHECK(groups[1].GetText("RXE-2.2") == "薬2");
  CHECK(groups[1].GetText("TQ1[2]-1") == "2");
  CHECK(groups[0].GetText("ORC-2") == "A1");
  CHECK_FALSE(groups[0].Get("TQ1[2]-1").Present());
  groups = msg.Segments().Groups("ORC", {"ZZZ"});
  REQUIRE(groups.size() == 2);
  CHECK(groups[1].size() == 5);
  const auto tq1 = msg.Segments().Find("TQ1", 3);
  REQUIRE(tq1);
  CHECK(tq1->Field(1).Raw() == "2");
  CHECK(tq1->FieldCount() == 1);
  CHECK(msg.SegmentAt(0).Field(2).Raw() == "^~\\&");
  CHECK(msg.SegmentAt(3).Raw() == "RXE||D1^薬1^HOT9");
  CHECK(msg.SegmentAt(3).Line() == 4);
}

TEST_CASE("hl7v2 message: unused fields are reported per field and component", "[hl7v2][message]") {
  const auto msg = ParseOne(
      "MSH|^~\\&|HIS||||20240401||ADT^A08|C1|P|2.5\r"
      "PID|1||ID1||山本^太郎^^^^^L^I||19800102|M\r"
      "ZXY|keep\r");
  (void)msg.Get("MSH-9");
  (void)msg.Get("MSH-10");
  (void)msg.Get("PID-5.1");
  (void)msg.Get("PID-7");
  const auto unused = msg.UnusedFields();
  const std::vector<std::string> expected = {"MSH-3",   "MSH-7", "MSH-11",  "MSH-12",
                                             "PID-1",   "PID-3", "PID-5.2", "PID-5.7",
                                             "PID-5.8", "PID-8", "ZXY-1"};
  CHECK(unused == expected);
  msg.ResetUsage();
  CHECK(msg.UnusedFields().size() == 12);
  (void)msg.GetAll("PID-5[*]");
  CHECK(msg.UnusedFields().size() == 11);
}

TEST_CASE("hl7v2 message: Value navigation", "[hl7v2][message]") {
  const auto msg = ParseOne(kAdt);
  const auto field = msg.SegmentAt(2).Field(5);  // PID-5 whole field
  CHECK(field.RepetitionCount() == 2);
  CHECK(field.ComponentCount() == 8);
  CHECK(field.Component(1).Text() == "山本");
  CHECK(field.Repetition(2).Component(1).Text() == "ヤマモト");
  CHECK(field.Repetition(2).Component(1).Subcomponent(1).Text() == "ヤマモト");
  CHECK_FALSE(field.Repetition(3).Present());
  CHECK_FALSE(field.Component(1).Component(2).Present());
  CHECK(field.Repetition(2).Component(0).Raw() == "ヤマモト^マリコ^^^^^L^P");
  CHECK(field.Repetition(2).Component(1).Subcomponent(0).Text() == "ヤマモト");
  const auto cq = msg.Get("RXE-19");
  CHECK(cq.Component(2).Subcomponent(3).Text() == "MR9P");
}
