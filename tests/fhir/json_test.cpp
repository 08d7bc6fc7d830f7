#include "kakehashi/fhir/json.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using kakehashi::CollectingSink;
using kakehashi::Issue;
using kakehashi::Severity;
using kakehashi::fhir::CheckResource;
using kakehashi::fhir::Node;
using kakehashi::fhir::ParseJson;
using kakehashi::fhir::ReadResource;
using kakehashi::fhir::WriteJson;
using kakehashi::fhir::WriteOptions;

namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::filesystem::path> SampleFiles() {
  std::vector<std::filesystem::path> files;
  const std::filesystem::path root = std::filesystem::path(KAKEHASHI_SOURCE_DIR) / "samples";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json")
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The single issue with `code`, or nullptr.
const Issue* FindIssue(const CollectingSink& sink, std::string_view code) {
  for (const Issue& issue : sink.Issues())
    if (issue.code == code) return &issue;
  return nullptr;
}

Node MustParse(std::string_view text) {
  auto parsed = ParseJson(text);
  REQUIRE(parsed.has_value());
  return *parsed;
}

}  // namespace

TEST_CASE("json: numbers keep their text, strings their escapes", "[json]") {
  const Node n =
      MustParse(R"({"a":1.50,"b":-0.0,"c":1e3,"d":"x\"y\\z\n\u00e9\u0001","e":[true,false,null]})");
  CHECK(n.Find("a")->IsNumber());
  CHECK(n.Find("a")->Text() == "1.50");
  CHECK(n.Find("b")->Text() == "-0.0");
  CHECK(n.Find("c")->Text() == "1e3");
  CHECK(n.Find("d")->Text() == "x\"y\\z\n\xC3\xA9\x01");
  const std::string out = WriteJson(n, {.canonical = false});
  CHECK(out ==
        "{\"a\":1.50,\"b\":-0.0,\"c\":1e3,\"d\":\"x\\\"y\\\\z\\n\xC3\xA9\\u0001\",\"e\":[true,"
        "false,null]}");
  CHECK(MustParse(out) == n);
}

TEST_CASE("json: ParseJson error codes", "[json]") {
  using kakehashi::fhir::errc;
  CHECK(ParseJson("{").error() == errc::kJsonSyntax);
  CHECK(ParseJson("").error() == errc::kJsonSyntax);
  CHECK(ParseJson("{} x").error() == errc::kJsonSyntax);
  CHECK(ParseJson("{\"a\":\"\xff\"}").error() == errc::kJsonEncoding);
  CHECK(ParseJson(std::string(300, '[') + std::string(300, ']')).error() == errc::kJsonTooDeep);
  CHECK(ParseJson("[1]", {.max_bytes = 2}).error() == errc::kJsonTooLarge);
  CHECK(ParseJson("  {}  \n").has_value());
}

TEST_CASE("json: every sample round-trips and canonical output is stable", "[json][samples]") {
  const auto files = SampleFiles();
  REQUIRE(files.size() >= 10);
  for (const auto& file : files) {
    INFO(file.string());
    const std::string text = ReadFile(file);
    CollectingSink sink;
    std::optional<Node> node = ReadResource(text, sink);
    REQUIRE(node.has_value());
    for (const Issue& issue : sink.Issues()) UNSCOPED_INFO(issue.ToString());
    CHECK(sink.Issues().empty());
    const std::string canonical = WriteJson(*node);
    const Node again = MustParse(canonical);
    CHECK(again == *node);                 // read -> write -> read is semantically equal
    CHECK(WriteJson(again) == canonical);  // writing twice gives identical bytes
    CHECK(canonical.rfind("{\"resourceType\":", 0) == 0);
    CHECK(canonical.find('\n') == std::string::npos);  // compact
    const std::string pretty = WriteJson(*node, {.pretty = true});
    CHECK(MustParse(pretty) == *node);
    CHECK(pretty.find("\n  \"resourceType\": ") == 1);
  }
}

