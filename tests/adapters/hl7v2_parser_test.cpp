#include "kakehashi/adapters/hl7v2/parser.hpp"

#include "kakehashi/common/charset.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace hl7v2 = kakehashi::adapters::hl7v2;
namespace common = kakehashi::common;
using common::Charset;
using kakehashi::CollectingSink;
using kakehashi::Severity;

struct Parsed {
  hl7v2::ParseResult result;
  CollectingSink sink;
  std::set<std::string> Codes() const {
    std::set<std::string> codes;
    for (const auto& i : sink.Issues()) codes.emplace(i.code);
    return codes;
  }
  bool Has(std::string_view code) const { return Codes().count(std::string(code)) > 0; }
  const kakehashi::Issue* Find(std::string_view code) const {
    for (const auto& i : sink.Issues()) {
      if (i.code == code) return &i;
    }
    return nullptr;
  }
};

std::unique_ptr<Parsed> Run(std::string_view bytes, hl7v2::ParseOptions options = {}) {
  auto p = std::make_unique<Parsed>();
  if (options.source.empty()) options.source = "test.hl7";
  p->result = hl7v2::Parse(bytes, options, p->sink);
  return p;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string EncodeTo(std::string_view utf8, Charset cs) {
  auto r = common::Encode(utf8, cs);
  REQUIRE(r);
  return *r;
}

// A JAHIS-style ADT^A08 in UTF-8 whose JIS bytes contain every delimiter (万 |, マ ^, 京 ~,
// 本 \, 愛 &).
const std::string kAdtUtf8 =
    "MSH|^~\\&|HIS|SEND|GW|RCV|20240401093000||ADT^A08^ADT_A01|C0001|P|2.5||||||~ISO IR87||"
    "ISO 2022-1994\r"
    "EVN||20240401093000\r"
    "PID|0001||0012345678^^^^PI||山本^万里子^^^^^L^I~ヤマモト^マリコ^^^^^L^P||19800102|F|||"
    "^^^^100-0005^JPN^H^東京都千代田区丸の内一丁目１－１愛||^PRN^PH^^^^^^^^^03-0000-0000\r"
    "PV1|0001|O\r"
    "IN1|1|06^組合管掌健康保険^JHSD0001|06139992|カケハシ健康保険組合||||||１２３|４５６７|"
    "20240401\r"
    "ZPR||20054174^胃炎^MDCDX2\r";

// The same message declared as what it is (UTF-8).
std::string DeclaredUtf8(std::string m) {
  m.replace(m.find("~ISO IR87||ISO 2022-1994"), 24, "UNICODE UTF-8||");
  return m;
}

// The same message declared Shift_JIS.
std::string DeclaredSjis(std::string m) {
  m.replace(m.find("~ISO IR87||ISO 2022-1994"), 24, "SHIFT_JIS||");
  return m;
}

const std::filesystem::path kSamples = std::filesystem::path(KAKEHASHI_SOURCE_DIR) / "samples";

}  // namespace

TEST_CASE("hl7v2 parser: SS-MIX2 sample files parse with the right Japanese names",
          "[hl7v2][parser]") {
  const auto root = kSamples / "ssmix2/constructed/standard_root/001/234/0012345678";
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string bytes = ReadFile(entry.path());
    auto p = Run(bytes);
    INFO(entry.path().filename().string());
    REQUIRE(p->result.messages.size() == 1);
    CHECK(p->sink.Issues().empty());
    const auto& msg = p->result.messages[0];
    CHECK(msg.SourceCharset() == Charset::kIso2022Jp);
    CHECK(msg.GetText("PID-5[1].1") == "山本");
    CHECK(msg.GetText("PID-5[1].2") == "万里子");
    CHECK(msg.GetText("PID-5[2].1") == "ヤマモト");
    CHECK(msg.GetText("PID-5[2].2") == "マリコ");
    CHECK(msg.GetText("PID-3.1") == "0012345678");
    CHECK(msg.GetText("MSH-18[2]") == "ISO IR87");
  }
  CHECK(files == 6);
  const std::string adt =
      ReadFile(root / "-/ADT-00/0012345678_-_ADT-00_999999999999999_20240401093000123_-_1");
  auto p = Run(adt);
  const auto& msg = p->result.messages.at(0);
  CHECK(msg.GetText("PID-11.8") == "東京都千代田区丸の内一丁目１－１");
  CHECK(msg.GetText("AL1-3.2") == "ペニシリン系抗生物質");
  CHECK(msg.GetText("OBX[2]-3.2") == "体重");
  CHECK(msg.ControlId() == "C0001");
  const std::string rde = ReadFile(
      root / "20240401/OMP-01/0012345678_20240401_OMP-01_000000000012345_20240401101600000_01_1");
  p = Run(rde);
  const auto& order = p->result.messages.at(0);
  const auto groups = order.Segments().Groups("ORC");
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].GetText("RXE-2.2") == "ムコダイン錠２５０ｍｇ");
  CHECK(groups[0].GetText("TQ1-3.2") == "");  // TQ1-3 uses subcomponents: component 1 holds all
  CHECK(groups[0].GetText("TQ1-3.1.2") == "内服・経口・１日３回朝昼夕食後");
  CHECK(groups[0].GetText("RXE-21[2].2") == "院外処方");
}

