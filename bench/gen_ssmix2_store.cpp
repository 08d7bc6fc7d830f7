// gen_ssmix2_store — writes a synthetic SS-MIX2 standardized storage tree for benchmarks.
//
//   gen_ssmix2_store --out DIR [--messages N] [--encoding mix|iso2022jp|sjis|utf8] [--seed S]
//
// Per patient: ADT-00 (ADT^A08 with IN1), ADT-61 (allergy), PPR-01 (disease list), OMP-01
// (RDE^O11) x2, OML-11 (OUL^R22) x3, plus a superseded ADT-00 (_2) for every 10th patient and a
// deleted OMP-01 (_0) for every 20th — the mix a converter meets in a real store. Names, addresses
// and codes are drawn from small synthetic pools (no real patient data). Layout and file names per
// SS-MIX2 標準化ストレージ仕様書
// (root/ID[0:3]/ID[3:6]/ID/date|-/type/ID_date_type_order_time_dept_flag).
//
// Encodings: ISO-2022-JP (MSH-18 "~ISO IR87", the SS-MIX2 norm; JIS X 0208 pairs produced from
// CP932 by the inverse of the digest's §8 formula), Shift_JIS/CP932 (non-conformant producers;
// MSH-18 "SJIS"), UTF-8 (MSH-18 "UNICODE UTF-8"). `mix` rotates 80/10/10.
#include <unicode/ucnv.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;

enum class Encoding { kIso2022Jp, kSjis, kUtf8 };

struct Name {
  const char* kanji_family;
  const char* kanji_given;
  const char* kana_family;
  const char* kana_given;
};

constexpr Name kNames[] = {
    {"山本", "万里子", "ヤマモト", "マリコ"}, {"佐藤", "太郎", "サトウ", "タロウ"},
    {"鈴木", "花子", "スズキ", "ハナコ"},     {"高橋", "一郎", "タカハシ", "イチロウ"},
    {"田中", "美咲", "タナカ", "ミサキ"},     {"渡辺", "健太", "ワタナベ", "ケンタ"},
    {"伊藤", "陽子", "イトウ", "ヨウコ"},     {"中村", "翔", "ナカムラ", "ショウ"},
    {"小林", "愛", "コバヤシ", "アイ"},       {"加藤", "京子", "カトウ", "キョウコ"},
};
constexpr const char* kAddresses[] = {
    "東京都千代田区丸の内一丁目１－１",       "愛知県名古屋市中区三の丸一丁目１－１",
    "大阪府大阪市北区梅田二丁目３－４",       "北海道札幌市中央区北一条西五丁目６",
    "福岡県福岡市博多区博多駅前三丁目２－１",
};
struct Disease {
  const char* code;
  const char* name;
  const char* icd10;
};
constexpr Disease kDiseases[] = {
    {"20054174", "胃炎", "K297"},       {"20084317", "腰痛症", "M545"},
    {"20057011", "高血圧症", "I10"},    {"20063339", "２型糖尿病", "E119"},
    {"20056498", "気管支喘息", "J459"},
};
struct Drug {
  const char* hot9;
  const char* name;
};
constexpr Drug kDrugs[] = {
    {"103835401", "ムコダイン錠２５０ｍｇ"},
    {"100795402", "ロキソニン錠６０ｍｇ"},
    {"111111101", "アムロジン錠５ｍｇ"},
    {"105271807", "メトグルコ錠２５０ｍｇ"},
};
struct Lab {
  const char* jlac10;
  const char* name;
  const char* unit;
  const char* range;
  double low;
  double high;
};
constexpr Lab kLabs[] = {
    {"3A010000002327101", "総蛋白", "g/dL", "6.6-8.1", 6.0, 8.5},
    {"5C070000002306201", "ＣＲＰ", "mg/dL", "0.00-0.14", 0.0, 2.0},
    {"3B035000002327201", "ＡＳＴ", "U/L", "13-30", 10, 60},
    {"3B045000002327201", "ＡＬＴ", "U/L", "10-42", 8, 70},
    {"3D010000001926101", "グルコース", "mg/dL", "73-109", 70, 180},
};

