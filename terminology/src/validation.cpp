#include "kakehashi/terminology/validation.hpp"

#include <algorithm>

namespace kakehashi::terminology {
namespace {

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

int TwoDigits(std::string_view s) {
  return (s[0] - '0') * 10 + (s[1] - '0');
}

// JIS X 0401 prefecture codes 01-47 (digest §4.6).
bool IsPrefecture(std::string_view two) {
  return TwoDigits(two) >= 1 && TwoDigits(two) <= 47;
}

CheckResult Make(CheckStatus status, std::string_view normalized, std::string detail = {}) {
  CheckResult r;
  r.status = status;
  r.normalized = std::string(normalized);
  r.detail = std::move(detail);
  return r;
}

CheckResult VerifyLuhn(std::string_view number, std::string_view what) {
  auto expected = LuhnCheckDigit(number.substr(0, number.size() - 1));
  if (*expected != number.back() - '0') {
    CheckResult r = Make(CheckStatus::kBadCheckDigit, number,
                         std::string(what) +
                             ": the check digit (last digit) does not match the "
                             "Luhn check digit of the preceding digits");
    r.expected_check_digit = expected;
    return r;
  }
  return Make(CheckStatus::kValid, number);
}

// UTF-8 full-width (U+FF01-U+FF5E) and ideographic space U+3000 detection for 記号/番号 (§4.5).
enum class Width { kEmpty, kHalf, kFull, kMixed, kBad };

Width ClassifyWidth(std::string_view s) {
  if (s.empty()) return Width::kEmpty;
  bool half = false;
  bool full = false;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c <= 0x20 || c == ':') return Width::kBad;  // spaces, controls, the separator
      half = true;
      ++i;
      continue;
    }
    std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (i + len > s.size()) return Width::kBad;
    // U+3000 (E3 80 80) is forbidden; ：(EF BC 9A) is allowed as data.
    if (len == 3 && s.compare(i, 3, "\xE3\x80\x80") == 0) return Width::kBad;
    // Half-width katakana U+FF61-U+FF9F (EF BD A1 .. EF BE 9F) counts as half-width.
    if (len == 3 && c == 0xEF) {
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      auto c2 = static_cast<unsigned char>(s[i + 2]);
      if ((c1 == 0xBD && c2 >= 0xA1) || c1 == 0xBE) {
        half = true;
        i += len;
        continue;
      }
    }
    full = true;
    i += len;
  }
  if (half && full) return Width::kMixed;
  return full ? Width::kFull : Width::kHalf;
}

}  // namespace

std::string_view CheckResult::IssueCode() const {
  switch (status) {
    case CheckStatus::kValid: return "";
    case CheckStatus::kBadCheckDigit: return "terminology.check.bad_check_digit";
    case CheckStatus::kBadShape: return "terminology.check.bad_shape";
    case CheckStatus::kBadPart: return "terminology.check.bad_part";
  }
  return "";
}

std::optional<int> LuhnCheckDigit(std::string_view body) {
  if (!AllDigits(body)) return std::nullopt;
  int sum = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    int d = body[body.size() - 1 - i] - '0';
    int p = d * (i % 2 == 0 ? 2 : 1);  // i = 0 is the rightmost body digit: doubled
    sum += p / 10 + p % 10;
  }
  return (10 - sum % 10) % 10;
}

CheckResult CheckInsurerNumber(std::string_view number) {
  if (!AllDigits(number) || (number.size() != 6 && number.size() != 7 && number.size() != 8)) {
    return Make(CheckStatus::kBadShape, number, "保険者番号 must be 6 (国保) or 8 digits");
  }
  // 7 digits: a dropped leading zero (協会けんぽ 01…); 6 digits: 国保. Left-padding with zeros
  // does not change the Luhn result (§4.4), so the padded form is checked.
  std::string padded(8 - number.size(), '0');
  padded += number;
  std::string_view pref =
      number.size() == 6 ? number.substr(0, 2) : std::string_view(padded).substr(2, 2);
  CheckResult r = VerifyLuhn(padded, "保険者番号");
  if (r.ok() && !IsPrefecture(pref)) {
    return Make(CheckStatus::kBadPart, padded, "保険者番号: the prefecture digits are not 01-47");
  }
  return r;
}

CheckResult CheckMedicalInstitutionCode(std::string_view code) {
  if (!AllDigits(code) || code.size() != 10) {
    return Make(CheckStatus::kBadShape, code, "医療機関コード must be 10 digits");
  }
  CheckResult r = VerifyLuhn(code, "医療機関コード");
  if (!r.ok()) return r;
  if (!IsPrefecture(code.substr(0, 2))) {
    return Make(CheckStatus::kBadPart, code, "医療機関コード: the prefecture digits are not 01-47");
  }
  char table = code[2];  // 点数表: 1 医科, 3 歯科, 4 調剤, 6 訪問看護 (digest §2 点数表)
  if (table != '1' && table != '3' && table != '4' && table != '6') {
    return Make(CheckStatus::kBadPart, code,
                "医療機関コード: the 点数表 digit is not 1, 3, 4 or 6");
  }
  return r;
}