TEST_CASE("hl7v2 parser: the same message in every charset gives the same text",
          "[hl7v2][parser]") {
  const auto expected = Run(kAdtUtf8);
  REQUIRE(expected->result.messages.size() == 1);
  for (const Charset cs : {Charset::kIso2022Jp, Charset::kCp932, Charset::kUtf8}) {
    std::string bytes = EncodeTo(kAdtUtf8, cs);
    if (cs == Charset::kCp932) {
      // Declare it, as a Shift_JIS producer would.
      const auto pos = bytes.find("~ISO IR87");
      bytes.replace(pos, 9, "SHIFT_JIS");
    } else if (cs == Charset::kUtf8) {
      const auto pos = bytes.find("~ISO IR87");
      bytes.replace(pos, 9, "UNICODE UTF-8");
    }
    INFO(common::ToString(cs));
    auto p = Run(bytes);
    REQUIRE(p->result.messages.size() == 1);
    const auto& msg = p->result.messages[0];
    CHECK(msg.SourceCharset() == cs);
    CHECK(p->sink.Issues().empty());
    CHECK(msg.GetText("PID-5.1") == "山本");
    CHECK(msg.GetText("PID-5.2") == "万里子");
    CHECK(msg.GetText("PID-5[2].2") == "マリコ");
    CHECK(msg.GetText("PID-11.8") == "東京都千代田区丸の内一丁目１－１愛");
    CHECK(msg.GetText("IN1-10") == "１２３");
    CHECK(msg.GetText("IN1-4") == "カケハシ健康保険組合");
    CHECK(msg.GetText("ZPR-2.2") == "胃炎");
    CHECK(msg.SegmentCount() == 6);
  }
}

TEST_CASE("hl7v2 parser: splitting raw ISO-2022-JP bytes would break; decoding first does not",
          "[hl7v2][parser]") {
  const std::string jis = EncodeTo(kAdtUtf8, Charset::kIso2022Jp);
  // The raw PID line holds more '|' bytes than fields (万 = 0x4B7C).
  const auto pid_begin = jis.find("PID|");
  const auto pid_end = jis.find('\r', pid_begin);
  const std::string raw_pid = jis.substr(pid_begin, pid_end - pid_begin);
  auto p = Run(jis);
  const auto pid = p->result.messages.at(0).Segments().Find("PID");
  REQUIRE(pid);
  CHECK(std::count(raw_pid.begin(), raw_pid.end(), '|') > pid->FieldCount());
  CHECK(pid->FieldCount() == 13);
}

TEST_CASE("hl7v2 parser: every delimiter set", "[hl7v2][parser]") {
  struct Set {
    char f, c, r, e, s;
  };
  for (const Set d : {Set{'|', '^', '~', '\\', '&'}, Set{'#', '!', '*', '$', '%'},
                      Set{';', ':', '+', '?', '='}, Set{'/', ',', '@', '`', '{'}}) {
    std::string m = "MSH";
    m += d.f;
    m += d.c;
    m += d.r;
    m += d.e;
    m += d.s;
    const std::string fs(1, d.f), cs(1, d.c), rs(1, d.r), es(1, d.e), ss(1, d.s);
    m += fs + "HIS" + fs + fs + fs + fs + "20240401" + fs + fs + "ADT" + cs + "A08" + fs + "C9" +
         fs + "P" + fs + "2.5\r";
    m += "PID" + fs + "1" + fs + fs + "A" + rs + "B" + fs + fs + "山本" + cs + "太郎" + ss + "x" +
         fs + "a" + es + "F" + es + "b" + es + "S" + es + "c\r";
    INFO(m.substr(0, 9));
    auto p = Run(m);
    REQUIRE(p->result.messages.size() == 1);
    const auto& msg = p->result.messages[0];
    CHECK(msg.GetDelimiters() == hl7v2::Delimiters{d.f, d.c, d.r, d.e, d.s});
    CHECK(msg.GetText("MSH-9.2") == "A08");
    CHECK(msg.GetText("PID-3[2]") == "B");
    CHECK(msg.GetText("PID-5.2.1") == "太郎");
    CHECK(msg.GetText("PID-5.2.2") == "x");
    CHECK(msg.GetText("PID-6") == "a" + fs + "b" + cs + "c");
    CHECK(msg.ControlId() == "C9");
  }
}