class Encoder {
 public:
  Encoder() {
    UErrorCode status = U_ZERO_ERROR;
    cp932_ = ucnv_open("windows-31j", &status);
    if (U_FAILURE(status)) {
      std::fprintf(stderr, "gen_ssmix2_store: ICU has no windows-31j converter\n");
      std::exit(2);
    }
    // Fail loudly on a character CP932 cannot represent instead of writing a substitute.
    ucnv_setFromUCallBack(cp932_, UCNV_FROM_U_CALLBACK_STOP, nullptr, nullptr, nullptr, &status);
  }
  ~Encoder() { ucnv_close(cp932_); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  std::string Encode(const std::string& utf8, Encoding encoding) {
    if (encoding == Encoding::kUtf8) return utf8;
    std::string sjis = ToCp932(utf8);
    if (encoding == Encoding::kSjis) return sjis;
    return Cp932ToIso2022Jp(sjis);
  }

 private:
  std::string ToCp932(const std::string& utf8) {
    UErrorCode status = U_ZERO_ERROR;
    std::u16string u16(utf8.size() + 1, u'\0');
    int32_t len = 0;
    // UTF-8 -> UTF-16 -> CP932.
    UConverter* u8 = ucnv_open("UTF-8", &status);
    len = ucnv_toUChars(u8, reinterpret_cast<UChar*>(u16.data()), static_cast<int32_t>(u16.size()),
                        utf8.data(), static_cast<int32_t>(utf8.size()), &status);
    ucnv_close(u8);
    std::string out(static_cast<std::size_t>(len) * 2 + 4, '\0');
    status = U_ZERO_ERROR;
    const int32_t n = ucnv_fromUChars(cp932_, out.data(), static_cast<int32_t>(out.size()),
                                      reinterpret_cast<const UChar*>(u16.data()), len, &status);
    if (U_FAILURE(status)) {
      std::fprintf(stderr, "gen_ssmix2_store: a pool string is not representable in CP932\n");
      std::exit(2);
    }
    out.resize(static_cast<std::size_t>(n));
    return out;
  }

  // Inverse of the digest §8 mapping: Shift_JIS (s1,s2) -> JIS X 0208 (j1,j2).
  static std::string Cp932ToIso2022Jp(const std::string& sjis) {
    std::string out;
    bool kanji = false;
    for (std::size_t i = 0; i < sjis.size(); ++i) {
      const auto c = static_cast<unsigned char>(sjis[i]);
      if (c < 0x80) {
        if (kanji) out += "\x1b(B";
        kanji = false;
        out += static_cast<char>(c);
        continue;
      }
      if (i + 1 >= sjis.size()) break;
      const auto s1 = c;
      const auto s2 = static_cast<unsigned char>(sjis[++i]);
      unsigned j1 = 0;
      unsigned j2 = 0;
      const unsigned row = s1 <= 0x9F ? s1 - 0x70 : s1 - 0xB0;  // (j1+1)>>1
      if (s2 >= 0x9F) {
        j1 = row * 2;
        j2 = s2 - 0x7E;
      } else {
        j1 = row * 2 - 1;
        j2 = s2 - (s2 >= 0x80 ? 0x20 : 0x1F);
      }
      if (!kanji) out += "\x1b$B";
      kanji = true;
      out += static_cast<char>(j1);
      out += static_cast<char>(j2);
    }
    if (kanji) out += "\x1b(B";
    return out;
  }

  UConverter* cp932_ = nullptr;
};

std::string Msh(const char* type, const std::string& control_id, const std::string& when,
                Encoding encoding) {
  const char* charset = encoding == Encoding::kIso2022Jp ? "~ISO IR87"
                        : encoding == Encoding::kSjis    ? "SJIS"
                                                         : "UNICODE UTF-8";
  const char* msh20 = encoding == Encoding::kIso2022Jp ? "ISO 2022-1994" : "";
  return std::string("MSH|^~\\&|HIS|SEND|GW|RCV|") + when + "||" + type + "|" + control_id +
         "|P|2.5||||||" + charset + "||" + msh20 +
         "|SS-MIX2_1.20^SS-MIX2^1.2.392.200250.2.1.100.1.2.120^ISO\r";
}

std::string Pid(const std::string& id, const Name& name, const char* address, int birth_year,
                bool female) {
  char birth[16];
  std::snprintf(birth, sizeof birth, "%04d%02d%02d", birth_year, 1 + birth_year % 12,
                1 + birth_year % 28);
  return "PID|0001||" + id + "^^^^PI||" + name.kanji_family + "^" + name.kanji_given + "^^^^^L^I~" +
         name.kana_family + "^" + name.kana_given + "^^^^^L^P||" + birth + "|" +
         (female ? "F" : "M") + "|||^^^^100-0005^JPN^H^" + address +
         "||^PRN^PH^^^^^^^^^03-0000-0000\r";
}

struct Writer {
  fs::path root;
  Encoder encoder;
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;