CheckResult BuildInsuredPersonId(std::string_view insurer, std::string_view symbol,
                                 std::string_view number, std::string_view branch) {
  CheckResult ins = CheckInsurerNumber(insurer);
  if (ins.status == CheckStatus::kBadShape) return ins;
  Width ws = ClassifyWidth(symbol);
  Width wn = ClassifyWidth(number);
  if (wn == Width::kEmpty) {
    return Make(CheckStatus::kBadShape, "", "被保険者証番号 is required");
  }
  if (ws == Width::kBad || wn == Width::kBad || ws == Width::kMixed || wn == Width::kMixed ||
      (ws != Width::kEmpty && ws != wn)) {
    return Make(CheckStatus::kBadShape, "",
                "記号/番号 must be all half-width or all full-width, without spaces or ':'");
  }
  if (!branch.empty() && !(branch.size() == 2 && AllDigits(branch))) {
    return Make(CheckStatus::kBadPart, "", "枝番 must be exactly 2 half-width digits or absent");
  }
  std::string id = ins.normalized;
  id.append(":").append(symbol).append(":").append(number).append(":").append(branch);
  if (!ins.ok()) {
    ins.normalized = id;
    return ins;
  }
  return Make(CheckStatus::kValid, id);
}

CheckResult CheckInsuredPersonId(std::string_view id) {
  std::string_view parts[4];
  std::size_t start = 0;
  for (int i = 0; i < 4; ++i) {
    auto colon = id.find(':', start);
    if (i < 3 && colon == std::string_view::npos) {
      return Make(CheckStatus::kBadShape, id, "被保険者個人識別子 needs four ':'-separated parts");
    }
    if (i == 3 && colon != std::string_view::npos) {
      return Make(CheckStatus::kBadShape, id, "被保険者個人識別子 has more than four parts");
    }
    parts[i] = id.substr(start, i == 3 ? std::string_view::npos : colon - start);
    start = colon + 1;
  }
  if (parts[0].size() != 8 || !AllDigits(parts[0])) {
    return Make(CheckStatus::kBadShape, id,
                "被保険者個人識別子: 保険者番号 must be 8 digits (zero-padded)");
  }
  CheckResult r = BuildInsuredPersonId(parts[0], parts[1], parts[2], parts[3]);
  if (r.status == CheckStatus::kValid || r.status == CheckStatus::kBadCheckDigit) {
    r.normalized = std::string(id);
  }
  return r;
}

CheckResult CheckJlac10(std::string_view code, Jlac10Parts* parts) {
  auto ok_char = [](char c) { return IsDigit(c) || IsUpper(c) || c == '-'; };
  if (code.size() != 17 || !std::all_of(code.begin(), code.end(), ok_char) || !IsDigit(code[0])) {
    return Make(CheckStatus::kBadShape, code,
                "JLAC10 codes have 17 characters [0-9A-Z-] starting with a digit");
  }
  if (parts != nullptr) {
    *parts = {code.substr(0, 5), code.substr(5, 4), code.substr(9, 3), code.substr(12, 3),
              code.substr(15, 2)};
  }
  return Make(CheckStatus::kValid, code);
}

CheckResult CheckYjCode(std::string_view code) {
  bool ok = code.size() == 12 && AllDigits(code.substr(0, 7)) && IsUpper(code[7]) &&
            std::all_of(code.begin() + 8, code.begin() + 11,
                        [](char c) { return IsDigit(c) || IsUpper(c); }) &&
            IsDigit(code[11]);
  return ok ? Make(CheckStatus::kValid, code)
            : Make(CheckStatus::kBadShape, code,
                   "YJ / 薬価基準コード: 12 characters, 7 digits, a 剤形 letter, 3 alphanumerics, "
                   "a digit");
}

CheckResult CheckGeneralNameCode(std::string_view code) {
  bool ok = code.size() == 12 && AllDigits(code.substr(0, 7)) && IsUpper(code[7]) &&
            code.substr(9, 3) == "ZZZ" && (IsDigit(code[8]) || IsUpper(code[8]));
  return ok ? Make(CheckStatus::kValid, code)
            : Make(CheckStatus::kBadShape, code, "一般名コード: 12 characters ending in ZZZ");
}

CheckResult CheckHotCode(std::string_view code, int digits) {
  bool known = digits == 7 || digits == 9 || digits == 11 || digits == 13;
  if (!known || code.size() != static_cast<std::size_t>(digits) || !AllDigits(code)) {
    return Make(CheckStatus::kBadShape, code, "HOT codes are 7, 9, 11 or 13 digits");
  }
  return Make(CheckStatus::kValid, code);
}

CheckResult CheckReceiptDrugCode(std::string_view code) {
  if (code.size() != 9 || !AllDigits(code) || code[0] != '6') {
    return Make(CheckStatus::kBadShape, code, "レセ電 医薬品コード: 9 digits starting with 6");
  }
  return Make(CheckStatus::kValid, code);
}

}  // namespace kakehashi::terminology
