#include "kakehashi/common/charset.hpp"

#include "kakehashi/common/errc.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace common = kakehashi::common;
using common::Charset;
using common::DecodeMode;
using common::DecodeProblem;
using common::DecodeProblemKind;

std::string Iso(std::string_view utf8) {
  auto r = common::Encode(utf8, Charset::kIso2022Jp);
  REQUIRE(r);
  return *r;
}

std::string Dec(std::string_view bytes, Charset cs) {
  auto r = common::Decode(bytes, cs);
  REQUIRE(r);
  return *r;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::filesystem::path kSamples = std::filesystem::path(KAKEHASHI_SOURCE_DIR) / "samples";

}  // namespace

TEST_CASE("charset: digest §8 test vectors via JIS -> CP932", "[charset]") {
  // 本 4B5C, ① 2D21 (NEC row 13), 愛 3026, 〜 2141 -> CP932 8160 -> U+FF5E.
  CHECK(Dec("\x1B$BK\\\x1B(B", Charset::kIso2022Jp) == "本");
  CHECK(Dec("\x1B$B-!\x1B(B", Charset::kIso2022Jp) == "①");
  CHECK(Dec("\x1B$B0&\x1B(B", Charset::kIso2022Jp) == "愛");
  CHECK(Dec("\x1B$B!A\x1B(B", Charset::kIso2022Jp) == "\uFF5E");
  // The same characters as CP932 bytes.
  CHECK(Dec("\x96\x7B\x87\x40\x88\xA4\x81\x60", Charset::kCp932) == "本①愛\uFF5E");
  // 0x215D minus -> U+FF0D under CP932 (digest §8 JIS vs CP932 table).
  CHECK(Dec("\x1B$B!]\x1B(B", Charset::kIso2022Jp) == "\uFF0D");
  // Delimiter bytes inside JIS pairs: 万 4B7C '|', マ 255E '^', 京 357E '~'.
  CHECK(Dec("\x1B$BK|%^5~\x1B(B|", Charset::kIso2022Jp) == "万マ京|");
}

TEST_CASE("charset: every JIS X 0208 pair decodes as its Shift_JIS/CP932 bytes", "[charset]") {
  // All 94 x 94 row/cell pairs, one per message, against the CP932 decoder fed the Shift_JIS
  // bytes of the same pair (digest §8 formula): same text, and a problem exactly when the CP932
  // decoder has one (unmapped codes become U+FFFD in both).
  int mapped = 0;
  for (unsigned j1 = 0x21; j1 <= 0x7E; ++j1) {
    for (unsigned j2 = 0x21; j2 <= 0x7E; ++j2) {
      const unsigned s1 = ((j1 + 1) >> 1) + (j1 <= 0x5E ? 0x70 : 0xB0);
      const unsigned s2 = j2 + ((j1 & 1) ? (j2 >= 0x60 ? 0x20 : 0x1F) : 0x7E);
      const std::string jis =
          std::string("A\x1B$B") + static_cast<char>(j1) + static_cast<char>(j2) + "\x1B(B|";
      const std::string sjis =
          std::string("A") + static_cast<char>(s1) + static_cast<char>(s2) + "|";
      std::vector<DecodeProblem> jis_problems, sjis_problems;
      std::string from_jis, from_sjis;
      common::DecodeOptions lenient;
      lenient.mode = DecodeMode::kLenient;
      (void)common::DecodeAppend(jis, Charset::kIso2022Jp, from_jis, &jis_problems, lenient);
      (void)common::DecodeAppend(sjis, Charset::kCp932, from_sjis, &sjis_problems, lenient);
      CAPTURE(j1, j2);
      REQUIRE(from_jis == from_sjis);
      REQUIRE(jis_problems.empty() == sjis_problems.empty());
      if (jis_problems.empty()) ++mapped;
    }
  }
  CHECK(mapped > 7000);  // JIS X 0208 has 6,879 characters; NEC row 13 and IBM rows add more
}

