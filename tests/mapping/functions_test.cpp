#include "kakehashi/mapping/functions.hpp"

#include <catch2/catch.hpp>

using namespace kakehashi::mapping;

TEST_CASE("functions: HL7 dates keep their precision", "[mapping]") {
  CHECK(Hl7DateToFhir("198004") == "1980-04");
  CHECK(Hl7DateToFhir("1980") == "1980");
  CHECK(Hl7DateToFhir("19800102") == "1980-01-02");
  CHECK(Hl7DateToFhir("19800102123000") == "1980-01-02");
  CHECK_FALSE(Hl7DateToFhir("19801302"));
  CHECK_FALSE(Hl7DateToFhir("20230229"));
  CHECK(Hl7DateToFhir("20240229") == "2024-02-29");
  CHECK_FALSE(Hl7DateToFhir("19805"));
  CHECK_FALSE(Hl7DateToFhir("abc"));
}

TEST_CASE("functions: HL7 timestamps to FHIR dateTime in JST", "[mapping]") {
  CHECK(Hl7DateTimeToFhir("202404011200") == "2024-04-01T12:00:00+09:00");
  CHECK(Hl7DateTimeToFhir("20240401120030") == "2024-04-01T12:00:30+09:00");
  CHECK(Hl7DateTimeToFhir("2024040112") == "2024-04-01T12:00:00+09:00");
  CHECK(Hl7DateTimeToFhir("20240401093000.123") == "2024-04-01T09:30:00.123+09:00");
  // 17 digits without a dot (SS-MIX2 MSH-7 / 発生日時).
  CHECK(Hl7DateTimeToFhir("20240401093000123") == "2024-04-01T09:30:00.123+09:00");
  CHECK(Hl7DateTimeToFhir("20240401120000+0000") == "2024-04-01T12:00:00+00:00");
  CHECK(Hl7DateTimeToFhir("202404") == "2024-04");
  bool rolled = false;
  // JAHIS after-midnight hours (digest §7): 24:30 on 13 June is 00:30 on 14 June.
  CHECK(Hl7DateTimeToFhir("202306132430", &rolled) == "2023-06-14T00:30:00+09:00");
  CHECK(rolled);
  CHECK(Hl7DateTimeToFhir("202312314700", &rolled) == "2024-01-01T23:00:00+09:00");
  CHECK_FALSE(Hl7DateTimeToFhir("202306134800"));
  CHECK_FALSE(Hl7DateTimeToFhir("2023061312x"));
  CHECK_FALSE(Hl7DateTimeToFhir("20230613126"));
}

TEST_CASE("functions: wareki, kana, decimals", "[mapping]") {
  CHECK(JpEraToDate("S55.4.1") == "1980-04-01");
  CHECK(JpEraToDate("昭和55年4月1日") == "1980-04-01");
  CHECK(JpEraToDate("令和元年5月") == "2019-05");
  CHECK_FALSE(JpEraToDate("1980-04-01"));
  CHECK(NormalizeKana("ﾔﾏﾓﾄ ﾏﾘｺ") == "ヤマモト マリコ");
  CHECK(NormalizeKana("ｶﾞｯｺｳ") == "ガッコウ");
  CHECK(NormalizeKana("山本") == "山本");
  CHECK(NormalizeDecimal("1.50") == "1.50");
  CHECK(NormalizeDecimal(" 7.0 ") == "7.0");
  CHECK(NormalizeDecimal("１２．５") == "12.5");
  CHECK(NormalizeDecimal(".5") == "0.5");
  CHECK(NormalizeDecimal("007") == "7");
  CHECK(NormalizeDecimal("-0.25") == "-0.25");
  CHECK_FALSE(NormalizeDecimal("1.2.3"));
  CHECK_FALSE(NormalizeDecimal("< 5"));
  CHECK_FALSE(NormalizeDecimal(""));
  CHECK_FALSE(NormalizeDecimal("1e5"));
}

TEST_CASE("functions: the registered table", "[mapping]") {
  for (const char* name :
       {"hl7_date_to_fhir", "hl7_datetime_to_fhir", "hl7_instant", "decimal", "integer",
        "jp_era_to_date", "normalize_kana", "patient_system", "facility_system", "code_system",
        "quantity", "obx_value", "reference_range", "original_base64", "rp_number",
        "condition_verification", "condition_clinical_status", "icd10_system"}) {
    INFO(name);
    CHECK(FindFunction(name) != nullptr);
  }
  CHECK(FindFunction("system") == nullptr);
  CHECK(FunctionNames().size() >= 18);
}
