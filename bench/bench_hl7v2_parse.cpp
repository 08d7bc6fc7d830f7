// bench_hl7v2_parse: HL7 v2 parse throughput (decode + split + index), with the npm peer
// @medplum/core Hl7Message.parse measured in the same run on the same UTF-8 file (issue #4).
//
//   bench_hl7v2_parse [--messages N] [--seconds S] [--no-peer] [--out DIR]
//
// Generates N synthetic JAHIS ADT^A08 messages (MSH EVN PID NK1 PV1 OBX OBX AL1 IN1 IN1; kanji
// and kana names, addresses, full-width 記号/番号), writes them to DIR/hl7v2_adt_utf8.hl7
// (MSH-18 UNICODE UTF-8) and DIR/hl7v2_adt_iso2022jp.hl7 (MSH-18 ~ISO IR87, MSH-20 ISO 2022-1994),
// parses each file with hl7v2::Parse on one thread for at least S seconds and prints msgs/s and
// MB/s; then runs tools/oracle/bench_hl7v2_peer.mjs on the UTF-8 file (medplum does not decode
// ISO-2022-JP) and prints its figure and the ratio. Exit 1 if a parse result is wrong.
#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/common/charset.hpp"
#include "kakehashi/common/issue_sink.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace hl7v2 = kakehashi::adapters::hl7v2;
namespace common = kakehashi::common;

struct Name {
  const char* kanji;
  const char* kana;
};

constexpr Name kFamily[] = {{"山本", "ヤマモト"}, {"佐藤", "サトウ"},   {"鈴木", "スズキ"},
                            {"高橋", "タカハシ"}, {"田中", "タナカ"},   {"伊藤", "イトウ"},
                            {"渡辺", "ワタナベ"}, {"中村", "ナカムラ"}, {"小林", "コバヤシ"},
                            {"加藤", "カトウ"},   {"吉田", "ヨシダ"},   {"京極", "キョウゴク"}};
constexpr Name kGiven[] = {{"太郎", "タロウ"},   {"花子", "ハナコ"}, {"万里子", "マリコ"},
                           {"健一", "ケンイチ"}, {"愛", "アイ"},     {"京子", "キョウコ"},
                           {"翔太", "ショウタ"}, {"美咲", "ミサキ"}, {"本蔵", "モトゾウ"}};
constexpr const char* kAddress[] = {
    "東京都千代田区丸の内一丁目１－１",       "大阪府大阪市北区梅田二丁目４－９",
    "愛知県名古屋市中区三の丸一丁目１－１",   "北海道札幌市中央区北一条西二丁目１",
    "福岡県福岡市博多区博多駅前三丁目２－１", "京都府京都市上京区下立売通新町西入薮ノ内町"};
constexpr const char* kInsurer[] = {"カケハシ健康保険組合", "全国健康保険協会東京支部",
                                    "千代田区国民健康保険", "東京都後期高齢者医療広域連合"};

std::string Digits(unsigned v, int width) {
  std::string s = std::to_string(v);
  while (static_cast<int>(s.size()) < width) s.insert(s.begin(), '0');
  return s;
}