TEST_CASE("hl7v2 parser: segment separators CR, LF, CRLF and stray framing bytes",
          "[hl7v2][parser]") {
  for (const std::string sep : {"\r", "\n", "\r\n", "\n\r"}) {
    std::string m = DeclaredUtf8(kAdtUtf8);
    std::string out;
    for (char c : m) {
      if (c == '\r') {
        out += sep;
      } else {
        out.push_back(c);
      }
    }
    auto p = Run(out);
    REQUIRE(p->result.messages.size() == 1);
    CHECK(p->result.messages[0].SegmentCount() == 6);
    CHECK(p->result.messages[0].GetText("ZPR-2.2") == "胃炎");
    CHECK(p->sink.Issues().empty());
  }
  // MLLP framing: 0x0B before, 0x1C 0x0D after; also a stray 0x1C inside the file.
  auto p = Run("\x0B" + DeclaredUtf8(kAdtUtf8) + "\x1C\r");
  REQUIRE(p->result.messages.size() == 1);
  CHECK(p->result.messages[0].SegmentCount() == 6);
  CHECK(p->sink.Issues().empty());
  CHECK(p->result.messages[0].Text().find('\x1C') == std::string::npos);
}

TEST_CASE("hl7v2 parser: several messages per file, split at each MSH", "[hl7v2][parser]") {
  std::string file;
  for (int i = 0; i < 3; ++i) {
    std::string m = kAdtUtf8;
    m.replace(m.find("C0001"), 5, "C000" + std::to_string(i));
    file += EncodeTo(m, Charset::kIso2022Jp) + "\n";
  }
  file += "\x1C\r\n";
  auto p = Run(file);
  REQUIRE(p->result.messages.size() == 3);
  for (int i = 0; i < 3; ++i) {
    const auto& msg = p->result.messages[i];
    CHECK(msg.ControlId() == "C000" + std::to_string(i));
    CHECK(msg.IndexInSource() == static_cast<std::size_t>(i));
    CHECK(msg.GetText("PID-5.2") == "万里子");
    CHECK(msg.SegmentCount() == 6);
  }
  CHECK(p->result.messages[1].SourceOffset() == p->result.messages[0].SourceSize());
  const auto ranges = hl7v2::SplitMessages(file);
  REQUIRE(ranges.size() == 3);
  CHECK(ranges[0].offset == 0);
  CHECK(ranges[1].offset == ranges[0].size);
  // Batch envelope segments are skipped with a note, the messages are read.
  auto batch = Run("FHS|^~\\&\rBHS|^~\\&\r" + kAdtUtf8 + kAdtUtf8 + "BTS|2\rFTS|1\r");
  CHECK(batch->result.messages.size() == 2);
  CHECK(batch->Has("hl7v2.batch.skipped"));
  CHECK(batch->result.messages[1].SegmentCount() == 6);
}

TEST_CASE("hl7v2 parser: Z-segments and unknown segments are kept in order", "[hl7v2][parser]") {
  auto p =
      Run("MSH|^~\\&|A||||1||ADT^A08|1|P|2.5\rZA1|x\rPID|1\rQQQ|y|z\rZPR||20054174^胃炎^MDCDX2\r");
  const auto& msg = p->result.messages.at(0);
  REQUIRE(msg.SegmentCount() == 5);
  CHECK(msg.SegmentAt(1).Name() == "ZA1");
  CHECK(msg.SegmentAt(3).Name() == "QQQ");
  CHECK(msg.GetText("QQQ-2") == "z");
  CHECK(msg.GetText("ZPR-2.2") == "胃炎");
  // Only the note that MSH-18 is missing (UTF-8 detected).
  REQUIRE(p->sink.Issues().size() == 1);
  CHECK(p->sink.Issues()[0].code == "hl7v2.encoding.undeclared");
}