TEST_CASE("charset: NEC row 13 and NEC-selected IBM rows 89-92 decode", "[charset]") {
  CHECK(Dec("\x1B$B-5\x1B(B", Charset::kIso2022Jp) == "Ⅰ");   // 2D35 -> 8754
  CHECK(Dec("\x1B$B-j\x1B(B", Charset::kIso2022Jp) == "㈱");  // 2D6A -> 878A
  CHECK(Dec("\x1B$B-@\x1B(B", Charset::kIso2022Jp) == "㍉");  // 2D40 -> 875F
  CHECK(Dec("\x1B$By!\x1B(B", Charset::kIso2022Jp) == "纊");  // 7921 -> ED40 (row 89)
}

TEST_CASE("charset: every escape-sequence spelling", "[charset]") {
  // ESC ( B and ESC ( J -> ASCII (0x5C stays '\', 0x7E stays '~' so delimiters survive).
  CHECK(Dec("a\x1B(Jb\\~\x1B(Bc", Charset::kIso2022Jp) == "ab\\~c");
  // ESC $ @ (JIS C 6226-1978) decodes like ESC $ B.
  CHECK(Dec("\x1B$@K\\\x1B(B", Charset::kIso2022Jp) == "本");
  // ESC $ ( B: the long form of ESC $ B.
  CHECK(Dec("\x1B$(BK\\\x1B(B", Charset::kIso2022Jp) == "本");
  // ESC $ A (GB 2312) is not decoded.
  CHECK_FALSE(common::Decode("\x1B$A01", Charset::kIso2022Jp));
  // ESC ( I: JIS X 0201 katakana 0x21-0x5F -> U+FF61-U+FF9F.
  CHECK(Dec("\x1B(I1\x1B(B", Charset::kIso2022Jp) == "ｱ");
  CHECK(Dec("\x1B(I!_\x1B(B", Charset::kIso2022Jp) == "｡ﾟ");
  // ESC & @ (1990 announcer) before ESC $ B is ignored.
  CHECK(Dec("\x1B&@\x1B$BK\\\x1B(B", Charset::kIso2022Jp) == "本");
  // CR/LF reset to ASCII even without ESC ( B.
  CHECK(Dec("\x1B$BK\\\rMSH", Charset::kIso2022Jp) == "本\rMSH");
  CHECK(Dec("\x1B$BK\\\nA", Charset::kIso2022Jp) == "本\nA");
}

TEST_CASE("charset: SO/SI and raw 8-bit kana are decoded and flagged", "[charset]") {
  std::vector<DecodeProblem> problems;
  auto r = common::Decode(
      "A\x0E"
      "1\x0F"
      "B",
      Charset::kIso2022Jp, &problems);
  REQUIRE(r);
  CHECK(*r == "AｱB");
  REQUIRE_FALSE(problems.empty());
  CHECK(problems[0].kind == DecodeProblemKind::kNonStandardKana);
  CHECK(problems[0].offset == 1);
  problems.clear();
  r = common::Decode("A\xB1", Charset::kIso2022Jp, &problems);
  REQUIRE(r);
  CHECK(*r == "Aｱ");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kNonStandardKana, 1, 1});
}

TEST_CASE("charset: ISO-2022-JP plain runs end at the first ESC, SO, SI or 8-bit byte",
          "[charset]") {
  // The decoder copies runs of bytes below 0x80 other than ESC, SO and SI eight bytes at a
  // time: every such byte is copied as it is, and each byte that ends a run is found at every
  // offset of a word (0-19) with the same output and problem offsets.
  std::string plain;
  for (int b = 0; b < 0x80; ++b) {
    if (b != 0x1B && b != 0x0E && b != 0x0F) plain += static_cast<char>(b);
  }
  CHECK(Dec(plain, Charset::kIso2022Jp) == plain);
  CHECK(Dec(plain + plain, Charset::kIso2022Jp) == plain + plain);
  common::DecodeOptions lenient{DecodeMode::kLenient};
  const std::string tail = "0123456789abcdef|^~";
  for (std::size_t at = 0; at < 20; ++at) {
    INFO(at);
    const std::string head(at, 'a');
    CHECK(Dec(head + "\x1B$BK\\\x1B(B" + tail, Charset::kIso2022Jp) == head + "本" + tail);
    std::vector<DecodeProblem> problems;
    auto r = common::Decode(head + "\x0E" + "1\x0F" + tail, Charset::kIso2022Jp, &problems);
    REQUIRE(r);
    CHECK(*r == head + "ｱ" + tail);
    REQUIRE(problems.size() == 2);  // SO and SI
    CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kNonStandardKana, at, 1});
    CHECK(problems[1] == DecodeProblem{DecodeProblemKind::kNonStandardKana, at + 2, 1});
    problems.clear();
    r = common::Decode(head + "\xB1" + tail, Charset::kIso2022Jp, &problems);
    REQUIRE(r);
    CHECK(*r == head + "ｱ" + tail);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kNonStandardKana, at, 1});
    problems.clear();
    r = common::Decode(head + "\x80" + tail, Charset::kIso2022Jp, &problems, lenient);
    REQUIRE(r);
    CHECK(*r == head + "\uFFFD" + tail);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kInvalidBytes, at, 1});
  }
}

