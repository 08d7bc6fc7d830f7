#include "kakehashi/terminology/code_systems.hpp"

#include "kakehashi/terminology/errc.hpp"

#include <algorithm>
#include <cctype>

namespace kakehashi::terminology {
namespace {

// The alias table (digest terminology.md §2 table + §3 discrepancies, eprescription.md §5,
// ssmix2-hl7v2.md §9). One row per system:
//   url      JP Core 1.2.0 / JP-CLINS URL ("" = OID only)
//   oid      bare OID emitted for JP Core 1.1.2 / ePrescriptionData ("" = none)
//   cda_oid  bare OID of the 2018 CDA spec when different
//   aliases  space-separated further spellings: URLs / urn:oid: forms / bare OIDs (exact), and
//            HL7 v2 coding-system names (no ':'; matched upper-cased)
// Kept as one flat table so a new target package version is a data change (normaliser rule 3).
struct Row {
  const char* title;
  const char* url;
  const char* oid;
  const char* cda_oid;
  const char* aliases;
  bool identifier;
};

#define CORE "http://jpfhir.jp/fhir/core/CodeSystem/"
#define MHLW "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/"
#define MHLW_ID "http://jpfhir.jp/fhir/core/mhlw/IdSystem/"
#define MEDIS "http://medis.or.jp/CodeSystem/"
#define CLINS "http://jpfhir.jp/fhir/clins/CodeSystem/"
#define THO "http://terminology.hl7.org/CodeSystem/"

constexpr Row kRows[] = {
    // --- JAMI / SS-MIX2 -------------------------------------------------------------------------
    {"SS-MIX2 診療科", "http://jami.jp/SS-MIX2/CodeSystem/ClinicalDepartment",
     "1.2.392.200250.2.2.2", "", CORE "JP_Department_SsMix_CS SSMIX2-DEPT HL70069", false},
    // JAMI 用法 OID: .2.2.20 (1.1.2 final profile) vs .2.2.20.20 (examples, 1.2.0) — §3 item 4.
    {"JAMI 用法 16桁", "http://jami.jp/CodeSystem/MedicationUsage", "1.2.392.200250.2.2.20",
     "1.2.392.100495.20.2.31",
     "1.2.392.200250.2.2.20.20 " CORE "JP_MedicationUsageJAMI_CS JAMISDP01", false},
    {"JAMI 補足用法 8桁", "http://jami.jp/CodeSystem/MedicationUsageAdditional",
     "1.2.392.200250.2.2.20.22", "1.2.392.100495.20.2.32", "", false},
    {"JAMI 基本用法区分", "http://jami.jp/CodeSystem/MedicationMethodBasicUsage",
     "1.2.392.200250.2.2.20.30", "", "", false},
    {"JAMI 部位 3桁", "http://jami.jp/CodeSystem/MedicationBodySiteExternal",
     "1.2.392.200250.2.2.20.32", "", "", false},
    {"JAMI 用法詳細区分", "http://jami.jp/CodeSystem/MedicationMethodDetailUsage",
     "1.2.392.200250.2.2.20.40", "", "", false},
    {"JAMI 調剤指示", "http://jami.jp/CodeSystem/DrugDispensePreparationMethod",
     "1.2.392.200250.2.2.30.10", "", "", false},
    {"電子処方箋 用法マスタ", MHLW "MedicationUsage_ePrescription", "", "", "", false},
    // Route: URL preferred already in 1.1.2; ePrescriptionData spells it under /ePrescription/.
    // v2 name HL70162 -> route-codes directly: JP Core's system is HL7 0162 with codes unchanged
    // (terminology.md §7); the THO v2-0162 URL stays a separate system (table v2-0162-route).
    {"投与経路 (HL7 0162)", CORE "route-codes", "", "1.2.392.100495.20.2.34",
     "2.16.840.1.113883.3.1937.777.10.5.162 "
     "http://jpfhir.jp/fhir/ePrescription/CodeSystem/route-codes HL70162",
     false},
    // --- MEDIS 病名 / レセ電 / ICD-10
    // -------------------------------------------------------------
    {"MEDIS 病名管理番号", MEDIS "master-disease-keyNumber", "1.2.392.200119.4.101.2", "", "MDCDX2",
     false},
    {"MEDIS 病名交換用コード", MEDIS "master-disease-exCode", "1.2.392.200119.4.101.6", "",
     "MDCDX2-EXCODE", false},
    {"MEDIS 修飾語管理番号", MEDIS "master-disease-modKeyNumber", "1.2.392.200119.4.201.2", "", "",
     false},
    {"MEDIS 修飾語交換用コード", MEDIS "master-disease-modExCode", "1.2.392.200119.4.201.5", "", "",
     false},
    {"レセ電 傷病名", MHLW "masterB-disease", "", "", CORE "JP_ConditionDisaseCodeReceipt_CS",
     false},
    {"レセ電 修飾語", MHLW "masterZ-disease-modifier", "", "",
     CORE "JP_ConditionDiseaseModifierReceipt_CS", false},
    // v2 "I10" is NOT this system: PRB-10 CWE.7 empty/2003 marks the 2003 edition, and 2013 codes
    // come only via a master, never by assumption (ssmix2-hl7v2.md PPR-01; terminology.md §4.3).
    {"ICD-10 (2013) 全桁", MHLW "ICD10-2013-full", "", "",
     "2.16.840.1.113883.6.3.1 http://www.mhlw.go.jp/toukei/sippei/2013/ICD10-JP I10-2013", false},
    {"ICD-10 (2013) 3桁", MHLW "ICD10-2013-3digits", "", "", "", false},
    {"ICD-10 (WHO; v2 I10, edition per CWE.7)", "http://hl7.org/fhir/sid/icd-10", "", "",
     "I10 2.16.840.1.113883.6.3", false},
    {"レセ電 転帰区分", CORE "JP_ConditionDiseaseOutcomeReceipt_CS", "", "", "", false},
    // HL70241 (printed "hhttp://" in one page, §3 item 3).
    {"HL7 0241 転帰", CORE "HL70241", "", "",
     "hhttp://jpfhir.jp/fhir/core/CodeSystem/HL70241 HL70241", false},
    // --- drugs
    // -------------------------------------------------------------------------------------
    {"MEDIS HOT13", MEDIS "master-HOT13", "1.2.392.200119.4.402.1", "",
     CORE "JP_MedicationCodeHOT13_CS HOT13", false},
    // HOT9: MHLW CDA OID .20.2.74 (producers put other drug codes under it: re-home by shape).
    {"MEDIS HOT9", MEDIS "master-HOT9", "1.2.392.200119.4.403.1", "1.2.392.100495.20.2.74",
     CORE "JP_MedicationCodeHOT9_CS HOT9 HOT HOT09", false},
    {"MEDIS HOT7", MEDIS "master-HOT7", "1.2.392.200119.4.403.2", "", "HOT7 HOT07", false},
    // YJ: .20.1.73 (1.1.2) vs .20.2.73 (1.2.0, CDA); typos seen in a converter and a CLINS rule.
    {"YJコード", "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code", "1.2.392.100495.20.1.73",
     "1.2.392.100495.20.2.73", "1.2.392.10495.20.1.73 http://tandard.jp/CodeSystem/YJ-code YJ",
     false},
    {"規格別薬剤成分コード", "http://capstandard.jp/CodeSystem/KikakubetsuYakuzaiSeibun", "", "",
     "", false},
    {"一般名処方マスタ", MHLW "MedicationGeneralOrderCode", "1.2.392.100495.20.1.81",
     "1.2.392.100495.20.2.81", "", false},
    {"レセ電 医薬品コード", "", "1.2.392.100495.20.1.71", "1.2.392.100495.20.2.71", "", false},
    {"薬価基準収載医薬品コード", "", "1.2.392.100495.20.1.72", "", "MYAK", false},
    {"MERIT-9 医薬品単位", MHLW "MedicationUnitMERIT9Code", "1.2.392.100495.20.2.101", "", "MR9P",
     false},
    {"剤形区分", MHLW "MedicationForm", "1.2.392.100495.20.2.21", "", "", false},
    // 力価区分: emit ...StrengthStrengthType (§3 item 1).
    {"力価区分", MHLW "MedicationIngredientStrengthStrengthType", "1.2.392.100495.20.2.22", "",
     MHLW "MedicationIngredientStrengthType", false},
    {"後発品変更不可区分", MHLW "MedicationSubstitutionProhibittedCategory",
     "1.2.392.100495.20.2.41", "", "", false},
    {"残薬確認指示", MHLW "RequestCheckRemainingMedicine", "1.2.392.100495.20.2.42", "", "", false},
    {"診療科 (CDA)", MHLW "MedicationRequestDepartment", "1.2.392.100495.20.2.51", "", "", false},
    {"保険種別", MHLW "InsuranceMajorCategory", "1.2.392.100495.20.2.61", "", "", false},
    {"被保険者区分", MHLW "InsuredPersonCategory", "1.2.392.100495.20.2.62", "", "", false},
    {"患者一部負担区分", MHLW "MedicationInsuredPersonClass", "1.2.392.100495.20.2.63", "", "",
     false},
    {"都道府県番号", MHLW "PrefectureNo-2digits", "1.2.392.100495.20.3.21", "", "", false},
    {"点数表番号", MHLW "MedicationFeeScoreType", "1.2.392.100495.20.3.22", "", "", false},
    {"文書区分 (CDA)", "", "1.2.392.100495.20.2.11", "", "", false},
    {"MERIT-9 処方区分", CORE "JP_MedicationCategoryMERIT9_CS", "", "", "MR9P-CATEGORY", false},
    {"MERIT-9 剤形", CORE "JP_MedicationFormMERIT9_CS", "", "", "", false},
    {"MERIT-9 頓用条件", CORE "JP_MedicationAsNeededConditionMERIT9_CS", "", "", "", false},
    // --- laboratory / nursing / procedures
    // --------------------------------------------------------
    {"JLAC10 17桁", MEDIS "master-JLAC10-17digits", "1.2.392.200119.4.504", "",
     CORE "JP_ObservationLabResultCode_CS JC10", false},
    {"MEDIS 看護観察", MEDIS "master-nursingObservationKeyCode", "1.2.392.200119.4.804", "", "",
     false},
    {"MEDIS 看護行為", MEDIS "master-nursingAction-16digits", "1.2.392.200119.4.704", "",
     "1.2.392.200119.4.701", false},
    {"レセ電 診療行為", MHLW "masterS-medicalProcedure", "", "", "", false},
    {"レセ電 歯科診療行為", MHLW "masterH-dentalProcedure", "", "", "", false},
    {"内視鏡 JED", "", "1.2.392.200270.4.1000.1", "", "", false},
    // --- JAHIS tables (JP Core URLs where published; others keep kakehashi's local URN)
    // -----------
    {"JAHIS JHSP0007 処方区分", CORE "JHSP0007", "", "", "JHSP0007", false},
    {"JAHIS JHSP0002 調剤指示", CORE "JHSP0002", "", "", "JHSP0002", false},
    {"JAHIS JHSI0001", CORE "JHSI0001", "", "", "JHSI0001", false},
    {"JAHIS JHSI0003", CORE "JHSI0003", "", "", "JHSI0003", false},
    {"JAHIS JHSD0006 転帰", CORE "JHSD0006", "", "", "JHSD0006", false},
    {"JAHIS JHSD0001 保険種別", "urn:kakehashi:code-system:JHSD0001", "", "", "JHSD0001", false},
    {"JAHIS JHSD0004 診断種別", "urn:kakehashi:code-system:JHSD0004", "", "", "JHSD0004", false},
    {"JAHIS JHSD0005 疑い", "urn:kakehashi:code-system:JHSD0005", "", "", "JHSD0005", false},
    {"JAHIS JHSD0007 主診断", "urn:kakehashi:code-system:JHSD0007", "", "", "JHSD0007", false},
    {"JAHIS JHSP0003", "urn:kakehashi:code-system:JHSP0003", "", "", "JHSP0003", false},
    {"JAHIS JHSP0005", "urn:kakehashi:code-system:JHSP0005", "", "", "JHSP0005", false},
    {"JAHIS JHSI0002 注射区分", "urn:kakehashi:code-system:JHSI0002", "", "", "JHSI0002", false},
    {"JAHIS JHSD0002", "urn:kakehashi:code-system:JHSD0002", "", "", "JHSD0002", false},
    {"JAHIS JHSI0009", "urn:kakehashi:code-system:JHSI0009", "", "", "JHSI0009", false},
    // OBR-4 of OMG^O19 (digest §6, §9 "JJ1017, LENDO: radiology / endoscopy", LENDO owner
    // [unverified]). terminology.md gives neither a URI nor an OID for them, so they keep the local
    // URN they had; registering the names only stops the unknown-system warning. Replace the URN
    // when a registry identity is published (docs/mapping.md "Local code systems").
    {"JJ1017 放射線検査コード", "urn:kakehashi:code-system:JJ1017", "", "", "JJ1017", false},
    {"LENDO 内視鏡検査コード", "urn:kakehashi:code-system:LENDO", "", "", "LENDO", false},
    {"JAHIS JSHR002 (meaning unverified)", "urn:kakehashi:code-system:JSHR002", "", "", "JSHR002",
     false},
    {"JANIS 菌名", "urn:kakehashi:code-system:JANIS", "", "", "JANIS", false},
    {"MML028 診療科", "urn:kakehashi:code-system:MML028", "", "", "MML028", false},
    {"DICOM", "http://dicom.nema.org/resources/ontology/DCM", "", "", "DCM", false},
    // --- JP-CLINS
    // ---------------------------------------------------------------------------------
    {"J-FAGY 食物アレルゲン", CORE "JP_JfagyFoodAllergen_CS", "", "", "", false},
    {"J-FAGY 医薬品アレルゲン", CORE "JP_JfagyMedicationAllergen_CS", "", "", "", false},
    {"J-FAGY その他アレルゲン", CORE "JP_JfagyNonFoodNonMedicationAllergen_CS", "", "", "", false},
    {"JP-CLINS 検査ローカルコード", CLINS "JP_CLINS_ObsLabResult_LocalCode_CS", "", "", "", false},
    {"JP-CLINS 未コード化検査", CLINS "JP_CLINS_ObsLabResult_Uncoded_CS", "", "", "", false},
    {"JP-CLINS 未コード化用法", CLINS "JP_CLINS_MedicationUsage_Uncoded_CS", "", "", "", false},
    {"JP-CLINS 標準コードなし医薬品",
     "http://jpfhir.jp/fhir/eCS/CodeSystem/MedicationCodeNocoded_CS", "", "", "", false},
    // --- HL7 / FHIR
    // ---------------------------------------------------------------------------------
    {"FHIR AdministrativeGender", "http://hl7.org/fhir/administrative-gender", "", "", "", false},
    {"v3 ObservationInterpretation", THO "v3-ObservationInterpretation", "", "", "", false},
    {"v3 MaritalStatus", THO "v3-MaritalStatus", "", "", "", false},
    {"v3 NullFlavor", THO "v3-NullFlavor", "", "", "", false},
    {"v3 RoleCode", THO "v3-RoleCode", "", "", "", false},
    {"v3 ActCode", THO "v3-ActCode", "", "", "", false},
    {"v3 EntityNameUse", THO "v3-EntityNameUse", "", "", "", false},
    {"FHIR subscriber-relationship", THO "subscriber-relationship", "", "", "", false},
    {"FHIR request-status", "http://hl7.org/fhir/request-status", "", "", "", false},
    {"FHIR medicationrequest-status", "http://hl7.org/fhir/CodeSystem/medicationrequest-status", "",
     "", "", false},
    {"FHIR observation-status", "http://hl7.org/fhir/observation-status", "", "", "", false},
    {"FHIR encounter-status", "http://hl7.org/fhir/encounter-status", "", "", "", false},
    {"FHIR allergy-intolerance-category", "http://hl7.org/fhir/allergy-intolerance-category", "",
     "", "", false},
    {"FHIR allergy-intolerance-type", "http://hl7.org/fhir/allergy-intolerance-type", "", "", "",
     false},
    {"FHIR reaction-event-severity", "http://hl7.org/fhir/reaction-event-severity", "", "", "",
     false},
    {"FHIR contact-point-use", "http://hl7.org/fhir/contact-point-use", "", "", "", false},
    {"FHIR contact-point-system", "http://hl7.org/fhir/contact-point-system", "", "", "", false},
    {"FHIR address-use", "http://hl7.org/fhir/address-use", "", "", "", false},
    {"FHIR name-use", "http://hl7.org/fhir/name-use", "", "", "", false},
    {"FHIR diagnostic-report-status", "http://hl7.org/fhir/diagnostic-report-status", "", "", "",
     false},
    {"medication-admin-status", THO "medication-admin-status", "", "", "", false},
    {"observation-category", THO "observation-category", "", "", "", false},
    {"condition-ver-status", THO "condition-ver-status", "", "", "", false},
    {"allergyintolerance-clinical", THO "allergyintolerance-clinical", "", "", "", false},
    // International systems keep their URL in every JP Core version (R4 vital-signs profiles and
    // Quantity.system require it): their OIDs are input spellings only.
    {"LOINC", "http://loinc.org", "", "", "LN 2.16.840.1.113883.6.1", false},
    // "ISO+": HL7 v2 unit system name; kakehashi reads it as UCUM (units only through the mapping
    // unit table, "UCUM where known").
    {"UCUM", "http://unitsofmeasure.org", "", "", "ISO+ 2.16.840.1.113883.6.8", false},
    {"HL7 v2 0001 Administrative Sex", THO "v2-0001", "", "", "", false},
    {"HL7 v2 0002 Marital Status", THO "v2-0002", "", "", "", false},
    {"HL7 v2 0003 Event Type", THO "v2-0003", "", "", "", false},
    {"HL7 v2 0004 Patient Class", THO "v2-0004", "", "", "", false},
    {"HL7 v2 0063 Relationship", THO "v2-0063", "", "", "", false},
    {"HL7 v2 0078 Abnormal Flags", THO "v2-0078", "", "", "", false},
    {"HL7 v2 0038 Order Status", THO "v2-0038", "", "", "", false},
    {"HL7 v2 0085 Observation Result Status", THO "v2-0085", "", "", "", false},
    {"HL7 v2 0119 Order Control", THO "v2-0119", "", "", "", false},
    {"HL7 v2 0127 Allergen Type", THO "v2-0127", "", "", "", false},
    {"HL7 v2 0128 Allergy Severity", THO "v2-0128", "", "", "", false},
    {"HL7 v2 0162 Route", THO "v2-0162", "", "", "", false},
    {"HL7 v2 0190 Address Type", THO "v2-0190", "", "", "", false},
    {"HL7 v2 0200 Name Type", THO "v2-0200", "", "", "", false},
    {"HL7 v2 0201 Telecommunication Use", THO "v2-0201", "", "", "", false},
    {"HL7 v2 0202 Telecommunication Equipment Type", THO "v2-0202", "", "", "", false},
    {"HL7 v2 0203 Identifier Type", THO "v2-0203", "", "", "", false},
    {"HL7 v2 0287 Problem Action", THO "v2-0287", "", "", "", false},
    {"HL7 v2 0322 Completion Status", THO "v2-0322", "", "", "", false},
    {"HL7 v2 0323 Action Code", THO "v2-0323", "", "", "", false},
    {"HL7 v2 0436 Sensitivity", THO "v2-0436", "", "", "", false},
    {"HL7 v2 0465 Name Representation", THO "v2-0465", "", "", "", false},
    // --- identifier namespaces (Identifier.system)
    // --------------------------------------------------
    // 10-digit 医療機関コード: trust the profile URL (§3 item 2); ePrescriptionData spells
    // /Common/.
    {"医療機関コード 10桁", "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no",
     "", "",
     "http://jpfhir.jp/fhir/Common/IdSystem/insurance-medical-institution-no "
     "http://jpfhir.jp/fhir/core/CodeSystem/medicalInstitutionCode",
     true},
    {"医療機関コード 7桁", MHLW_ID "MedicalOrganizationID", "1.2.392.100495.20.3.23", "", "", true},
    {"医籍登録番号", MHLW_ID "medicalRegistrationNumber", "1.2.392.100495.20.3.31", "", "", true},
    {"保険者番号", MHLW_ID "InsurerNumber", "1.2.392.100495.20.3.61", "", "IDSYS-INSURERNUMBER",
     true},
    {"被保険者証記号", MHLW_ID "InsuredPersonSymbol", "1.2.392.100495.20.3.62", "", "", true},
    {"被保険者証番号", MHLW_ID "InsuredPersonNumber", "1.2.392.100495.20.3.63", "", "", true},
    {"被保険者証枝番", MHLW_ID "InsuredPersonSubnumber", "", "", "", true},
    {"公費負担者番号", MHLW_ID "PublicPayerNumber", "1.2.392.100495.20.3.71", "", "", true},
    {"公費受給者番号", MHLW_ID "PublicInsuredPersonNumber", "1.2.392.100495.20.3.72", "", "", true},
    {"RP番号", MHLW_ID "Medication-RPGroupNumber", "1.2.392.100495.20.3.81", "", "IDSYS-RPNUMBER",
     true},
    {"RP内連番", MHLW_ID "MedicationAdministrationIndex", "1.2.392.100495.20.3.82", "",
     "IDSYS-ORDERINRP", true},
    {"処方箋ID", "", "1.2.392.100495.20.3.11", "", "", true},
    {"調剤結果ID", "", "1.2.392.100495.20.3.12", "", "", true},
    {"薬剤師名簿登録番号", "", "1.2.392.100495.20.3.33", "", "", true},
    {"リソース一意識別子", "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier", "",
     "", "http://jpfhir.jp/fhir/Common/IdSystem/resourceInstance-identifier IDSYS-RESOURCEINSTANCE",
     true},
    {"被保険者個人識別子", "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID", "", "", "",
     true},
    {"生活保護受給者識別子", "http://jpfhir.jp/fhir/clins/Idsystem/JP_PublicPayer_memberID", "", "",
     "", true},
    {"被保険者証 CSV版", "http://jpfhir.jp/fhir/core/IdSystem/JP_Coverage_id", "", "", "", true},
};

#undef CORE
#undef MHLW
#undef MHLW_ID
#undef MEDIS
#undef CLINS
#undef THO

std::string_view Trim(std::string_view s) {
  // ASCII whitespace only; full-width spaces in a system URI are data errors, not padding.
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsDottedOid(std::string_view s) {
  // ITU-T X.660: arcs of digits separated by dots; at least two arcs.
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return false;
  bool dot = false;
  char prev = '.';
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
      dot = true;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
    prev = c;
  }
  return dot && prev != '.';
}

bool IsV2Name(std::string_view s) {
  return s.find(':') == std::string_view::npos && !IsDottedOid(s);
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string_view ToString(ProfileSet profile) noexcept {
  switch (profile) {
    case ProfileSet::kJpCore112: return "jp-core-1.1.2";
    case ProfileSet::kJpCore120: return "jp-core-1.2.0";
    case ProfileSet::kJpClins: return "jp-clins";
    case ProfileSet::kCda: return "cda";
  }
  return "jp-core-1.2.0";
}

std::optional<ProfileSet> ProfileSetFromString(std::string_view name) noexcept {
  if (name == "jp-core-1.1.2" || name == "1.1.2") return ProfileSet::kJpCore112;
  if (name == "jp-core-1.2.0" || name == "1.2.0") return ProfileSet::kJpCore120;
  if (name == "jp-clins") return ProfileSet::kJpClins;
  if (name == "cda") return ProfileSet::kCda;
  return std::nullopt;
}

std::string_view RehomeByCodeShape(std::string_view canonical, std::string_view code) {
  auto all = [](std::string_view s, auto pred) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
      return pred(static_cast<unsigned char>(c)) != 0;
    });
  };
  auto digits = [&](std::string_view s) {
    return all(s, [](unsigned char c) { return std::isdigit(c); });
  };
  if (canonical == "http://medis.or.jp/CodeSystem/master-HOT9") {
    if (code.size() == 12 && digits(code.substr(0, 7)) &&
        std::isupper(static_cast<unsigned char>(code[7]))) {
      return code.substr(9) == "ZZZ"
                 ? "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationGeneralOrderCode"
                 : "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
    }
    if (code.size() == 7 && digits(code)) return "http://medis.or.jp/CodeSystem/master-HOT7";
    if (code.size() == 13 && digits(code)) return "http://medis.or.jp/CodeSystem/master-HOT13";
    // レセ電 医薬品コード: 9 digits starting with 6 — but HOT9 codes are 9 digits too, and start
    // with 1-5 in practice [2nd]; only a leading 6 is re-homed.
    if (code.size() == 9 && digits(code) && code[0] == '6') return "urn:oid:1.2.392.100495.20.1.71";
    return canonical;
  }
  if (canonical == "http://medis.or.jp/CodeSystem/master-disease-keyNumber" && code.size() == 4) {
    return "http://medis.or.jp/CodeSystem/master-disease-exCode";
  }
  if (canonical == "http://jami.jp/CodeSystem/MedicationUsage") {
    if (code.size() == 3) return "http://jami.jp/CodeSystem/MedicationBodySiteExternal";
    if (code.size() == 8) return "http://jami.jp/CodeSystem/MedicationUsageAdditional";
  }
  return canonical;
}

