// Structure and check-digit helpers for Japanese codes and identifiers (digest terminology.md §4).
//
// Policy (kakehashi rule, digest §4.4 and §8 item 4): a wrong check digit is a *warning*, never a
// rejection — published IG examples (1311234567, 1318814790) fail the check. Every check returns a
// CheckResult; callers turn non-kValid results into warning Issues with the code given here
// (`IssueCode()`), naming the field, never the value.
//
// All functions are pure and thread-safe. Input is ASCII (half-width); full-width digits must be
// folded by the caller's text layer first (width is significant for 記号/番号, §4.5).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::terminology {

enum class CheckStatus {
  kValid,
  kBadCheckDigit,  // shape fine, check digit wrong (warn)
  kBadShape,       // wrong length or characters (warn; not this kind of code)
  kBadPart,        // shape fine but a part is out of range (prefecture 48, branch "1")
};

struct CheckResult {
  CheckStatus status = CheckStatus::kBadShape;
  std::string normalized;  // canonical form when derivable (8-digit insurer number), else input
  std::string detail;      // one English sentence on what failed; never contains the value
  std::optional<int> expected_check_digit;  // for kBadCheckDigit

  bool ok() const { return status == CheckStatus::kValid; }
  // "terminology.check.bad_check_digit" / ".bad_shape" / ".bad_part" / "" for kValid.
  std::string_view IssueCode() const;
};

// Luhn check digit of an all-digit `body` (digest §4.4): double every second digit starting with
// the rightmost body digit, add the digits of each product, check = (10 - sum % 10) % 10.
// nullopt when `body` is empty or not all digits.
std::optional<int> LuhnCheckDigit(std::string_view body);

// 保険者番号: 8 digits (法別 2 + 都道府県 2 + 保険者別 3 + check) or 国保 6 digits (都道府県 2 +
// 保険者別 3 + check); a 7-digit number is left-padded to 8 first (ssmix2-hl7v2.md IN1 rule).
// normalized = the 8-digit zero-padded form used by the 被保険者個人識別子. Prefecture 01-47.
CheckResult CheckInsurerNumber(std::string_view number);

// 医療機関コード 10 digits = 都道府県 2 + 点数表 1 + 郡市区 2 + 医療機関等番号 4 + check (Luhn over
// the first 9). Prefecture 01-47; 点数表 1 医科, 3 歯科, 4 調剤, 6 訪問看護 (others: kBadPart).
CheckResult CheckMedicalInstitutionCode(std::string_view code);

// 被保険者個人識別子 parts (§4.5). `insurer` any of 6/7/8 digits (padded to 8); `symbol` and
// `number` must be all half-width or all full-width (no full-width space; `number` required);
// `branch` (枝番) empty or exactly 2 half-width digits. On success normalized =
// "<insurer8>:<記号>:<番号>:<枝番>" (colons always present, absent branch empty, not "00").
// Check-digit problems of the insurer number are reported as kBadCheckDigit but the identifier is
// still built (warn, don't reject).
CheckResult BuildInsuredPersonId(std::string_view insurer, std::string_view symbol,
                                 std::string_view number, std::string_view branch);

// Validates a ready 被保険者個人識別子 against the JP-CLINS regex
// ^[0-9]{8}:[^:\s　]*:[^:\s　]*:(|[0-9][0-9])$ and the insurer check digit.
CheckResult CheckInsuredPersonId(std::string_view id);

// JLAC10 (§4.1): 17 chars = 分析物 5 + 識別 4 + 材料 3 + 測定法 3 + 結果識別 2, characters
// [0-9A-Z-], first char a digit. Other lengths (15-char allergen codes occur) -> kBadShape (warn).
struct Jlac10Parts {
  std::string_view analyte, identification, material, method, result;
};
CheckResult CheckJlac10(std::string_view code, Jlac10Parts* parts = nullptr);

// YJ / 薬価基準収載医薬品コード (§4.2): 12 chars: 1-7 digits, 8 an upper-case letter (剤形),
// 9-11 digits or upper-case letters, 12 a digit. The digest gives no check-digit algorithm for the
// 12th char, so only the shape is checked.
CheckResult CheckYjCode(std::string_view code);

// 一般名コード: YJ-style 12 chars whose last three are "ZZZ", e.g. 2325003B2ZZZ.
CheckResult CheckGeneralNameCode(std::string_view code);

// HOT codes (§4.2): HOT13 13 digits, HOT11/HOT9/HOT7 prefixes; `digits` in {7, 9, 11, 13}.
// The digest says HOT7 includes a check digit but gives no algorithm: shape only.
CheckResult CheckHotCode(std::string_view code, int digits);

// レセプト電算 医薬品コード: 9 digits starting with 6 (610406079).
CheckResult CheckReceiptDrugCode(std::string_view code);

}  // namespace kakehashi::terminology