TEST_CASE("charset: kana mode keeps 0x60-0x7E as ASCII in lenient mode", "[charset]") {
  std::vector<DecodeProblem> problems;
  common::DecodeOptions lenient{DecodeMode::kLenient};
  // A producer that forgets ESC ( B / SI before the delimiter: the delimiter survives.
  auto r = common::Decode("\x1B(I1|2", Charset::kIso2022Jp, &problems, lenient);
  REQUIRE(r);
  CHECK(*r == "ｱ|ｲ");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kInvalidBytes, 4, 1});
  CHECK_FALSE(
      common::Decode("\x0E"
                     "1|",
                     Charset::kIso2022Jp));  // strict: an error
}

TEST_CASE("charset: unknown and truncated escape sequences", "[charset]") {
  std::vector<DecodeProblem> problems;
  // JIS X 0212 (ESC $ ( D) is not decoded.
  auto r = common::Decode("ab\x1B$(D01\x1B(Bc", Charset::kIso2022Jp, &problems);
  REQUIRE_FALSE(r);
  CHECK(r.error() == common::make_error_code(common::errc::kEncoding));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kUnknownEscape, 2, 4});

  problems.clear();
  common::DecodeOptions lenient{DecodeMode::kLenient};
  r = common::Decode("ab\x1B$(D01\x1B(Bc", Charset::kIso2022Jp, &problems, lenient);
  REQUIRE(r);
  CHECK(*r == "ab\uFFFD\uFFFDc");

  for (std::string_view truncated : {"ab\x1B", "ab\x1B$", "ab\x1B(", "ab\x1B$(", "\x1B$BK"}) {
    problems.clear();
    r = common::Decode(truncated, Charset::kIso2022Jp, &problems);
    INFO(truncated.size());
    REQUIRE_FALSE(r);
    REQUIRE_FALSE(problems.empty());
    CHECK(problems.back().kind == DecodeProblemKind::kTruncated);
  }
}

