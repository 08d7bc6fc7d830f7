#include "kakehashi/adapters/ssmix2/data_type.hpp"

#include <array>

namespace kakehashi::adapters::ssmix2 {
namespace {

// Guideline 1.2g p.11 (digest §5); undated types per digest §4; snapshots per digest §3.
constexpr std::array<DataTypeInfo, 26> kTypes{{
    {"ADT-00", "患者基本情報", "ADT^A08", "ADT^A23", true, true},
    {"ADT-01", "担当医 変更", "ADT^A54", "ADT^A55", true, false},
    {"ADT-12", "外来受付", "ADT^A04", "", false, false},
    {"ADT-21", "入院予定", "ADT^A14", "ADT^A27", false, false},
    {"ADT-22", "入院実施", "ADT^A01", "ADT^A11", false, false},
    {"ADT-31", "外出泊", "ADT^A21", "ADT^A52", false, false},
    {"ADT-32", "外出泊帰院", "ADT^A22", "ADT^A53", false, false},
    {"ADT-41", "転科・転棟予定", "ADT^A15", "ADT^A26", false, false},
    {"ADT-42", "転科・転棟実施", "ADT^A02", "ADT^A12", false, false},
    {"ADT-51", "退院予定", "ADT^A16", "ADT^A25", false, false},
    {"ADT-52", "退院実施", "ADT^A03", "ADT^A13", false, false},
    {"ADT-61", "アレルギー", "ADT^A60", "", true, true},
    {"PPR-01", "病名(歴)", "PPR^ZD1", "", true, true},
    {"OMD", "食事オーダ", "OMD^O03", "", false, false},
    {"OMP-01", "処方オーダ", "RDE^O11", "", false, false},
    {"OMP-02", "注射オーダ", "RDE^O11", "", false, false},
    {"OMP-11", "処方実施", "RAS^O17", "", false, false},
    {"OMP-12", "注射実施", "RAS^O17", "", false, false},
    {"OML-01", "検体検査オーダ", "OML^O33", "", false, false},
    {"OML-11", "検体検査結果", "OUL^R22", "", false, false},
    {"OMG-01", "放射線検査オーダ", "OMG^O19", "", false, false},
    {"OMG-02", "内視鏡検査オーダ", "OMG^O19", "", false, false},
    {"OMG-03", "生理検査オーダ", "OMG^O19", "", false, false},
    {"OMG-11", "放射線検査実施", "OMI^Z23", "", false, false},
    {"OMG-12", "内視鏡検査実施", "OMI^Z23", "", false, false},
    {"OMG-13", "生理検査結果", "ORU^R01", "", false, false},
}};

}  // namespace

std::span<const DataTypeInfo> DataTypes() noexcept {
  return kTypes;
}

const DataTypeInfo* FindDataType(std::string_view code) noexcept {
  for (const auto& t : kTypes) {
    if (t.code == code) return &t;
  }
  return nullptr;
}

}  // namespace kakehashi::adapters::ssmix2
