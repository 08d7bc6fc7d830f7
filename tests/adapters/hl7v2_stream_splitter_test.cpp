#include "kakehashi/adapters/hl7v2/stream_splitter.hpp"

#include "kakehashi/common/charset.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

namespace hl7v2 = kakehashi::adapters::hl7v2;
namespace common = kakehashi::common;

struct Outcome {
  std::vector<std::string> control_ids;
  std::vector<std::string> texts;
  std::vector<std::size_t> offsets;
  std::vector<std::size_t> indexes;
  std::vector<std::string> issues;  // ToString() of every issue (code, location, message)
};

Outcome OneShot(std::string_view bytes) {
  kakehashi::CollectingSink sink;
  hl7v2::ParseOptions options;
  options.source = "stream";
  const auto r = hl7v2::Parse(bytes, options, sink);
  Outcome o;
  for (const auto& m : r.messages) {
    o.control_ids.emplace_back(m.ControlId());
    o.texts.emplace_back(m.Text());
    o.offsets.push_back(m.SourceOffset());
    o.indexes.push_back(m.IndexInSource());
  }
  for (const auto& i : sink.Issues()) o.issues.push_back(i.ToString());
  return o;
}

Outcome Streamed(const std::vector<std::string_view>& chunks) {
  hl7v2::StreamSplitter splitter;
  kakehashi::CollectingSink sink;
  hl7v2::ParseOptions base;
  base.source = "stream";
  Outcome o;
  auto drain = [&] {
    while (auto piece = splitter.Next()) {
      const auto r = hl7v2::Parse(piece->bytes, piece->Options(base), sink);
      for (const auto& m : r.messages) {
        o.control_ids.emplace_back(m.ControlId());
        o.texts.emplace_back(m.Text());
        o.offsets.push_back(m.SourceOffset());
        o.indexes.push_back(m.IndexInSource());
      }
    }
  };
  for (const auto chunk : chunks) {
    splitter.Put(chunk);
    drain();
  }
  splitter.Finish();
  drain();
  CHECK(splitter.Buffered() == 0);
  for (const auto& i : sink.Issues()) o.issues.push_back(i.ToString());
  return o;
}

void RequireSame(const Outcome& a, const Outcome& b) {
  CHECK(a.control_ids == b.control_ids);
  CHECK(a.texts == b.texts);
  CHECK(a.offsets == b.offsets);
  CHECK(a.indexes == b.indexes);
  CHECK(a.issues == b.issues);
}

std::string Stream() {
  const std::string m1 =
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401||ADT^A08|S1|P|2.5||||||~ISO IR87\r"
      "PID|0001||1^^^^PI||山本^万里子~ヤマモト^マリコ\r";
  const std::string m2 =
      "MSH|^~\\&|HIS|SEND|GW|RCV|20240401||ADT^A08|S2|P|2.5||||||~ISO IR87\r\n"
      "PID|0002||2^^^^PI||京極^愛\r\n";
  const std::string m3 = "MSH|^~\\&|HIS|SEND|GW|RCV|20240401||ADT^A08|S3|P\n";  // truncated
  auto iso = [](const std::string& s) { return *common::Encode(s, common::Charset::kIso2022Jp); };
  return "junk line\r" + iso(m1) + "\x1C\r\x0B" + iso(m2) + "\n" + iso(m3) + "MSHX|not a header\r";
}

}  // namespace

TEST_CASE("hl7v2 stream splitter: whole stream in one Put equals Parse", "[hl7v2][stream]") {
  const std::string s = Stream();
  const auto expected = OneShot(s);
  REQUIRE(expected.control_ids == std::vector<std::string>{"S1", "S2", "S3"});
  RequireSame(Streamed({s}), expected);
}

TEST_CASE("hl7v2 stream splitter: split at every byte gives the same messages and issues",
          "[hl7v2][stream]") {
  const std::string s = Stream();
  const auto expected = OneShot(s);
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    INFO("cut " << cut);
    const std::string_view v(s);
    RequireSame(Streamed({v.substr(0, cut), v.substr(cut)}), expected);
  }
}

TEST_CASE("hl7v2 stream splitter: byte-by-byte feeding", "[hl7v2][stream]") {
  const std::string s = Stream();
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < s.size(); ++i) bytes.emplace_back(s.data() + i, 1);
  RequireSame(Streamed(bytes), OneShot(s));
}

TEST_CASE("hl7v2 stream splitter: pieces and bookkeeping", "[hl7v2][stream]") {
  hl7v2::StreamSplitter splitter;
  splitter.Put("MSH|^~\\&|A||||1||ADT^A08|1|P|2.5\rPID|1\rMS");
  CHECK_FALSE(splitter.Next().has_value());  // the first message may still grow
  splitter.Put("H|^~\\&|A||||1||ADT^A08|2|P|2.5\r");
  auto first = splitter.Next();
  REQUIRE(first.has_value());
  CHECK(first->bytes == "MSH|^~\\&|A||||1||ADT^A08|1|P|2.5\rPID|1\r");
  CHECK(first->offset == 0);
  CHECK(first->first_line == 1);
  CHECK(first->message_index == 0);
  CHECK_FALSE(splitter.Next().has_value());
  splitter.Finish();
  auto second = splitter.Next();
  REQUIRE(second.has_value());
  CHECK(second->offset == first->bytes.size());
  CHECK(second->first_line == 3);
  CHECK(second->message_index == 1);
  CHECK(splitter.Finished());
}