TEST_CASE("hl7v2 parser: malformed inputs yield the documented issue codes", "[hl7v2][parser]") {
  SECTION("not HL7 at all") {
    auto p = Run("hello world\nthis is not a message\n");
    CHECK(p->result.messages.empty());
    CHECK(p->Has("hl7v2.not_hl7"));
    CHECK(p->Find("hl7v2.not_hl7")->severity == Severity::kFatal);
    REQUIRE(p->result.rejected.size() == 1);
    CHECK(p->result.rejected[0].size == 34);
    auto empty = Run("");
    CHECK(empty->Has("hl7v2.not_hl7"));
    auto binary = Run(std::string("\x89PNG\r\n\x1A\n\0\0\0", 11));
    CHECK(binary->Has("hl7v2.not_hl7"));
  }
  SECTION("segments before the first MSH") {
    auto p = Run("PID|1\r" + kAdtUtf8);
    CHECK(p->result.messages.size() == 1);
    CHECK(p->Has("hl7v2.msh.missing"));
    REQUIRE(p->result.rejected.size() == 1);
    CHECK(p->result.rejected[0] == hl7v2::ByteRange{0, 5});
  }
  SECTION("truncated MSH") {
    for (const std::string t : {"MSH", "MSH|", "MSH|^~", "MSH|^~\\"}) {
      INFO(t);
      auto p = Run(t);
      CHECK(p->result.messages.empty());
      CHECK(p->Has("hl7v2.msh.truncated"));
      CHECK(p->Find("hl7v2.msh.truncated")->severity == Severity::kFatal);
      CHECK(p->result.rejected.size() == 1);
    }
    auto p = Run("MSH|^~\\&|HIS|SEND\rPID|1\r");
    REQUIRE(p->result.messages.size() == 1);  // kept: delimiters are known
    CHECK(p->Has("hl7v2.msh.truncated"));
    CHECK(p->Find("hl7v2.msh.truncated")->severity == Severity::kError);
    CHECK(p->result.messages[0].GetText("PID-1") == "1");
  }
  SECTION("bad delimiters") {
    for (const std::string t :
         {"MSH|^^\\&|A||||1||ADT^A08|1|P|2.5", "MSH|AB\\&|x", "MSH|^~\\|x", "MSH ^~\\&"}) {
      INFO(t);
      auto p = Run(t);
      CHECK(p->result.messages.empty());
      CHECK(p->Has("hl7v2.msh.bad_delimiters"));
    }
  }
  SECTION("empty control id") {
    auto p = Run("MSH|^~\\&|A||||1||ADT^A08|C1|P|2.5\rMSH|^~\\&|A||||1||ADT^A08||P|2.5\r");
    CHECK(p->Has("hl7v2.msh.no_control_id"));
    CHECK(p->Find("hl7v2.msh.no_control_id")->where.record == "message 2");
    auto q = Run("MSH|^~\\&|A||||1||ADT^A08|C1|P|2.5\rMSH|^~\r");
    CHECK(q->Find("hl7v2.msh.truncated")->where.record == "message 2");
  }
  SECTION("bytes invalid for the declared encoding, with offsets") {
    std::string bytes = EncodeTo(kAdtUtf8, Charset::kIso2022Jp);
    const auto pid = bytes.find("PID|");
    bytes.insert(pid + 4, "\x80\x80");  // 8-bit bytes are not ISO-2022-JP
    auto p = Run(bytes);
    REQUIRE(p->result.messages.size() == 1);
    CHECK(p->result.messages[0].HasDecodeErrors());
    const auto* issue = p->Find("hl7v2.encoding.invalid_bytes");
    REQUIRE(issue);
    CHECK(issue->severity == Severity::kError);
    CHECK(issue->where.byte == static_cast<std::int64_t>(pid + 4));
    CHECK(issue->where.line == 3);
    CHECK(issue->where.record == "C0001");
    CHECK(issue->where.field == "PID-1");
    CHECK(p->result.messages[0].GetText("PID-1") == "\uFFFD\uFFFD0001");
    // Messages never contain the data.
    CHECK(issue->message.find("0001") == std::string::npos);
  }
  SECTION("the field of a bad byte is found without decoding (JIS pairs hold '|')") {
    std::string bytes = EncodeTo(kAdtUtf8, Charset::kIso2022Jp);
    // After PID-11 (whose JIS bytes contain 0x7C for 万 in PID-5 before it) insert a bad byte
    // at the start of PID-13.
    const auto pid = bytes.find("PID|");
    const auto phone = bytes.find("^PRN^PH", pid);
    bytes.insert(phone, "\xFF");
    auto p = Run(bytes);
    const auto* issue = p->Find("hl7v2.encoding.invalid_bytes");
    REQUIRE(issue);
    CHECK(issue->where.field == "PID-13");
    // CP932: trail bytes equal to '|' are not separators (－ in PID-11 is 0x81 0x7C).
    std::string sjis = EncodeTo(DeclaredSjis(kAdtUtf8), Charset::kCp932);
    REQUIRE(sjis.find("\x81|") != std::string::npos);
    const auto sjis_pid = sjis.find("PID|");
    sjis.insert(sjis.find("^PRN^PH", sjis_pid), "\xFF");
    p = Run(sjis);
    issue = p->Find("hl7v2.encoding.invalid_bytes");
    REQUIRE(issue);
    CHECK(issue->where.field == "PID-13");
  }
  SECTION("UTF-8 declared, invalid bytes") {
    std::string bytes = kAdtUtf8;
    bytes.replace(bytes.find("~ISO IR87"), 9, "UNICODE UTF-8");
    bytes.insert(bytes.find("PID|") + 4, "\xFF");
    auto p = Run(bytes);
    CHECK(p->Has("hl7v2.encoding.invalid_bytes"));
    CHECK(p->result.messages.at(0).SourceCharset() == Charset::kUtf8);
  }
  SECTION("truncated inside a JIS pair or an escape sequence") {
    const std::string jis = EncodeTo(kAdtUtf8, Charset::kIso2022Jp);
    const auto esc = jis.find("\x1B$B", jis.find("PID|"));
    auto p = Run(jis.substr(0, esc + 2));
    CHECK(p->Has("hl7v2.encoding.truncated"));
    p = Run(jis.substr(0, esc + 4));
    CHECK(p->Has("hl7v2.encoding.truncated"));
  }
  SECTION("unknown ISO 2022 escape (JIS X 0212)") {
    auto p = Run("MSH|^~\\&|A||||1||ADT^A08|1|P|2.5||||||~ISO IR87\rPID|1||\x1B$(D01\x1B(B\r");
    CHECK(p->Has("hl7v2.encoding.unknown_escape"));
    CHECK(p->result.messages.at(0).GetText("PID-3") == "\uFFFD\uFFFD");
  }
  SECTION("unknown charset in MSH-18 falls back to detection") {
    auto p = Run("MSH|^~\\&|A||||1||ADT^A08|1|P|2.5||||||UNICODE UTF-16\rPID|1||山本\r");
    CHECK(p->Has("hl7v2.encoding.unknown_charset"));
    CHECK(p->result.messages.at(0).SourceCharset() == Charset::kUtf8);
    CHECK(p->result.messages.at(0).GetText("PID-3") == "山本");
  }
  SECTION("escape sequences: removed and unknown are reported") {
    auto p = Run("MSH|^~\\&|A||||1||ADT^A08|1|P|2.5\rNTE|1||a\\H\\b\\N\\\rNTE|2||\\Q\\\r");
    CHECK(p->Has("hl7v2.escape.removed"));
    CHECK(p->Has("hl7v2.escape.unknown"));
    CHECK(p->Find("hl7v2.escape.unknown")->where.field == "NTE[2]-3");
    CHECK(p->result.messages.at(0).GetText("NTE-3") == "ab");
  }
  SECTION("bad segment names are kept and reported") {
    auto p = Run("MSH|^~\\&|A||||1||ADT^A08|1|P|2.5\rpid|1\rTOOLONG|2\r");
    CHECK(p->Has("hl7v2.segment.bad_name"));
    CHECK(p->result.messages.at(0).SegmentCount() == 3);
  }
}