  void Write(const std::string& id, const std::string& date, const char* type,
             const std::string& order, const std::string& stored, const char* dept, char flag,
             const std::string& message, Encoding encoding) {
    const fs::path dir = root / id.substr(0, 3) / id.substr(3, 3) / id / date / type;
    fs::create_directories(dir);
    const std::string name =
        id + "_" + date + "_" + type + "_" + order + "_" + stored + "_" + dept + "_" + flag;
    const std::string body = encoder.Encode(message, encoding);
    std::ofstream out(dir / name, std::ios::binary);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    ++files;
    bytes += body.size();
  }
};

int Usage() {
  std::fprintf(stderr,
               "usage: gen_ssmix2_store --out DIR [--messages N] [--encoding "
               "mix|iso2022jp|sjis|utf8] [--seed S]\n"
               "Writes a synthetic SS-MIX2 standardized storage tree of about N message files\n"
               "(default 1000) for benchmarks. Synthetic data only.\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  std::uint64_t messages = 1000;
  std::string encoding_name = "mix";
  std::uint32_t seed = 20261130;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--out") {
      out = value();
    } else if (arg == "--messages") {
      messages = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--encoding") {
      encoding_name = value();
    } else if (arg == "--seed") {
      seed = static_cast<std::uint32_t>(std::strtoul(value().c_str(), nullptr, 10));
    } else {
      return Usage();
    }
  }
  if (out.empty() || messages == 0) return Usage();
  if (encoding_name != "mix" && encoding_name != "iso2022jp" && encoding_name != "sjis" &&
      encoding_name != "utf8") {
    return Usage();
  }