std::string Hl7v2TableUrl(std::string_view table_number) {
  return "http://terminology.hl7.org/CodeSystem/v2-" + std::string(table_number);
}

CodeSystemRegistry::CodeSystemRegistry(const CodeSystemRegistry& other) {
  Rebuild(other);
}

CodeSystemRegistry& CodeSystemRegistry::operator=(const CodeSystemRegistry& other) {
  if (this != &other) Rebuild(other);
  return *this;
}

void CodeSystemRegistry::Rebuild(const CodeSystemRegistry& other) {
  // Copy systems, then re-point both indexes at the copies (same order, so index i -> i).
  systems_.clear();
  by_spelling_.clear();
  by_v2_name_.clear();
  std::unordered_map<const CodeSystemInfo*, const CodeSystemInfo*> moved;
  for (const auto& s : other.systems_) {
    systems_.push_back(std::make_unique<CodeSystemInfo>(*s));
    moved[s.get()] = systems_.back().get();
  }
  for (const auto& [k, v] : other.by_spelling_) by_spelling_.emplace(k, moved[v]);
  for (const auto& [k, v] : other.by_v2_name_) by_v2_name_.emplace(k, moved[v]);
}

const CodeSystemRegistry& CodeSystemRegistry::Builtin() {
  static const CodeSystemRegistry registry = [] {
    CodeSystemRegistry r;
    for (const Row& row : kRows) {
      CodeSystemInfo info;
      info.title = row.title;
      info.url = row.url;
      info.oid = row.oid;
      info.cda_oid = row.cda_oid;
      info.identifier = row.identifier;
      info.canonical = !info.url.empty() ? info.url : "urn:oid:" + info.oid;
      std::string canonical = info.canonical;
      auto added = r.AddSystem(std::move(info));
      KAKEHASHI_ASSERT(added.has_value());  // duplicate row in kRows is a bug
      std::string_view aliases = row.aliases;
      while (!aliases.empty()) {
        auto space = aliases.find(' ');
        std::string_view alias = aliases.substr(0, space);
        aliases = space == std::string_view::npos ? std::string_view() : aliases.substr(space + 1);
        if (alias.empty()) continue;
        auto ok = r.AddAlias(alias, canonical);
        KAKEHASHI_ASSERT(ok.has_value());
      }
    }
    return r;
  }();
  return registry;
}

