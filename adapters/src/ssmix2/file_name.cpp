#include "kakehashi/adapters/ssmix2/file_name.hpp"

#include <array>

namespace kakehashi::adapters::ssmix2 {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string FileName::Key() const {
  return patient_id + '_' + care_date + '_' + data_type + '_' + order_no;
}

std::string FileName::ToString() const {
  return Key() + '_' + stored_at + '_' + department + '_' + static_cast<char>(flag);
}

std::string_view Describe(FileNameError error) noexcept {
  switch (error) {
    case FileNameError::kFieldCount:
      return "an SS-MIX2 file name has 7 '_'-separated fields "
             "(患者ID_診療日_データ種別_オーダNo_発生日時_診療科_フラグ)";
    case FileNameError::kEmptyField: return "a file-name field is empty (use '-' for none)";
    case FileNameError::kCareDate: return "field 2 (診療日) must be YYYYMMDD or '-'";
    case FileNameError::kStoredAt: return "field 5 (発生日時) must be 17 digits yyyyMMddHHmmssfff";
    case FileNameError::kFlag: return "field 7 (condition flag) must be 0, 1 or 2";
    case FileNameError::kPatientId:
      return "field 1 (患者ID) must be 1-22 printable ASCII characters";
  }
  return "invalid file name";
}

std::optional<FileName> ParseFileName(std::string_view name, FileNameError* error) {
  auto fail = [error](FileNameError e) -> std::optional<FileName> {
    if (error != nullptr) *error = e;
    return std::nullopt;
  };
  std::array<std::string_view, 7> f;
  std::size_t count = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = name.find('_', start);
    if (count == f.size()) return fail(FileNameError::kFieldCount);
    f[count++] = name.substr(start, pos == std::string_view::npos ? pos : pos - start);
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  if (count != f.size()) return fail(FileNameError::kFieldCount);
  for (auto field : f) {
    if (field.empty()) return fail(FileNameError::kEmptyField);
  }
  if (f[0].size() > 22) return fail(FileNameError::kPatientId);
  for (char c : f[0]) {
    if (c <= 0x20 || c >= 0x7F || c == '/' || c == '\\') return fail(FileNameError::kPatientId);
  }
  if (f[1] != "-" && !(f[1].size() == 8 && AllDigits(f[1]))) return fail(FileNameError::kCareDate);
  if (!(f[4].size() == 17 && AllDigits(f[4]))) return fail(FileNameError::kStoredAt);
  if (f[6].size() != 1 || (f[6][0] != '0' && f[6][0] != '1' && f[6][0] != '2')) {
    return fail(FileNameError::kFlag);
  }
  FileName out;
  out.patient_id = f[0];
  out.care_date = f[1];
  out.data_type = f[2];
  out.order_no = f[3];
  out.stored_at = f[4];
  out.department = f[5];
  out.flag = static_cast<Flag>(f[6][0]);
  return out;
}

}  // namespace kakehashi::adapters::ssmix2