TEST_CASE("charset: invalid bytes report their offset", "[charset]") {
  std::vector<DecodeProblem> problems;
  // 0x80 is not valid in ISO-2022-JP.
  auto r = common::Decode("abc\x80", Charset::kIso2022Jp, &problems);
  REQUIRE_FALSE(r);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kInvalidBytes, 3, 1});
  // Unmapped JIS pair (row 9 is empty in JIS X 0208 and CP932).
  problems.clear();
  r = common::Decode("x\x1B$B)!\x1B(B", Charset::kIso2022Jp, &problems);
  REQUIRE_FALSE(r);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kInvalidBytes, 4, 2});
  // CP932: 0xFF is never valid; a lead byte before a byte that cannot trail (CR) consumes only
  // itself. (`|` 0x7C *can* trail: 0x817C is －.)
  problems.clear();
  common::DecodeOptions lenient{DecodeMode::kLenient};
  r = common::Decode(
      "a\xFF"
      "b\x81\rc",
      Charset::kCp932, &problems, lenient);
  REQUIRE(r);
  CHECK(*r == "a\uFFFDb\uFFFD\rc");
  REQUIRE(problems.size() == 2);
  CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kInvalidBytes, 1, 1});
  CHECK(problems[1] == DecodeProblem{DecodeProblemKind::kInvalidBytes, 3, 1});
  // CP932 truncated lead byte at the end.
  problems.clear();
  r = common::Decode("ab\x96", Charset::kCp932, &problems);
  REQUIRE_FALSE(r);
  CHECK(problems.back() == DecodeProblem{DecodeProblemKind::kTruncated, 2, 1});
  // UTF-8: overlong, surrogate, truncated.
  std::size_t offset = 0;
  CHECK_FALSE(common::IsValidUtf8("ab\xC0\xAF", &offset));
  CHECK(offset == 2);
  CHECK_FALSE(common::IsValidUtf8("\xED\xA0\x80", &offset));
  CHECK(offset == 0);
  problems.clear();
  r = common::Decode("山\xE5\xB1", Charset::kUtf8, &problems);
  REQUIRE_FALSE(r);
  CHECK(problems.back() == DecodeProblem{DecodeProblemKind::kTruncated, 3, 2});
  problems.clear();
  r = common::Decode("a\xE5z", Charset::kUtf8, &problems, lenient);
  REQUIRE(r);
  CHECK(*r == "a\uFFFDz");
  CHECK(problems[0] == DecodeProblem{DecodeProblemKind::kInvalidBytes, 1, 1});
}

TEST_CASE("charset: strict mode keeps the text decoded before the error", "[charset]") {
  std::string out = "prefix:";
  std::vector<DecodeProblem> problems;
  auto r = common::DecodeAppend("ok\x1B$BK\\\x1B(B\x80zz", Charset::kIso2022Jp, out, &problems);
  REQUIRE_FALSE(r);
  CHECK(out == "prefix:ok本");
  CHECK(problems.back().offset == 10);
}

TEST_CASE("charset: UTF-8 BOM stripped and reported", "[charset]") {
  std::vector<DecodeProblem> problems;
  auto r = common::Decode("\xEF\xBB\xBFMSH", Charset::kUtf8, &problems);
  REQUIRE(r);
  CHECK(*r == "MSH");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].kind == DecodeProblemKind::kBomStripped);
  CHECK_FALSE(common::IsError(problems[0].kind));
}

TEST_CASE("charset: ASCII declared but escapes present", "[charset]") {
  std::vector<DecodeProblem> problems;
  auto r = common::Decode("a\x1B$BK\\\x1B(B", Charset::kAscii, &problems);
  REQUIRE(r);
  CHECK(*r == "a本");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].kind == DecodeProblemKind::kUndeclaredEscape);
}

TEST_CASE("charset: Latin-1", "[charset]") {
  CHECK(Dec("caf\xE9", Charset::kLatin1) == "café");
}

TEST_CASE("charset: names from MSH-18, MSH-20 and IANA", "[charset]") {
  using common::CharsetFromName;
  for (std::string_view jis :
       {"ISO IR87", "ISOIR87", "ISO IR 87", "iso ir87", "ISO IR13", "ISO IR14", "ISO IR159",
        "ISO 2022-1994", "ISO2022-1994", " ISO 2022-1994", "ISO-2022-JP", "CP50220", "JIS",
        "ISO 2022 IR 87", "ISO_IR 13"}) {
    INFO(jis);
    CHECK(CharsetFromName(jis) == Charset::kIso2022Jp);
  }
  for (std::string_view sjis :
       {"Shift_JIS", "SJIS", "CP932", "MS932", "Windows-31J", "SHIFT-JIS"}) {
    INFO(sjis);
    CHECK(CharsetFromName(sjis) == Charset::kCp932);
  }
  CHECK(CharsetFromName("UNICODE UTF-8") == Charset::kUtf8);
  CHECK(CharsetFromName("utf8") == Charset::kUtf8);
  CHECK(CharsetFromName("ISO_IR 192") == Charset::kUtf8);
  CHECK(CharsetFromName("ISO IR6") == Charset::kAscii);
  CHECK(CharsetFromName("ASCII") == Charset::kAscii);
  CHECK(CharsetFromName("8859/1") == Charset::kLatin1);
  CHECK_FALSE(CharsetFromName("UNICODE UTF-16"));
  CHECK_FALSE(CharsetFromName("EUC-JP"));
  CHECK_FALSE(CharsetFromName(""));
  CHECK(common::ToString(Charset::kCp932) == "Windows-31J");
}