TEST_CASE("json: canonical order, _x after x, unknown last, no empties", "[json]") {
  const Node n = MustParse(
      R"({"zzz":1,"birthDate":"1980-04","_birthDate":{"extension":[{"valueString":"s","url":"u"}]},
    "name":[{"given":["A"],"family":"F","text":""}],"telecom":[],"photo":[{}],"id":"p1",
    "resourceType":"Patient","meta":{"versionId":"1"},"gender":"female","contact":[{"gender":"male","name":{"text":"c"}}]})");
  CHECK(
      WriteJson(n) ==
      R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1"},"name":[{"family":"F","given":["A"]}],)"
      R"("gender":"female","birthDate":"1980-04","_birthDate":{"extension":[{"url":"u","valueString":"s"}]},)"
      R"("contact":[{"name":{"text":"c"},"gender":"male"}],"zzz":1})");
  // Not canonical: as stored.
  CHECK(WriteJson(n, {.canonical = false}).rfind("{\"zzz\":1,\"birthDate\"", 0) == 0);
}

TEST_CASE("json: primitive arrays stay aligned with their _ partner", "[json]") {
  const std::string text =
      R"({"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"id":"g2"}]}]})";
  CollectingSink sink;
  auto node = ReadResource(text, sink);
  REQUIRE(node.has_value());
  CHECK(sink.Issues().empty());
  CHECK(WriteJson(*node) == text);
}

TEST_CASE("json: contained resources and Bundle entries are ordered and checked", "[json]") {
  const Node bundle = MustParse(R"({"entry":[{"resource":{"id":"1","resourceType":"Patient",
      "contained":[{"name":"x","resourceType":"Organization","id":"o"}]},"fullUrl":"urn:uuid:1"}],
      "type":"collection","resourceType":"Bundle"})");
  CHECK(
      WriteJson(bundle) ==
      R"({"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":)"
      R"({"resourceType":"Patient","id":"1","contained":[{"resourceType":"Organization","id":"o","name":"x"}]}}]})");
  CollectingSink sink;
  CHECK(CheckResource(bundle, sink));
  CHECK(sink.Issues().empty());

  const Node bad = MustParse(R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":
      {"resourceType":"Patient","contained":[{"resourceType":"Organization","foo":1}]}}]})");
  CollectingSink bad_sink;
  CHECK_FALSE(CheckResource(bad, bad_sink));
  REQUIRE(bad_sink.Issues().size() == 1);
  CHECK(bad_sink.Issues()[0].code == "fhir.json.unknown_element");
  CHECK(bad_sink.Issues()[0].where.fhir_path == "Bundle.entry[0].resource.contained[0].foo");
}

TEST_CASE("json: model errors carry their FHIRPath", "[json][malformed]") {
  struct Case {
    const char* json;
    std::string_view code;
    const char* path;
  };
  const Case cases[] = {
      {R"({"resourceType":"Patient","foo":1})", "fhir.json.unknown_element", "Patient.foo"},
      {R"({"resourceType":"Patient","name":[{"family":"x","suffix":["a"],"bogus":true}]})",
       "fhir.json.unknown_element", "Patient.name[0].bogus"},
      {R"({"resourceType":"Patient","birthDate":19800401})", "fhir.json.wrong_type",
       "Patient.birthDate"},
      {R"({"resourceType":"Patient","active":"true"})", "fhir.json.wrong_type", "Patient.active"},
      {R"({"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":"1.5"}})",
       "fhir.json.wrong_type", "Observation.valueQuantity.value"},
      {R"({"resourceType":"Patient","name":["x"]})", "fhir.json.wrong_type", "Patient.name[0]"},
      {R"({"resourceType":"Patient","name":{"family":"x"}})", "fhir.json.expected_array",
       "Patient.name"},
      {R"({"resourceType":"Patient","gender":["male"]})", "fhir.json.unexpected_array",
       "Patient.gender"},
      {R"({"resourceType":"Patient","_name":[{"id":"x"}]})", "fhir.json.bad_primitive_extension",
       "Patient._name"},
      {R"({"resourceType":"Patient","_birthDate":"x"})", "fhir.json.bad_primitive_extension",
       "Patient._birthDate"},
      {R"({"resourceType":"Patient","_birthDate":{"foo":1}})", "fhir.json.unknown_element",
       "Patient._birthDate.foo"},
      {R"({"resourceType":"Patient","gender":null})", "fhir.json.null_value", "Patient.gender"},
      {R"({"resourceType":"Observation","value":{"value":1}})", "fhir.json.unknown_element",
       "Observation.value"},
      {R"({"id":"x"})", "fhir.json.missing_resource_type", ""},
      {R"({"resourceType":"Patientx"})", "fhir.json.unknown_resource_type", ""},
      {R"({"resourceType":"DomainResource"})", "fhir.json.unknown_resource_type", ""},
      {R"([1])", "fhir.json.not_object", ""},
      {R"({"resourceType":"Patient","contained":[{"id":"x"}]})", "fhir.json.missing_resource_type",
       "Patient.contained[0]"},
  };
  for (const Case& c : cases) {
    INFO(c.json);
    CollectingSink sink;
    auto node = ReadResource(c.json, sink);
    REQUIRE(node.has_value());  // model errors keep the parsed tree
    const Issue* issue = FindIssue(sink, c.code);
    REQUIRE(issue != nullptr);
    CHECK(issue->severity == Severity::kError);
    CHECK(issue->where.fhir_path == c.path);
  }
}