Result<void> CodeSystemRegistry::AddSystem(CodeSystemInfo info) {
  if (info.canonical.empty()) {
    info.canonical = !info.url.empty() ? info.url : "urn:oid:" + info.oid;
  }
  if (by_spelling_.count(info.canonical) != 0) return errc::kTableSyntax;
  systems_.push_back(std::make_unique<CodeSystemInfo>(std::move(info)));
  const CodeSystemInfo* p = systems_.back().get();
  by_spelling_.emplace(p->canonical, p);
  if (!p->url.empty()) by_spelling_.emplace(p->url, p);
  if (!p->oid.empty()) by_spelling_.emplace("urn:oid:" + p->oid, p);
  if (!p->cda_oid.empty()) by_spelling_.emplace("urn:oid:" + p->cda_oid, p);
  return {};
}

Result<void> CodeSystemRegistry::AddAlias(std::string_view spelling, std::string_view canonical) {
  auto it = by_spelling_.find(canonical);
  if (it == by_spelling_.end()) return errc::kUnknownSystem;
  const CodeSystemInfo* target = it->second;
  spelling = Trim(spelling);
  if (IsDottedOid(spelling)) {
    std::string key = "urn:oid:" + std::string(spelling);
    auto [pos, inserted] = by_spelling_.emplace(key, target);
    if (!inserted && pos->second != target) return errc::kTableSyntax;
    return {};
  }
  if (IsV2Name(spelling)) {
    auto [pos, inserted] = by_v2_name_.emplace(Upper(spelling), target);
    if (!inserted && pos->second != target) return errc::kTableSyntax;
    return {};
  }
  auto [pos, inserted] = by_spelling_.emplace(std::string(spelling), target);
  if (!inserted && pos->second != target) return errc::kTableSyntax;
  return {};
}

