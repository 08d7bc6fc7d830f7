#include "kakehashi/terminology/validation.hpp"

#include <catch2/catch.hpp>

namespace kt = kakehashi::terminology;
using kt::CheckStatus;

// Worked examples: digest terminology.md §4.4.
TEST_CASE("Luhn check digit: the digest's worked example", "[terminology]") {
  CHECK(kt::LuhnCheckDigit("3312001") == 5);  // 2+0+0+2+2+3+6 = 15 -> 5
  CHECK(kt::LuhnCheckDigit("011011371") == 9);
  CHECK_FALSE(kt::LuhnCheckDigit("").has_value());
  CHECK_FALSE(kt::LuhnCheckDigit("12a").has_value());
}

TEST_CASE("保険者番号: valid and invalid numbers", "[terminology]") {
  for (const char* valid : {"33120015", "39101233", "06139992", "139998"}) {
    INFO(valid);
    auto r = kt::CheckInsurerNumber(valid);
    CHECK(r.status == CheckStatus::kValid);
    CHECK(r.IssueCode().empty());
  }
  CHECK(kt::CheckInsurerNumber("139998").normalized == "00139998");  // 国保 padded to 8
  // 7 digits: the dropped leading zero of 協会けんぽ (ssmix2-hl7v2.md IN1): padded, then checked.
  auto seven = kt::CheckInsurerNumber("3910123");
  CHECK(seven.status == CheckStatus::kBadCheckDigit);     // 03910123: a different number
  auto placeholder = kt::CheckInsurerNumber("06012345");  // the digest's failing placeholder
  CHECK(placeholder.status == CheckStatus::kBadCheckDigit);
  CHECK(placeholder.expected_check_digit == 8);
  CHECK(placeholder.IssueCode() == "terminology.check.bad_check_digit");
  CHECK(kt::CheckInsurerNumber("33120016").status == CheckStatus::kBadCheckDigit);
  CHECK(kt::CheckInsurerNumber("3312001X").status == CheckStatus::kBadShape);
  CHECK(kt::CheckInsurerNumber("12345").status == CheckStatus::kBadShape);
  CHECK(kt::CheckInsurerNumber("123456789").status == CheckStatus::kBadShape);
  // Luhn-valid but prefecture 99 -> kBadPart.
  auto digit = kt::LuhnCheckDigit("0199123");
  std::string number = "0199123" + std::to_string(*digit);
  CHECK(kt::CheckInsurerNumber(number).status == CheckStatus::kBadPart);
}

TEST_CASE("医療機関コード: valid, IG examples fail (warn only)", "[terminology]") {
  CHECK(kt::CheckMedicalInstitutionCode("0110113719").status == CheckStatus::kValid);
  CHECK(kt::CheckMedicalInstitutionCode("1312345679").status == CheckStatus::kValid);
  for (const char* ig : {"1311234567", "1312345670", "1318814790"}) {
    INFO(ig);
    auto r = kt::CheckMedicalInstitutionCode(ig);
    CHECK(r.status == CheckStatus::kBadCheckDigit);
    CHECK(r.normalized == ig);  // kept, never rejected
  }
  CHECK(kt::CheckMedicalInstitutionCode("1318814793").status == CheckStatus::kValid);
  CHECK(kt::CheckMedicalInstitutionCode("131881479").status == CheckStatus::kBadShape);
  CHECK(kt::CheckMedicalInstitutionCode("13188147９0").status == CheckStatus::kBadShape);
  // Prefecture 48 with a correct check digit -> kBadPart; 点数表 2 -> kBadPart.
  std::string pref48 = "481234567" + std::to_string(*kt::LuhnCheckDigit("481234567"));
  CHECK(kt::CheckMedicalInstitutionCode(pref48).status == CheckStatus::kBadPart);
  std::string table2 = "132234567" + std::to_string(*kt::LuhnCheckDigit("132234567"));
  CHECK(kt::CheckMedicalInstitutionCode(table2).status == CheckStatus::kBadPart);
}

