// SS-MIX2 standardized-storage file names (SS-MIX2 標準化ストレージ仕様書 Ver.1.2e; digest §2).
//
//   <患者ID>_<診療日>_<データ種別>_<オーダNo>_<発生日時>_<診療科>_<フラグ>
//
// No field contains '_'. 診療日 is YYYYMMDD or "-"; 発生日時 is the 17-digit storing time
// yyyyMMddHHmmssfff (not MSH-7); 診療科 is 2-3 chars of user table 0069 or "-"; the flag is
// 1 (current), 2 (superseded) or 0 (deleted) (digest §3).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::adapters::ssmix2 {

enum class Flag : char { kDeleted = '0', kCurrent = '1', kSuperseded = '2' };

struct FileName {
  std::string patient_id;  // field 1, <=15 chars in practice (index VARCHAR(15))
  std::string care_date;   // field 2, "YYYYMMDD" or "-"
  std::string data_type;   // field 3, "OMP-01"
  std::string order_no;    // field 4, "999999999999999" for non-order data in every sample
  std::string stored_at;   // field 5, 17 digits
  std::string department;  // field 6, "01", "011", "-"
  Flag flag = Flag::kCurrent;

  // The grouping key of digest §3: (患者ID, 診療日, データ種別, オーダNo), joined by '_'.
  std::string Key() const;
  std::string ToString() const;  // the file name again
};

// Why a name was rejected; names a rule, never the value.
enum class FileNameError {
  kFieldCount,  // not exactly 7 '_'-separated fields
  kEmptyField,  // a field is empty
  kCareDate,    // field 2 neither "-" nor 8 digits
  kStoredAt,    // field 5 not 17 digits
  kFlag,        // field 7 not 0, 1 or 2
  kPatientId,   // field 1 longer than 22 chars or not printable ASCII
};

std::string_view Describe(FileNameError error) noexcept;

// Parses a file name (not a path). Pure. On failure returns nullopt and sets *error if given.
std::optional<FileName> ParseFileName(std::string_view name, FileNameError* error = nullptr);

}  // namespace kakehashi::adapters::ssmix2