TEST_CASE("json: bad dates are strings here (format is conformance's job)", "[json]") {
  const std::string text = R"({"resourceType":"Patient","birthDate":"1980-13-45"})";
  CollectingSink sink;
  auto node = ReadResource(text, sink);
  REQUIRE(node.has_value());
  CHECK(sink.Issues().empty());
  CHECK(WriteJson(*node) == text);
}

TEST_CASE("json: truncated input at every byte gives a syntax issue", "[json][malformed]") {
  const std::string text =
      ReadFile(std::filesystem::path(KAKEHASHI_SOURCE_DIR) / "samples" /
               "jpcore/jp-clins/examples/Condition-Example-JP-Condition-eCS-01.json");
  REQUIRE(text.size() > 100);
  // Cut anywhere before the final '}' (trailing whitespace excluded).
  std::size_t end = text.find_last_of('}');
  for (std::size_t n = 0; n < end; ++n) {
    CollectingSink sink;
    auto node = ReadResource(std::string_view(text).substr(0, n), sink);
    INFO("cut at " << n);
    REQUIRE_FALSE(node.has_value());
    REQUIRE(sink.Issues().size() == 1);
    // A cut inside a multi-byte character is reported as invalid UTF-8.
    CHECK((sink.Issues()[0].code == "fhir.json.syntax" ||
           sink.Issues()[0].code == "fhir.json.encoding"));
    CHECK(sink.Issues()[0].severity == Severity::kFatal);
    CHECK(sink.Issues()[0].where.byte >= 0);
    CHECK(sink.Issues()[0].where.byte <= static_cast<std::int64_t>(n));
  }
}

TEST_CASE("json: syntax issue names the JSON path reached and the byte", "[json][malformed]") {
  CollectingSink sink;
  kakehashi::Location base;
  base.source = "upload.json";
  auto node =
      ReadResource(R"({"resourceType":"Patient","name":[{"given":["a" "b"]}]})", sink, base);
  REQUIRE_FALSE(node);
  REQUIRE(sink.Issues().size() == 1);
  CHECK(sink.Issues()[0].where.source == "upload.json");
  CHECK(sink.Issues()[0].where.fhir_path == "name[0].given[1]");
  CHECK(sink.Issues()[0].where.byte == 48);
}

TEST_CASE("json: 1 MB strings are kept", "[json][malformed]") {
  const std::string big(1 << 20, 'a');
  const std::string text = R"({"resourceType":"Patient","id":")" + big + R"("})";
  CollectingSink sink;
  auto node = ReadResource(text, sink);
  REQUIRE(node.has_value());
  CHECK(sink.Issues().empty());
  CHECK(node->Find("id")->Text().size() == big.size());
  CHECK(WriteJson(*node) == text);
}

TEST_CASE("json: 10,000-deep nesting stops without overflowing the stack", "[json][malformed]") {
  for (const auto& [open, close] :
       {std::pair<std::string, std::string>{"[", "]"}, {"{\"a\":", "}"}}) {
    std::string text = "{\"resourceType\":\"Patient\",\"extension\":";
    for (int i = 0; i < 10000; ++i) text += open;
    text += "1";
    for (int i = 0; i < 10000; ++i) text += close;
    text += "}";
    CollectingSink sink;
    auto node = ReadResource(text, sink);
    CHECK_FALSE(node);
    REQUIRE(sink.Issues().size() == 1);
    CHECK(sink.Issues()[0].code == "fhir.json.too_deep");
    CHECK(sink.Issues()[0].where.fhir_path.rfind("extension", 0) == 0);
    CHECK(sink.Issues()[0].where.byte > 0);
  }
}