TEST_CASE("被保険者個人識別子: built from the card fields (§4.5)", "[terminology]") {
  auto r = kt::BuildInsuredPersonId("139998", "", "１８７", "");
  CHECK(r.status == CheckStatus::kValid);
  CHECK(r.normalized == "00139998::１８７:");  // padded insurer, empty 記号 and 枝番, colons kept
  auto with_branch = kt::BuildInsuredPersonId("06139992", "１２３", "４５６７", "01");
  CHECK(with_branch.ok());
  CHECK(with_branch.normalized == "06139992:１２３:４５６７:01");
  CHECK(kt::BuildInsuredPersonId("06139992", "AB", "123", "00").normalized == "06139992:AB:123:00");
  // Branch must be exactly two half-width digits.
  CHECK(kt::BuildInsuredPersonId("06139992", "1", "2", "1").status == CheckStatus::kBadPart);
  CHECK(kt::BuildInsuredPersonId("06139992", "1", "2", "０１").status == CheckStatus::kBadPart);
  // Mixed widths, full-width space, missing number.
  CHECK(kt::BuildInsuredPersonId("06139992", "１２", "34", "").status == CheckStatus::kBadShape);
  CHECK(kt::BuildInsuredPersonId("06139992", "", "１　２", "").status == CheckStatus::kBadShape);
  CHECK(kt::BuildInsuredPersonId("06139992", "12", "", "").status == CheckStatus::kBadShape);
  // Insurer check digit wrong: warned, identifier still built.
  auto warn = kt::BuildInsuredPersonId("06012345", "", "1", "");
  CHECK(warn.status == CheckStatus::kBadCheckDigit);
  CHECK(warn.normalized == "06012345::1:");
}

TEST_CASE("被保険者個人識別子: parsing a ready identifier", "[terminology]") {
  CHECK(kt::CheckInsuredPersonId("00139998::１８７:").ok());
  CHECK(kt::CheckInsuredPersonId("06139992:１２３:４５６７:01").ok());
  CHECK(kt::CheckInsuredPersonId("139998::187:").status == CheckStatus::kBadShape);   // not padded
  CHECK(kt::CheckInsuredPersonId("00139998::187").status == CheckStatus::kBadShape);  // 3 parts
  CHECK(kt::CheckInsuredPersonId("00139998::187:1").status == CheckStatus::kBadPart);
  CHECK(kt::CheckInsuredPersonId("00139998::187::").status == CheckStatus::kBadShape);
  CHECK(kt::CheckInsuredPersonId("06012345::1:").status == CheckStatus::kBadCheckDigit);
}

TEST_CASE("JLAC10: 17-character structure", "[terminology]") {
  kt::Jlac10Parts parts;
  auto r = kt::CheckJlac10("3H015000002326101", &parts);
  CHECK(r.ok());
  CHECK(parts.analyte == "3H015");
  CHECK(parts.identification == "0000");
  CHECK(parts.material == "023");
  CHECK(parts.method == "261");
  CHECK(parts.result == "01");
  CHECK(kt::CheckJlac10("3A015000002329101").ok());
  CHECK(kt::CheckJlac10("3A0150000023291-1").ok());                            // '-' allowed
  CHECK(kt::CheckJlac10("5A1002411023006").status == CheckStatus::kBadShape);  // 15 chars: warn
  CHECK(kt::CheckJlac10("3h015000002326101").status == CheckStatus::kBadShape);
  CHECK(kt::CheckJlac10("AH015000002326101").status == CheckStatus::kBadShape);
}

TEST_CASE("drug codes: YJ, 一般名, HOT, レセ電 shapes", "[terminology]") {
  CHECK(kt::CheckYjCode("2316009F1022").ok());
  CHECK(kt::CheckYjCode("2325003B2029").ok());
  CHECK(kt::CheckYjCode("2325003B2ZZZ").status == CheckStatus::kBadShape);  // 一般名, not YJ
  CHECK(kt::CheckYjCode("231600901022").status == CheckStatus::kBadShape);
  CHECK(kt::CheckYjCode("2316009F102").status == CheckStatus::kBadShape);
  CHECK(kt::CheckGeneralNameCode("2325003B2ZZZ").ok());
  CHECK(kt::CheckGeneralNameCode("2325003B2029").status == CheckStatus::kBadShape);
  CHECK(kt::CheckHotCode("104195801", 9).ok());
  CHECK(kt::CheckHotCode("1041958010101", 13).ok());
  CHECK(kt::CheckHotCode("1041958", 7).ok());
  CHECK(kt::CheckHotCode("10419580", 9).status == CheckStatus::kBadShape);
  CHECK(kt::CheckHotCode("104195801", 8).status == CheckStatus::kBadShape);
  CHECK(kt::CheckReceiptDrugCode("610406079").ok());
  CHECK(kt::CheckReceiptDrugCode("510406079").status == CheckStatus::kBadShape);
  CHECK(kt::CheckReceiptDrugCode("61040607").status == CheckStatus::kBadShape);
}