TEST_CASE("hl7v2 parser: charset choice", "[hl7v2][parser]") {
  SECTION("declared ISO IR87 but the bytes are UTF-8") {
    // kAdtUtf8 itself declares ~ISO IR87 but is written in UTF-8: the bytes win.
    auto p = Run(kAdtUtf8);
    REQUIRE(p->result.messages.size() == 1);
    CHECK(p->result.messages[0].SourceCharset() == Charset::kUtf8);
    CHECK(p->Has("hl7v2.encoding.mismatch"));
    CHECK(p->Find("hl7v2.encoding.mismatch")->severity == Severity::kWarning);
    CHECK(p->result.messages[0].GetText("PID-5.1") == "山本");
  }
  SECTION("no MSH-18, Shift_JIS bytes") {
    std::string m = kAdtUtf8;
    m.replace(m.find("~ISO IR87||ISO 2022-1994"), 24, "");
    auto p = Run(EncodeTo(m, Charset::kCp932));
    REQUIRE(p->result.messages.size() == 1);
    CHECK(p->result.messages[0].SourceCharset() == Charset::kCp932);
    CHECK(p->Has("hl7v2.encoding.undeclared"));
    CHECK(p->result.messages[0].GetText("PID-5.1") == "山本");
  }
  SECTION("forced charset") {
    hl7v2::ParseOptions options;
    options.charset = Charset::kCp932;
    auto p = Run(EncodeTo(kAdtUtf8, Charset::kCp932), options);
    CHECK(p->result.messages.at(0).GetText("PID-5.1") == "山本");
    CHECK(p->sink.Issues().empty());
  }
  SECTION("Japanese before MSH-18 (MSH-4 facility name)") {
    std::string m = kAdtUtf8;
    m.replace(m.find("|SEND|"), 6, "|病院|");
    auto p = Run(EncodeTo(m, Charset::kIso2022Jp));
    REQUIRE(p->result.messages.size() == 1);
    CHECK(p->result.messages[0].GetText("MSH-4") == "病院");
    CHECK(p->result.messages[0].SourceCharset() == Charset::kIso2022Jp);
    CHECK(p->sink.Issues().empty());
  }
  SECTION("DeclaredCharset") {
    bool unknown = false;
    CHECK(hl7v2::DeclaredCharset("~ISO IR87", "ISO 2022-1994", '~') == Charset::kIso2022Jp);
    CHECK(hl7v2::DeclaredCharset("ISO IR6~ISO IR87", "", '~') == Charset::kIso2022Jp);
    CHECK(hl7v2::DeclaredCharset("~ISOIR87", "", '~') == Charset::kIso2022Jp);
    CHECK(hl7v2::DeclaredCharset("", "ISO2022-1994", '~') == Charset::kIso2022Jp);
    CHECK(hl7v2::DeclaredCharset("UNICODE UTF-8", "", '~') == Charset::kUtf8);
    CHECK(hl7v2::DeclaredCharset("ASCII", "", '~') == Charset::kAscii);
    CHECK_FALSE(hl7v2::DeclaredCharset("", "", '~'));
    CHECK_FALSE(hl7v2::DeclaredCharset("BIG-5", "", '~', &unknown));
    CHECK(unknown);
  }
}