  Writer writer;
  writer.root = out;
  std::mt19937 rng(seed);
  const auto start = std::chrono::steady_clock::now();
  constexpr std::uint64_t kPerPatient = 8;  // ADT-00, ADT-61, PPR-01, 2x OMP-01, 3x OML-11
  const std::uint64_t patients = (messages + kPerPatient - 1) / kPerPatient;
  std::uint64_t control = 0;
  for (std::uint64_t p = 0; p < patients && writer.files < messages; ++p) {
    Encoding enc = Encoding::kIso2022Jp;
    if (encoding_name == "sjis" || (encoding_name == "mix" && p % 10 == 8)) enc = Encoding::kSjis;
    if (encoding_name == "utf8" || (encoding_name == "mix" && p % 10 == 9)) enc = Encoding::kUtf8;
    char idbuf[32];
    std::snprintf(idbuf, sizeof idbuf, "%010llu", static_cast<unsigned long long>(p + 1));
    const std::string id = idbuf;
    const Name& name = kNames[rng() % std::size(kNames)];
    const char* address = kAddresses[rng() % std::size(kAddresses)];
    const int birth_year = 1930 + static_cast<int>(rng() % 90);
    const bool female = (rng() & 1) != 0;
    const std::string pid = Pid(id, name, address, birth_year, female);
    auto next_control = [&]() {
      char buf[32];
      std::snprintf(buf, sizeof buf, "C%011llu", static_cast<unsigned long long>(++control));
      return std::string(buf);
    };
    const int month = 1 + static_cast<int>(p % 12);
    char date[16];
    std::snprintf(date, sizeof date, "2024%02d%02d", month, 1 + static_cast<int>(p % 28));
    const std::string day = date;

    // ADT-00 (patient snapshot), with insurance.
    std::string adt =
        Msh("ADT^A08^ADT_A01", next_control(), day + "093000", enc) + "EVN||" + day + "093000\r" +
        pid + "PV1|0001|O\r" +
        "IN1|1|06^組合管掌健康保険^JHSD0001|06123456|||||記号１２|３４５６７||||||||||"
        "|||||||||||||||||||||||||01\r";
    if (p % 10 == 0) {
      writer.Write(id, "-", "ADT-00", "999999999999999", day + "090000000", "-", '2', adt, enc);
    }
    writer.Write(id, "-", "ADT-00", "999999999999999", day + "093000000", "-", '1', adt, enc);

    // ADT-61 (allergies).
    const std::string allergy = Msh("ADT^A60^ADT_A60", next_control(), day + "093100", enc) +
                                "EVN||" + day + "093100\r" + pid +
                                "IAM|1|DA^薬剤アレルギー^HL70127|L0001^ペニシリン系抗生物質^99XYZ|"
                                "SV^重症^HL70128|||A^追加^HL70323\r";
    writer.Write(id, "-", "ADT-61", "999999999999999", day + "093100000", "-", '1', allergy, enc);

    // PPR-01 (the whole disease list).
    std::string ppr = Msh("PPR^ZD1^PPR_ZD1", next_control(), day + "101000", enc) + pid;
    for (int d = 0; d < 2; ++d) {
      const Disease& disease =
          kDiseases[(p + static_cast<std::uint64_t>(d)) % std::size(kDiseases)];
      char seq[32];
      std::snprintf(seq, sizeof seq, "%015llu", static_cast<unsigned long long>(p * 10 + d));
      ppr += std::string("PRB|AD|") + day + "|" + disease.code + "^" + disease.name + "^MDCDX2|" +
             seq + "|||" + day + "|||" + disease.icd10 + "^^I10\r" + "ZPR||" + disease.code + "^" +
             disease.name + "^MDCDX2\r";
    }
    writer.Write(id, "-", "PPR-01", "999999999999999", day + "101000000", "01", '1', ppr, enc);

    // OMP-01 x2 (oral prescriptions); every 20th patient has its second order deleted.
    for (int o = 0; o < 2; ++o) {
      const Drug& drug = kDrugs[(p + static_cast<std::uint64_t>(o)) % std::size(kDrugs)];
      char order[32];
      std::snprintf(order, sizeof order, "%015llu", static_cast<unsigned long long>(p * 10 + o));
      const std::string omp =
          Msh("RDE^O11^RDE_O11", next_control(), day + "101600", enc) + pid +
          "PV1|0001|O|01^^^^^C||||D001^医師^次郎^^^^^^^L^^^^^I|||01\r" + "ORC|NW|" + order + "||" +
          order + "_01|||||" + day +
          "101500|||D001^医師^次郎^^^^^^^L^^^^^I|01^^^^^C||||01^内科^99XY1||||||||||||O^"
          "外来患者オーダ^HL70482\r" +
          "RXE||" + drug.hot9 + "^" + drug.name +
          "^HOT9|1||TAB^錠^MR9P|TAB^錠剤^MR9P||||21|TAB^錠^MR9P||||||||3^TAB&錠&MR9P||OHP^"
          "外来処方^MR9P~OHO^院外処方^MR9P\r" +
          "TQ1|1||1013044400000000&内服・経口・１日３回朝昼夕食後&JAMISDP01|||7^d|" + day + "\r" +
          "RXR|PO^口^HL70162\r";
      const char flag = (o == 1 && p % 20 == 0) ? '0' : '1';
      writer.Write(id, day, "OMP-01", order, day + "10160000" + std::to_string(o), "01", flag, omp,
                   enc);
    }

    // OML-11 x3 (lab results).
    for (int r = 0; r < 3 && writer.files < messages; ++r) {
      char order[32];
      std::snprintf(order, sizeof order, "%015llu",
                    static_cast<unsigned long long>(p * 10 + 5 + r));
      std::string oul = Msh("OUL^R22^OUL_R22", next_control(), day + "130000", enc) + pid +
                        "PV1|0001|O|01^^^^^C\r" + "SPM|1|S" + order +
                        "||023^血清^JC10|||||||||||||" + day + "0900\r" + "OBR|1|" + order + "|S" +
                        order + "|E001^生化学^99O03|||" + day + "0900\r" + "ORC|SC|" + order +
                        "|S" + order + "||CM||||" + day + "120000\r";
      for (int k = 0; k < 3; ++k) {
        const Lab& lab = kLabs[(static_cast<std::uint64_t>(r * 3 + k) + p) % std::size(kLabs)];
        const double v = lab.low + (lab.high - lab.low) * (rng() % 1000) / 1000.0;
        char value[32];
        std::snprintf(value, sizeof value, "%.2f", v);
        oul += "OBX|" + std::to_string(k + 1) + "|NM|" + lab.jlac10 + "^" + lab.name + "^JC10||" +
               value + "|" + lab.unit + "^" + lab.unit + "^ISO+|" + lab.range + "||||F|||" + day +
               "0900\r";
      }
      writer.Write(id, day, "OML-11", order, day + "13000000" + std::to_string(r), "01", '1', oul,
                   enc);
    }
    if ((p + 1) % 10000 == 0) {
      std::fprintf(stderr, "\rgen_ssmix2_store: %llu files",
                   static_cast<unsigned long long>(writer.files));
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\rgen_ssmix2_store: %llu files, %.1f MB in %.1f s -> %s\n",
               static_cast<unsigned long long>(writer.files), writer.bytes / 1e6, secs,
               out.c_str());
  return 0;
}