TEST_CASE("charset: sniffing per digest §8", "[charset]") {
  CHECK(common::SniffCharset("MSH|^~\\&|") == Charset::kIso2022Jp);
  CHECK(common::SniffCharset("a\x1B$BK\\\x1B(B") == Charset::kIso2022Jp);
  CHECK(common::SniffCharset("山本") == Charset::kUtf8);
  CHECK(common::SniffCharset("\x8E\x52\x96\x7B") == Charset::kCp932);  // 山本 in CP932
}

TEST_CASE("charset: encode round trips, returning to ASCII before delimiters", "[charset]") {
  const std::string text =
      "PID|山本^万里子~ヤマモト^マリコ|①㈱Ⅱ|ｱｲｳ|東京都千代田区丸の内一丁目１－１";
  const std::string jis = Iso(text);
  CHECK(jis.find("\x1B$B") != std::string::npos);
  CHECK(jis.find("\x1B(I") != std::string::npos);
  // Every ASCII delimiter is preceded by the ASCII state: decoding per byte would be wrong, but
  // the decoder gives the original back.
  CHECK(Dec(jis, Charset::kIso2022Jp) == text);
  auto sjis = common::Encode(text, Charset::kCp932);
  REQUIRE(sjis);
  CHECK(Dec(*sjis, Charset::kCp932) == text);
  CHECK_FALSE(common::Encode("한국어", Charset::kIso2022Jp));
  CHECK_FALSE(common::Encode("é", Charset::kAscii));
  // JIS-standard code points encode to the CP932 positions (〜 U+301C -> 2141).
  CHECK(Iso("〜") == "\x1B$B!A\x1B(B");
}

TEST_CASE("charset: sample SS-MIX2 files decode (ISO-2022-JP)", "[charset]") {
  const auto root = kSamples / "ssmix2/constructed/standard_root/001/234/0012345678";
  const std::string adt =
      ReadFile(root / "-/ADT-00/0012345678_-_ADT-00_999999999999999_20240401093000123_-_1");
  REQUIRE_FALSE(adt.empty());
  CHECK(common::SniffCharset(adt) == Charset::kIso2022Jp);
  const std::string text = Dec(adt, Charset::kIso2022Jp);
  CHECK(text.find("山本^万里子^^^^^L^I~ヤマモト^マリコ^^^^^L^P") != std::string::npos);
  CHECK(text.find("東京都千代田区丸の内一丁目１－１") != std::string::npos);
  CHECK(text.find("ペニシリン系抗生物質") != std::string::npos);
  // Every sample file decodes without problems.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(
           kSamples / "ssmix2/constructed/standard_root")) {
    if (!entry.is_regular_file()) continue;
    std::vector<DecodeProblem> problems;
    INFO(entry.path().filename().string());
    CHECK(common::Decode(ReadFile(entry.path()), Charset::kIso2022Jp, &problems));
    CHECK(problems.empty());
  }
}

TEST_CASE("charset: sample e-prescription CSV decodes (Shift_JIS, CRLF)", "[charset]") {
  const std::string sjis =
      ReadFile(kSamples / "eprescription/constructed/jahis10-constructed-sjis-crlf.csv");
  const std::string utf8 =
      ReadFile(kSamples / "eprescription/constructed/jahis10-constructed-utf8-lf.txt");
  REQUIRE_FALSE(sjis.empty());
  CHECK(common::SniffCharset(sjis) == Charset::kCp932);
  std::string decoded = Dec(sjis, Charset::kCp932);
  std::string lf;
  for (char c : decoded) {
    if (c != '\r') lf.push_back(c);
  }
  // The UTF-8 rendering of the same prescription, LF line ends.
  CHECK(lf == utf8);
}