TEST_CASE("hl7v2 parser: every prefix of a message parses without crashing", "[hl7v2][parser]") {
  for (const Charset cs : {Charset::kIso2022Jp, Charset::kCp932, Charset::kUtf8}) {
    const std::string bytes = EncodeTo(kAdtUtf8, cs);
    const std::size_t msh_end = bytes.find('\r');
    for (std::size_t n = 0; n <= bytes.size(); ++n) {
      const std::string prefix = bytes.substr(0, n);
      auto p = Run(prefix);
      INFO(common::ToString(cs) << " prefix " << n);
      if (n < 8) {
        // Up to "MSH|^~\&": no usable message.
        CHECK(p->result.messages.empty());
        CHECK(p->sink.Counts().Errors() > 0);
      } else if (n < msh_end) {
        // MSH cut before MSH-12: kept but flagged (or charset detection may differ).
        REQUIRE(p->result.messages.size() == 1);
        CHECK(p->Has("hl7v2.msh.truncated") ==
              (p->result.messages[0].SegmentAt(0).FieldCount() < 12));
      } else {
        REQUIRE(p->result.messages.size() == 1);
        // Whatever was complete is readable.
        const auto& msg = p->result.messages[0];
        CHECK(msg.ControlId() == "C0001");
        if (n == bytes.size()) CHECK(msg.GetText("ZPR-2.2") == "胃炎");
      }
    }
  }
}