const CodeSystemInfo* CodeSystemRegistry::Find(std::string_view spelling) const {
  // Hot path first: an exact URL / urn:oid spelling, then an exact (already upper-case) v2 name.
  if (auto it = by_spelling_.find(spelling); it != by_spelling_.end()) return it->second;
  if (auto it = by_v2_name_.find(spelling); it != by_v2_name_.end()) return it->second;
  std::string_view trimmed = Trim(spelling);
  if (trimmed.size() != spelling.size()) {
    if (auto it = by_spelling_.find(trimmed); it != by_spelling_.end()) return it->second;
  }
  if (IsDottedOid(trimmed)) {
    auto it = by_spelling_.find("urn:oid:" + std::string(trimmed));
    return it == by_spelling_.end() ? nullptr : it->second;
  }
  if (IsV2Name(trimmed) && !trimmed.empty()) {
    auto it = by_v2_name_.find(Upper(trimmed));
    return it == by_v2_name_.end() ? nullptr : it->second;
  }
  return nullptr;
}

NormalizedSystem CodeSystemRegistry::Normalize(std::string_view spelling, IssueSink* issues,
                                               const Location& where) const {
  NormalizedSystem out;
  std::string_view s = Trim(spelling);
  if (s.empty()) {
    out.match = SystemMatch::kEmpty;
    return out;
  }
  if (const CodeSystemInfo* info = Find(s)) {
    out.canonical = info->canonical;
    out.info = info;
    out.match = SystemMatch::kKnown;
    return out;
  }
  if (IsV2Name(s)) {
    std::string name = Upper(s);
    // "HL7nnnn" (ssmix2-hl7v2.md §9): the HL7 v2 table's THO URL.
    if (name.size() == 7 && name.compare(0, 3, "HL7") == 0 &&
        std::all_of(name.begin() + 3, name.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      out.canonical = Hl7v2TableUrl(name.substr(3));
      out.info = Find(out.canonical);
      out.match = out.info != nullptr ? SystemMatch::kKnown : SystemMatch::kHl7v2Table;
      return out;
    }
    // "99xxx": local coding system (HL7 v2 user-defined range).
    if (name.size() > 2 && name.compare(0, 2, "99") == 0) {
      out.canonical = std::string(kLocalSystemPrefix) + name;
      out.match = SystemMatch::kLocal;
      return out;
    }
  }
  out.canonical = IsDottedOid(s) ? "urn:oid:" + std::string(s) : std::string(s);
  out.match = SystemMatch::kUnknown;
  if (issues != nullptr) {
    issues->Warning("terminology.unknown_system", where,
                    "code system not in kakehashi's alias table; passed through unchanged (add it "
                    "with a site alias if it is a known system)");
  }
  return out;
}

std::string CodeSystemRegistry::Spell(std::string_view system, ProfileSet target) const {
  const CodeSystemInfo* info = Find(system);
  if (info == nullptr) return Normalize(system).canonical;
  switch (target) {
    case ProfileSet::kJpCore120:
    case ProfileSet::kJpClins:
      if (!info->url.empty()) return info->url;
      return "urn:oid:" + info->oid;
    case ProfileSet::kJpCore112:
      if (!info->oid.empty()) return "urn:oid:" + info->oid;
      return info->url;
    case ProfileSet::kCda:
      if (!info->cda_oid.empty()) return info->cda_oid;
      if (!info->oid.empty()) return info->oid;
      return info->url;
  }
  return info->canonical;
}

std::vector<std::string> CodeSystemRegistry::SpellingsOf(std::string_view canonical) const {
  const CodeSystemInfo* info = Find(canonical);
  std::vector<std::string> out;
  if (info == nullptr) return out;
  for (const auto& [k, v] : by_spelling_) {
    if (v == info) out.push_back(k);
  }
  for (const auto& [k, v] : by_v2_name_) {
    if (v == info) out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kakehashi::terminology