TEST_CASE("json: invalid UTF-8 and size limit", "[json][malformed]") {
  CollectingSink sink;
  CHECK_FALSE(ReadResource("{\"resourceType\":\"Patient\",\"id\":\"a\xC3\x28\"}", sink));
  REQUIRE(FindIssue(sink, "fhir.json.encoding") != nullptr);
  CHECK(FindIssue(sink, "fhir.json.encoding")->where.fhir_path == "id");
  CollectingSink small;
  CHECK_FALSE(ReadResource("{\"resourceType\":\"Patient\"}", small, {}, {.max_bytes = 10}));
  REQUIRE(FindIssue(small, "fhir.json.too_large") != nullptr);
  // Overlong encodings and surrogates are invalid UTF-8 too.
  CollectingSink overlong;
  CHECK_FALSE(ReadResource("{\"resourceType\":\"Patient\",\"id\":\"\xC0\xAF\"}", overlong));
  CHECK(FindIssue(overlong, "fhir.json.encoding") != nullptr);
}

TEST_CASE("json: duplicate keys are reported, the last kept", "[json][malformed]") {
  CollectingSink sink;
  auto node = ParseJson(R"({"resourceType":"Patient","id":"a","id":"b"})", sink);
  REQUIRE(node.has_value());
  CHECK(node->Find("id")->Text() == "b");
  REQUIRE(FindIssue(sink, "fhir.json.duplicate_key") != nullptr);
  CHECK(FindIssue(sink, "fhir.json.duplicate_key")->where.fhir_path == "id");
}

TEST_CASE("json: wrong JSON at the top level never crashes", "[json][malformed]") {
  for (const char* text : {"null", "1", "\"s\"", "[]", "true", "{\"resourceType\":1}",
                           "{\"resourceType\":\"Patient\",\"name\":[[[]]]}",
                           "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":[]}]}",
                           "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":\"x\"}]}"}) {
    INFO(text);
    CollectingSink sink;
    auto node = ReadResource(text, sink);
    REQUIRE(node.has_value());
    CHECK(sink.HasErrors());
    (void)WriteJson(*node);
  }
}

TEST_CASE("json: ToOperationOutcome", "[json][outcome]") {
  kakehashi::Location where;
  where.source = "a.hl7";
  where.field = "PID-7";
  where.fhir_path = "Patient.birthDate";
  std::vector<Issue> issues = {
      {Severity::kError, "fhir.json.unknown_element", where, "not an element"},
      {Severity::kWarning, "hl7v2.pid.bad_date", {}, "date unreadable"},
  };
  const Node oo = kakehashi::fhir::ToOperationOutcome(issues);
  CHECK(oo.ResourceType() == "OperationOutcome");
  const Node& list = *oo.Find("issue");
  REQUIRE(list.Size() == 2);
  const Node& first = list.Child(0);
  CHECK(first.Find("severity")->Text() == "error");
  CHECK(first.Find("code")->Text() == "structure");
  const Node& coding = first.Find("details")->Find("coding")->Child(0);
  CHECK(coding.Find("system")->Text() == "urn:kakehashi:issue-code");
  CHECK(coding.Find("code")->Text() == "fhir.json.unknown_element");
  CHECK(first.Find("diagnostics")->Text() == "not an element");
  CHECK(first.Find("expression")->Child(0).Text() == "Patient.birthDate");
  CHECK(first.Find("location")->Child(0).Text().find("PID-7") != std::string::npos);
  CHECK(list.Child(1).Find("severity")->Text() == "warning");
  CHECK(list.Child(1).Find("code")->Text() == "value");
  CHECK(list.Child(1).Find("expression") == nullptr);
  // The outcome itself is a valid resource for our reader.
  CollectingSink sink;
  CHECK(CheckResource(oo, sink));
  CHECK(sink.Issues().empty());
  const Node empty = kakehashi::fhir::ToOperationOutcome({});
  CHECK(empty.Find("issue")->Size() == 1);
  CHECK(empty.Find("issue")->Child(0).Find("severity")->Text() == "information");
  CHECK(kakehashi::fhir::IssueTypeOf("fhir.json.too_deep") == "too-costly");
  CHECK(kakehashi::fhir::IssueTypeOf("conformance.required.missing") == "required");
}

