// libFuzzer target for the HL7 v2 parser and the charset decoders (issue #4).
//
// Properties checked on every input (a failure aborts, which libFuzzer reports as a crash):
//   - Parse never crashes, and every input byte is accounted for: each message or rejected range
//     lies inside the input, in order, without overlap;
//   - every path read on a parsed message returns a view inside the message text;
//   - lenient decoding never fails, strict decoding fails exactly when lenient reports an error;
//   - StreamSplitter pieces parse to the same messages as one Parse;
//   - UTF-8 that decodes cleanly survives an Encode/Decode round trip through ISO-2022-JP and
//     CP932 whenever it is encodable.
// Build and run: tests/fuzz/run_fuzz.sh (ctest test `hl7v2_fuzz`); docs/hl7v2.md.
#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/adapters/hl7v2/stream_splitter.hpp"
#include "kakehashi/common/charset.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace hl7v2 = kakehashi::adapters::hl7v2;
namespace common = kakehashi::common;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "hl7v2_fuzz: property violated: %s\n", what);
    std::abort();
  }
}

bool Inside(std::string_view outer, std::string_view inner) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

void ExerciseMessage(const hl7v2::Message& msg) {
  const std::string_view text = msg.Text();
  static const char* const kPaths[] = {"MSH-9.1",  "MSH-10",   "MSH-18[2]", "PID-5[2].1",
                                       "PID-3[*]", "PID-11.8", "OBX[2]-5",  "RXE-19.2.1",
                                       "ZPR-2",    "IN1[*]-3", "NTE-3"};
  for (const char* path : kPaths) {
    for (const auto& v : msg.GetAll(path)) {
      Check(Inside(text, v.Raw()), "GetAll view outside the message");
      (void)v.Text();
    }
    const auto v = msg.Get(path);
    Check(Inside(text, v.Raw()), "Get view outside the message");
  }
  for (std::size_t i = 0; i < msg.SegmentCount(); ++i) {
    const auto seg = msg.SegmentAt(i);
    Check(Inside(text, seg.Raw()), "segment outside the message");
    for (int f = 1; f <= seg.FieldCount() && f < 40; ++f) {
      const auto field = seg.Field(f);
      Check(Inside(text, field.Raw()), "field outside the message");
      std::string scratch;
      (void)field.TextView(scratch);
      (void)field.Repetition(2).Component(3).Subcomponent(2).Text();
    }
  }
  for (const auto& group : msg.Segments().Groups("ORC", {"OBR"})) (void)group.Get("RXE-2.1");
  (void)msg.UnusedFields();
}

void ExerciseDecoders(std::string_view bytes) {
  for (const auto cs :
       {common::Charset::kIso2022Jp, common::Charset::kCp932, common::Charset::kUtf8,
        common::Charset::kAscii, common::Charset::kLatin1}) {
    std::vector<common::DecodeProblem> lenient_problems;
    common::DecodeOptions lenient;
    lenient.mode = common::DecodeMode::kLenient;
    const auto l = common::Decode(bytes, cs, &lenient_problems, lenient);
    Check(static_cast<bool>(l), "lenient decoding failed");
    Check(common::IsValidUtf8(*l), "decoder produced invalid UTF-8");
    bool lenient_error = false;
    for (const auto& p : lenient_problems) {
      lenient_error |= common::IsError(p.kind);
      Check(p.offset <= bytes.size(), "problem offset past the input");
    }
    const auto s = common::Decode(bytes, cs);
    Check(static_cast<bool>(s) == !lenient_error, "strict and lenient disagree");
    if (s) Check(*s == *l, "strict and lenient text differ");
  }
  if (common::IsValidUtf8(bytes)) {
    for (const auto cs : {common::Charset::kIso2022Jp, common::Charset::kCp932}) {
      const auto encoded = common::Encode(bytes, cs);
      if (!encoded) continue;
      const auto back = common::Decode(*encoded, cs);
      Check(static_cast<bool>(back), "encoded text does not decode");
      // Characters outside CP932's preferred mapping (〜 U+301C -> ～ U+FF5E ...) change; the
      // second round trip must be stable.
      const auto again = common::Encode(*back, cs);
      Check(static_cast<bool>(again) && *again == *encoded, "round trip not stable");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  kakehashi::CollectingSink sink(1000);
  hl7v2::ParseOptions options;
  options.source = "fuzz";
  const auto result = hl7v2::Parse(bytes, options, sink);
  Check(!result.messages.empty() || sink.HasErrors(), "input produced neither message nor error");
  std::size_t last_end = 0;
  std::size_t mi = 0, ri = 0;
  // Messages and rejected ranges interleave in input order.
  while (mi < result.messages.size() || ri < result.rejected.size()) {
    std::size_t offset, length;
    const bool take_message = ri >= result.rejected.size() ||
                              (mi < result.messages.size() &&
                               result.messages[mi].SourceOffset() < result.rejected[ri].offset);
    if (take_message) {
      offset = result.messages[mi].SourceOffset();
      length = result.messages[mi].SourceSize();
      ExerciseMessage(result.messages[mi]);
      ++mi;
    } else {
      offset = result.rejected[ri].offset;
      length = result.rejected[ri].size;
      ++ri;
    }
    Check(offset >= last_end, "ranges overlap or are out of order");
    Check(offset + length <= size, "range past the input");
    last_end = offset + length;
  }
  // The push splitter, cut at a data-dependent point, yields the same messages as one Parse.
  {
    const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
    hl7v2::StreamSplitter splitter;
    kakehashi::NullSink null_sink;
    std::vector<std::string> texts;
    auto drain = [&] {
      while (auto piece = splitter.Next()) {
        for (const auto& m :
             hl7v2::Parse(piece->bytes, piece->Options(options), null_sink).messages) {
          texts.emplace_back(m.Text());
        }
      }
    };
    splitter.Put(bytes.substr(0, cut));
    drain();
    splitter.Put(bytes.substr(cut));
    splitter.Finish();
    drain();
    Check(texts.size() == result.messages.size(), "stream splitter message count differs");
    for (std::size_t i = 0; i < texts.size() && i < result.messages.size(); ++i) {
      Check(texts[i] == result.messages[i].Text(), "stream splitter message text differs");
    }
  }
  ExerciseDecoders(bytes.substr(0, 4096));
  return 0;
}
