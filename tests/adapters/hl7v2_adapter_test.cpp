#include "kakehashi/adapters/hl7v2/adapter.hpp"

#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/common/charset.hpp"
#include "kakehashi/common/errc.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>

namespace {

namespace adapters = kakehashi::adapters;

std::filesystem::path TempFile(const std::string& name, const std::string& bytes) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kakehashi_hl7v2_adapter_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace

TEST_CASE("adapters: hl7v2 adapter scores and opens a file", "[adapters][hl7v2]") {
  const auto adapter = adapters::hl7v2::MakeAdapter();
  adapters::Probe probe;
  probe.head = "\x0BMSH|^~\\&|HIS";
  CHECK(adapter->Score(probe) == 90);
  probe.head = "\xEF\xBB\xBFMSH|^~\\&|";
  CHECK(adapter->Score(probe) == 90);
  probe.head = "FHS|^~\\&";
  CHECK(adapter->Score(probe) == 80);
  probe.head = "junk\rMSH|^~\\&";
  CHECK(adapter->Score(probe) == 40);
  probe.head = "MSHX";
  CHECK(adapter->Score(probe) == 0);
  probe.head = "{\"resourceType\":\"Patient\"}";
  CHECK(adapter->Score(probe) == 0);
  probe.is_directory = true;
  probe.head.clear();
  CHECK(adapter->Score(probe) == 0);

  const auto path = TempFile("two.hl7",
                             "MSH|^~\\&|A||||1||ADT^A08|C1|P|2.5||||||UNICODE UTF-8\r"
                             "PID|1||ID1||山本^太郎\r"
                             "MSH|^~\\&|A||||1||ADT^A08|C2|P|2.5||||||UNICODE UTF-8\r"
                             "PID|1||ID2||佐藤^花子\r");
  auto made = adapters::MakeProbe(path);
  REQUIRE(made.has_value());
  CHECK(adapter->Score(*made) == 90);
  kakehashi::CollectingSink sink;
  auto source = adapter->Open({path, "two.hl7"}, {}, sink);
  REQUIRE(source.has_value());
  auto first = (*source)->Next(sink);
  REQUIRE(first.has_value());
  REQUIRE(*first != nullptr);
  CHECK((*first)->Kind() == "hl7v2");
  CHECK((*first)->GetText("PID-5.1") == "山本");
  CHECK_FALSE((*first)->GetText("PID-99").has_value());
  CHECK((*first)->Where().record == "C1");
  CHECK((*first)->Where().source == "two.hl7");
  const auto unused = (*first)->UnusedFields();
  CHECK(std::find(unused.begin(), unused.end(), "PID-3") != unused.end());
  auto second = (*source)->Next(sink);
  REQUIRE(second.has_value());
  REQUIRE(*second != nullptr);
  const auto* record = dynamic_cast<const adapters::hl7v2::MessageRecord*>(second->get());
  REQUIRE(record != nullptr);
  CHECK(record->GetMessage().ControlId() == "C2");
  auto end = (*source)->Next(sink);
  REQUIRE(end.has_value());
  CHECK(*end == nullptr);
  CHECK(sink.Issues().empty());

  CHECK(adapters::MakeProbe(path.parent_path() / "missing.hl7").error() ==
        kakehashi::common::make_error_code(kakehashi::common::errc::kNotFound));
  CHECK_FALSE(adapter->Open({path.parent_path() / "missing.hl7", ""}, {}, sink).has_value());
  std::filesystem::remove_all(path.parent_path());
}

TEST_CASE("adapters: hl7v2 adapter streams files larger than its chunk", "[adapters][hl7v2]") {
  std::string file;
  const int count = 5000;  // ~1.9 MB: crosses the 1 MiB read chunk
  for (int i = 0; i < count; ++i) {
    file += "MSH|^~\\&|A||||20240401||ADT^A08|C" + std::to_string(i) + "|P|2.5||||||~ISO IR87\r";
    file +=
        *kakehashi::common::Encode("PID|1||" + std::to_string(i) +
                                       "||山本^万里子~ヤマモト^マリコ||19800102|F|||"
                                       "^^^^100-0005^JPN^H^東京都千代田区丸の内一丁目１－１\r"
                                       "OBX|1|NM|9N001000000000001^身長^JC10||158.2|cm^cm^ISO+\r",
                                   kakehashi::common::Charset::kIso2022Jp);
  }
  const auto path = TempFile("big.hl7", file);
  kakehashi::CollectingSink one_shot_sink;
  kakehashi::adapters::hl7v2::ParseOptions options;
  options.source = "big.hl7";
  const auto one_shot = kakehashi::adapters::hl7v2::Parse(file, options, one_shot_sink);
  REQUIRE(one_shot.messages.size() == static_cast<std::size_t>(count));

  const auto adapter = adapters::hl7v2::MakeAdapter();
  kakehashi::CollectingSink sink;
  auto source = adapter->Open({path, "big.hl7"}, {}, sink);
  REQUIRE(source.has_value());
  std::size_t n = 0;
  while (true) {
    auto next = (*source)->Next(sink);
    REQUIRE(next.has_value());
    if (*next == nullptr) break;
    const auto* record = dynamic_cast<const adapters::hl7v2::MessageRecord*>(next->get());
    REQUIRE(record != nullptr);
    const auto& expected = one_shot.messages[n];
    if (record->GetMessage().Text() != expected.Text() ||
        record->GetMessage().SourceOffset() != expected.SourceOffset() ||
        record->GetMessage().IndexInSource() != n) {
      FAIL("message " << n << " differs from one-shot parsing");
    }
    ++n;
  }
  CHECK(n == static_cast<std::size_t>(count));
  CHECK(sink.Issues().empty());
  std::filesystem::remove_all(path.parent_path());
}

TEST_CASE("adapters: hl7v2 adapter reports an empty or non-HL7 file", "[adapters][hl7v2]") {
  const auto adapter = adapters::hl7v2::MakeAdapter();
  for (const std::string& content : {std::string(), std::string("just text\n")}) {
    const auto path = TempFile("bad.hl7", content);
    kakehashi::CollectingSink sink;
    auto source = adapter->Open({path, "bad.hl7"}, {}, sink);
    REQUIRE(source.has_value());
    auto next = (*source)->Next(sink);
    REQUIRE(next.has_value());
    CHECK(*next == nullptr);
    REQUIRE(sink.Issues().size() == 1);
    CHECK(sink.Issues()[0].code == "hl7v2.not_hl7");
    std::filesystem::remove_all(path.parent_path());
  }
}