TEST_CASE("json: mutated samples never crash; accepted input writes idempotently",
          "[json][malformed]") {
  const std::string text =
      ReadFile(std::filesystem::path(KAKEHASHI_SOURCE_DIR) / "samples" /
               "jpcore/jp-clins/examples/Patient-Example-JP-Patient-eCS-MAKINO.json");
  REQUIRE(text.size() > 500);
  const char kBytes[] = {'{',  '}', '[', ']', '"',    ',',    ':',
                         '\\', '0', 'x', ' ', '\xE3', '\x80', 'n'};
  std::uint32_t state = 12345;  // deterministic LCG: the same cases on every run
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string mutated = text;
    const int flips = 1 + static_cast<int>(next() % 3);
    for (int f = 0; f < flips; ++f) {
      const std::size_t pos = next() % mutated.size();
      switch (next() % 3) {
        case 0: mutated[pos] = kBytes[next() % sizeof kBytes]; break;
        case 1: mutated.erase(pos, 1 + next() % 8); break;
        default: mutated.insert(pos, 1, kBytes[next() % sizeof kBytes]); break;
      }
    }
    CollectingSink sink;
    std::optional<Node> node = ReadResource(mutated, sink);
    if (!node) {
      REQUIRE(sink.Issues().size() == 1);
      CHECK(sink.Issues()[0].severity == Severity::kFatal);
      continue;
    }
    ++accepted;
    const std::string once = WriteJson(*node);
    auto reparsed = ParseJson(once);
    REQUIRE(reparsed.has_value());
    CHECK(WriteJson(*reparsed) == once);
  }
  CHECK(accepted > 100);  // the mutations must exercise the writer too
}

// The writer skips plain bytes 8 at a time: every byte value at every position of a string
// longer than two words must come out exactly as RFC 8259 §7 escaping byte by byte gives it.
TEST_CASE("json: string escaping of every byte at every position", "[json]") {
  const auto reference = [](const std::string& text) {
    std::string out = "\"";
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"') {
        out += "\\\"";
      } else if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\b') {
        out += "\\b";
      } else if (c == '\f') {
        out += "\\f";
      } else if (c < 0x20) {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
      } else {
        out += ch;
      }
    }
    return out + "\"";
  };
  const WriteOptions raw{false, false};
  for (int byte = 0; byte < 256; ++byte) {
    for (std::size_t pos = 0; pos < 19; ++pos) {
      std::string text(19, 'a');
      text[pos] = static_cast<char>(byte);
      INFO("byte " << byte << " at " << pos);
      REQUIRE(WriteJson(Node::String(text), raw) == reference(text));
      text[18 - pos] = '"';  // two escapes, in different words
      REQUIRE(WriteJson(Node::String(text), raw) == reference(text));
    }
  }
  // Bytes just around the escaped ranges, and UTF-8 (>= 0x80), whole words of them.
  const std::string edges = "\x1f\x20\x21\x22\x23\x5b\x5c\x5d\x7f\x80\xe3\x81\x82\xff";
  REQUIRE(WriteJson(Node::String(edges + edges), raw) == reference(edges + edges));
  REQUIRE(WriteJson(Node::String(""), raw) == "\"\"");
}

TEST_CASE("AppendJsonString escapes exactly as WriteJson writes strings", "[json]") {
  for (const std::string& text :
       {std::string("plain"), std::string(""), std::string("山田 太郎"),
        std::string("a \"quoted\" \\ back\\slash"), std::string("tab\tcr\rlf\nff\fbs\b"),
        std::string("ctl\x01\x1f end"), std::string("long enough to take the 8-byte scan path\x7f"),
        std::string("12345678\"")}) {
    std::string out = "x";
    kakehashi::fhir::AppendJsonString(out, text);
    kakehashi::fhir::WriteOptions as_is;
    as_is.canonical = false;  // keeps the empty string
    std::string expected = "x";
    expected += kakehashi::fhir::WriteJson(kakehashi::fhir::Node::String(text), as_is);
    INFO(text);
    CHECK(out == expected);
  }
}