TEST_CASE(
    "hl7v2 parser: every split point of a two-message stream yields the messages of "
    "each part",
    "[hl7v2][parser]") {
  const std::string one = EncodeTo(kAdtUtf8, Charset::kIso2022Jp);
  const std::string two = one + one;
  for (std::size_t cut = 0; cut <= two.size(); ++cut) {
    auto a = Run(two.substr(0, cut));
    auto b = Run(two.substr(cut));
    INFO("cut " << cut);
    // No message is lost: at most one message is damaged by the cut.
    const std::size_t got = a->result.messages.size() + b->result.messages.size();
    CHECK(got >= 1);
    CHECK(got <= 3);
    if (cut == 0 || cut == one.size() || cut == two.size()) {
      CHECK(got == 2);
      CHECK(a->sink.Counts().Errors() + b->sink.Counts().Errors() ==
            (cut == 0 || cut == two.size() ? 1u : 0u));
    }
  }
}

TEST_CASE("hl7v2 parser: issues never carry field values", "[hl7v2][parser]") {
  // A sentinel standing for patient data, placed in every field that has a problem.
  const std::string secret = "YAMADASECRET";
  const std::string input =
      "junk " + secret + "\r" +                                   // msh.missing
      "MSH|^~\\&|A||||1||ADT^A08||P|2.5||||||UNICODE UTF-16\r" +  // no id, charset
      "PID|1||" + secret + "\\Q\\" + secret + "\\H\\||" + secret + "\x80" + secret + "\r" + "pid|" +
      secret + "\r" +                                // bad name
      "MSH|^~\\&|A\r" +                              // truncated MSH
      "PID|" + secret + "\x1B$(D" + secret + "\r" +  // unknown escape
      "MSH|^^^^|" + secret + "\r" +                  // bad delimiters
      "BTS|" + secret + "\r";                        // batch
  auto p = Run(input);
  REQUIRE(p->sink.Issues().size() >= 8);
  for (const auto& issue : p->sink.Issues()) {
    INFO(issue.ToString());
    CHECK(issue.message.find("YAMADA") == std::string::npos);
    CHECK(issue.where.field.find("YAMADA") == std::string::npos);
    CHECK(issue.where.record.find("YAMADA") == std::string::npos);
    CHECK(issue.ToString().find("YAMADA") == std::string::npos);
  }
  const auto codes = p->Codes();
  for (const char* code :
       {"hl7v2.msh.missing", "hl7v2.msh.no_control_id", "hl7v2.encoding.unknown_charset",
        "hl7v2.escape.unknown", "hl7v2.escape.removed", "hl7v2.segment.bad_name",
        "hl7v2.msh.truncated", "hl7v2.msh.bad_delimiters", "hl7v2.batch.skipped"}) {
    INFO(code);
    CHECK(codes.count(code) == 1);
  }
}

TEST_CASE("parser: field ends and escapes found at every position of an 8-byte word", "[hl7v2]") {
  // The index scans eight bytes at a time: fields of every length 0-19 (separator at every lane)
  // with an unterminated escape (reported as hl7v2.escape.unknown) before, at or after the field
  // end, and escape-free fields that must not be reported.
  for (std::size_t length = 0; length < 20; ++length) {
    for (std::size_t esc = 0; esc <= length + 1; ++esc) {
      CAPTURE(length, esc);
      std::string field(length, 'x');
      std::string next = "yyyyyyyyy";  // the field after it (the segment's last)
      if (esc < length) field[esc] = '\\';
      if (esc == length + 1) next[3] = '\\';  // an escape only after the field end
      const std::string text = "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5\rNTE|" + field + "|" +
                               next + "\rNTE|" + std::string(length, 'z') + "\r";
      auto p = Run(text);
      REQUIRE(p->result.messages.size() == 1);
      const auto& m = p->result.messages[0];
      REQUIRE(m.SegmentCount() == 3);
      REQUIRE(m.SegmentAt(1).FieldCount() == 2);
      CHECK(m.SegmentAt(1).Field(1).Raw() == field);
      CHECK(m.SegmentAt(1).Field(2).Raw() == next);
      CHECK(m.SegmentAt(2).Field(1).Raw() == std::string(length, 'z'));
      const auto* unknown = p->Find("hl7v2.escape.unknown");
      if (esc < length) {
        REQUIRE(unknown != nullptr);
        CHECK(unknown->where.field == "NTE-1");
      } else if (esc == length + 1) {
        REQUIRE(unknown != nullptr);
        CHECK(unknown->where.field == "NTE-2");
      } else {
        CHECK(unknown == nullptr);
      }
    }
  }
}