// Full-width digits (JAHIS producers write 記号/番号 this way).
std::string FullWidth(const std::string& ascii) {
  std::string out;
  for (char c : ascii) {
    const unsigned cp = 0xFF10 + static_cast<unsigned>(c - '0');
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

std::string MakeAdt(unsigned i, bool utf8) {
  const Name& fam = kFamily[i % std::size(kFamily)];
  const Name& giv = kGiven[(i / 7) % std::size(kGiven)];
  const std::string pid = Digits(100000 + i * 37 % 900000, 10);
  const std::string ts = "20240401" + Digits(90000 + i % 50000, 6);
  const std::string birth =
      std::to_string(1930 + i % 80) + Digits(1 + i % 12, 2) + Digits(1 + i % 28, 2);
  const char* sex = (i % 2) != 0U ? "F" : "M";
  std::string m;
  m.reserve(1200);
  m += "MSH|^~\\&|HIS|SEND|GW|RCV|" + ts + "||ADT^A08^ADT_A01|M" + Digits(i, 12) + "|P|2.5|||||";
  m += utf8 ? "|UNICODE UTF-8||" : "|~ISO IR87||ISO 2022-1994";
  m += "|SS-MIX2_1.20^SS-MIX2^1.2.392.200250.2.1.100.1.2.120^ISO\r";
  m += "EVN||" + ts + "\r";
  m += "PID|0001||" + pid + "^^^^PI||" + fam.kanji + "^" + giv.kanji + "^^^^^L^I~" + fam.kana +
       "^" + giv.kana + "^^^^^L^P||" + birth + "|" + sex + "|||^^^^" + Digits(100 + i % 900, 3) +
       "-" + Digits(i % 10000, 4) + "^JPN^H^" + kAddress[i % std::size(kAddress)] +
       "||^PRN^PH^^^^^^^^^03-" + Digits(i % 10000, 4) + "-" + Digits((i * 7) % 10000, 4) +
       "~^EMR^PH^^^^^^^^^090-" + Digits(i % 10000, 4) + "-0000|||||||||||||||||||" + ts + "\r";
  m += "NK1|1|" + std::string(fam.kanji) + "^" + kGiven[(i + 1) % std::size(kGiven)].kanji +
       "^^^^^L^I|SPO^配偶者^HL70063|^^^^" + Digits(100 + i % 900, 3) + "-0001^JPN^H^" +
       kAddress[(i + 2) % std::size(kAddress)] + "|^PRN^PH^^^^^^^^^03-1111-2222\r";
  m += "PV1|0001|O|01^^^^^C||||D" + Digits(i % 100, 3) + "^医師^次郎^^^^^^^L^^^^^I|||01\r";
  m += "OBX|1|NM|9N001000000000001^身長^JC10||" + std::to_string(140 + i % 50) +
       ".2|cm^cm^ISO+|||||F\r";
  m += "OBX|2|NM|9N006000000000001^体重^JC10||" + std::to_string(40 + i % 50) +
       ".0|kg^kg^ISO+|||||F\r";
  m += "AL1|1|DA^薬剤アレルギー^HL70127|L0001^ペニシリン系抗生物質^99XYZ\r";
  m += "IN1|1|06^組合管掌健康保険^JHSD0001|06" + Digits(139992 + i % 1000, 6) + "|" +
       kInsurer[i % std::size(kInsurer)] + "||||||" + FullWidth(Digits(i % 1000, 3)) + "|" +
       FullWidth(Digits(i % 10000, 4)) + "|20240401|||||SEL^本人^HL70063\r";
  m += "IN1|2|54^難病法^JHSD0001|54" + Digits(136014 + i % 100, 6) + "|||||||||20240401\r";
  return m;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Figure {
  double msgs_per_s = 0;      // per wall-clock second
  double cpu_msgs_per_s = 0;  // per second of this process's CPU time (robust on a busy machine)
  double mb_per_s = 0;
  std::size_t messages = 0;
};

// Parses `file` repeatedly for at least `seconds`; checks the result once.
Figure Measure(const std::string& file, std::size_t expected, double seconds, bool& ok) {
  hl7v2::ParseOptions options;
  options.source = "bench";
  kakehashi::CollectingSink check_sink;
  {
    const auto result = hl7v2::Parse(file, options, check_sink);
    if (result.messages.size() != expected || check_sink.HasErrors() ||
        result.messages.back().GetText("PID-5[2].1").empty() ||
        result.messages.front().GetText("PID-5.1") != kFamily[0].kanji) {
      std::fprintf(stderr, "bench_hl7v2_parse: wrong parse result (%zu messages, %zu issues)\n",
                   result.messages.size(), check_sink.Issues().size());
      ok = false;
    }
  }
  kakehashi::NullSink sink;
  std::size_t runs = 0, messages = 0;
  const std::clock_t cpu_start = std::clock();
  const auto start = std::chrono::steady_clock::now();
  auto now = start;
  do {
    const auto result = hl7v2::Parse(file, options, sink);
    messages += result.messages.size();
    ++runs;
    now = std::chrono::steady_clock::now();
  } while (Seconds(now - start) < seconds);
  const double s = Seconds(now - start);
  const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  Figure f;
  f.cpu_msgs_per_s = cpu > 0 ? static_cast<double>(messages) / cpu : 0;
  f.messages = messages;
  f.msgs_per_s = static_cast<double>(messages) / s;
  f.mb_per_s = static_cast<double>(file.size()) * static_cast<double>(runs) / s / 1e6;
  return f;
}

struct PeerFigure {
  double msgs_per_s = -1;
  double cpu_msgs_per_s = -1;
};

// Runs the node peer; negative figures when unavailable.
PeerFigure RunPeer(const std::filesystem::path& utf8_file, double seconds) {
  const std::filesystem::path script =
      std::filesystem::path(KAKEHASHI_SOURCE_DIR) / "tools/oracle/bench_hl7v2_peer.mjs";
  if (!std::filesystem::exists(script) ||
      !std::filesystem::exists(std::filesystem::path(KAKEHASHI_SOURCE_DIR) /
                               "tools/oracle/node_modules/@medplum/core")) {
    std::printf("peer: @medplum/core not installed (run tools/setup.sh); skipped\n");
    return {};
  }
  const std::string cmd = "node '" + script.string() + "' '" + utf8_file.string() + "' " +
                          std::to_string(seconds) + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {};
  char line[512];
  PeerFigure figure;
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    std::fputs(line, stdout);
    const char* key = std::strstr(line, " msgs_per_s=");
    if (key != nullptr) figure.msgs_per_s = std::strtod(key + std::strlen(" msgs_per_s="), nullptr);
    key = std::strstr(line, " msgs_per_cpu_s=");
    if (key != nullptr) {
      figure.cpu_msgs_per_s = std::strtod(key + std::strlen(" msgs_per_cpu_s="), nullptr);
    }
  }
  const int status = pclose(pipe);
  return status == 0 ? figure : PeerFigure{};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t count = 20000;
  double seconds = 3.0;
  bool peer = true;
  std::filesystem::path out_dir = std::filesystem::path(argv[0]).parent_path();
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--messages" && a + 1 < argc) {
      count = std::strtoul(argv[++a], nullptr, 10);
    } else if (arg == "--seconds" && a + 1 < argc) {
      seconds = std::strtod(argv[++a], nullptr);
    } else if (arg == "--no-peer") {
      peer = false;
    } else if (arg == "--out" && a + 1 < argc) {
      out_dir = argv[++a];
    } else {
      std::printf(
          "usage: bench_hl7v2_parse [--messages N] [--seconds S] [--no-peer] [--out DIR]\n"
          "  Parse throughput of synthetic JAHIS ADT^A08 files (UTF-8 and ISO-2022-JP), and\n"
          "  the @medplum/core Hl7Message.parse peer on the UTF-8 file.\n");
      return arg == "--help" ? 0 : 2;
    }
  }
  if (count == 0) count = 1;
  std::string utf8, jis;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string m = MakeAdt(static_cast<unsigned>(i), true);
    utf8 += m;
    auto encoded =
        common::Encode(MakeAdt(static_cast<unsigned>(i), false), common::Charset::kIso2022Jp);
    if (!encoded) {
      std::fprintf(stderr, "bench_hl7v2_parse: generator produced unencodable text\n");
      return 1;
    }
    jis += *encoded;
  }
  std::filesystem::create_directories(out_dir);
  const auto utf8_path = out_dir / "hl7v2_adt_utf8.hl7";
  const auto jis_path = out_dir / "hl7v2_adt_iso2022jp.hl7";
  std::ofstream(utf8_path, std::ios::binary) << utf8;
  std::ofstream(jis_path, std::ios::binary) << jis;

  std::printf(
      "bench_hl7v2_parse: %zu ADT^A08 messages, UTF-8 %.1f MB (%zu B/msg), ISO-2022-JP "
      "%.1f MB; >= %.1f s per figure, 1 thread\n",
      count, static_cast<double>(utf8.size()) / 1e6, utf8.size() / count,
      static_cast<double>(jis.size()) / 1e6, seconds);
  bool ok = true;
  const Figure f_utf8 = Measure(utf8, count, seconds, ok);
  std::printf(
      "kakehashi hl7v2::Parse UTF-8:       %10.0f msgs/s  %7.1f MB/s  (%.0f msgs per CPU s)\n",
      f_utf8.msgs_per_s, f_utf8.mb_per_s, f_utf8.cpu_msgs_per_s);
  const Figure f_jis = Measure(jis, count, seconds, ok);
  std::printf(
      "kakehashi hl7v2::Parse ISO-2022-JP: %10.0f msgs/s  %7.1f MB/s  (%.0f msgs per CPU s)\n",
      f_jis.msgs_per_s, f_jis.mb_per_s, f_jis.cpu_msgs_per_s);
  if (peer) {
    const PeerFigure p = RunPeer(utf8_path, seconds);
    if (p.msgs_per_s > 0) {
      std::printf(
          "peer @medplum/core 4.5.2 Hl7Message.parse UTF-8: %10.0f msgs/s  (%.0f msgs per "
          "CPU s)\n",
          p.msgs_per_s, p.cpu_msgs_per_s);
      std::printf(
          "ratio kakehashi/peer (UTF-8): %.1fx wall, %.1fx CPU; ISO-2022-JP vs peer UTF-8: "
          "%.1fx wall\n",
          f_utf8.msgs_per_s / p.msgs_per_s,
          p.cpu_msgs_per_s > 0 ? f_utf8.cpu_msgs_per_s / p.cpu_msgs_per_s : 0.0,
          f_jis.msgs_per_s / p.msgs_per_s);
    }
  }
  return ok ? 0 : 1;
}
