#include "extended_document.hpp"

#include "kakehashi/common/base64.hpp"
#include "kakehashi/mapping/ids.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <vector>

namespace kakehashi::mapping {
namespace {

using fhir::Node;

bool ReadFile(const std::filesystem::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char c = s[s.size() - suffix.size() + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = s.find(sep, start);
    out.emplace_back(s.substr(start, at == std::string_view::npos ? s.npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

// The type folder is CWE-like (digest §3: `L-OBSERVATIONS^OBSERVATIONS^99ZL01`,
// `^経過記録(local)^^11506-3^経過記録^LN`): triplets (code, text, system) 1-3 and 4-6. A triplet
// with a code becomes a Coding (LN -> http://loinc.org, a local name ->
// urn:kakehashi:code-system:), the first text the CodeableConcept text (the folder name itself when
// there is none).
Node TypeConcept(std::string_view type_folder) {
  auto parts = Split(type_folder, '^');
  parts.resize(std::max<std::size_t>(parts.size(), 6));
  Node type_concept = Node::Object();
  Node codings = Node::Array();
  std::string text;
  for (std::size_t t = 0; t < 2; ++t) {
    const std::string& code = parts[t * 3];
    const std::string& display = parts[t * 3 + 1];
    const std::string& system = parts[t * 3 + 2];
    if (text.empty()) text = display;
    if (code.empty()) continue;
    Node coding = Node::Object();
    if (system == "LN") {
      coding.Set("system", Node::String("http://loinc.org"));
    } else if (!system.empty()) {
      coding.Set("system", Node::String("urn:kakehashi:code-system:" + system));
    }
    coding.Set("code", Node::String(code));
    if (!display.empty()) coding.Set("display", Node::String(display));
    codings.Push(std::move(coding));
  }
  if (codings.Size() > 0) type_concept.Set("coding", std::move(codings));
  type_concept.Set("text", Node::String(text.empty() ? std::string(type_folder) : text));
  return type_concept;
}

// 発生日時 yyyyMMddHHmmssfff (JST) -> FHIR instant.
std::optional<std::string> StoredAtInstant(std::string_view t) {
  if (t.size() != 17 ||
      !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::string out;
  out.append(t.substr(0, 4)).append("-").append(t.substr(4, 2)).append("-");
  out.append(t.substr(6, 2)).append("T").append(t.substr(8, 2)).append(":");
  out.append(t.substr(10, 2)).append(":").append(t.substr(12, 2)).append(".");
  out.append(t.substr(14, 3)).append("+09:00");
  return out;
}

}  // namespace

std::string PatientSystem(std::string_view facility_code) {
  if (facility_code.empty()) return "urn:kakehashi:local-patient-id";
  return "urn:oid:1.2.392.100495.20.3.51.1" + std::string(facility_code);
}

std::string ContentTypeOf(std::string_view file_name, std::string_view head) {
  if (EndsWith(file_name, ".xml")) return "text/xml";
  if (EndsWith(file_name, ".hl7")) return "x-application/hl7-v2+er7";
  if (EndsWith(file_name, ".pdf") || head.starts_with("%PDF")) return "application/pdf";
  if (EndsWith(file_name, ".jpg") || EndsWith(file_name, ".jpeg")) return "image/jpeg";
  if (EndsWith(file_name, ".png")) return "image/png";
  if (EndsWith(file_name, ".gif")) return "image/gif";
  if (EndsWith(file_name, ".tif") || EndsWith(file_name, ".tiff")) return "image/tiff";
  if (EndsWith(file_name, ".dcm")) return "application/dicom";
  if (EndsWith(file_name, ".txt")) return "text/plain";
  if (EndsWith(file_name, ".html") || EndsWith(file_name, ".htm")) return "text/html";
  if (EndsWith(file_name, ".xsl")) return "application/xslt+xml";
  if (head.starts_with("<?xml")) return "text/xml";
  return "application/octet-stream";
}

std::string ExtendedDocumentId(const adapters::ssmix2::StorageRecord& record,
                               std::string_view patient_system) {
  const auto& n = record.file.name;
  return DeterministicId({"DocumentReference", patient_system, n.patient_id, n.care_date,
                          record.extended_type, n.order_no});
}

std::optional<Node> ExtendedDocument(const adapters::ssmix2::StorageRecord& record,
                                     std::string_view patient_system, std::size_t* unreadable) {
  const auto& n = record.file.name;
  const std::filesystem::path dir = record.file.path.parent_path();
  Node content = Node::Array();
  std::size_t failed = 0;
  std::string bytes;
  for (const auto& file : record.extended_files) {
    if (!ReadFile(dir / file, bytes)) {
      ++failed;
      continue;
    }
    Node attachment = Node::Object();
    attachment.Set("contentType",
                   Node::String(ContentTypeOf(file, std::string_view(bytes).substr(0, 64))));
    attachment.Set("data", Node::String(Base64Encode(bytes)));
    attachment.Set("size", Node::Number(std::to_string(bytes.size())));
    attachment.Set("title", Node::String(file));
    Node item = Node::Object();
    item.Set("attachment", std::move(attachment));
    content.Push(std::move(item));
  }
  if (unreadable != nullptr) *unreadable = failed;
  if (content.Size() == 0) return std::nullopt;

  Node doc = Node::Object();
  doc.Set("resourceType", Node::String("DocumentReference"));
  doc.Set("id", Node::String(ExtendedDocumentId(record, patient_system)));
  // No identifier: the 特定キー is unique only within one patient's storage (it stays in the id).
  doc.Set("status", Node::String("current"));
  doc.Set("type", TypeConcept(record.extended_type));
  Node subject = Node::Object();
  subject.Set(
      "reference",
      Node::String("Patient/" + DeterministicId({"Patient", patient_system, n.patient_id})));
  doc.Set("subject", std::move(subject));
  if (auto date = StoredAtInstant(n.stored_at)) doc.Set("date", Node::String(*date));
  doc.Set("content", std::move(content));
  // 診療日 (YYYYMMDD; "-" for undated data) -> the clinical period the document covers.
  if (n.care_date.size() == 8) {
    Node period = Node::Object();
    period.Set("start", Node::String(n.care_date.substr(0, 4) + "-" + n.care_date.substr(4, 2) +
                                     "-" + n.care_date.substr(6, 2)));
    Node context = Node::Object();
    context.Set("period", std::move(period));
    doc.Set("context", std::move(context));
  }
  return doc;
}

}  // namespace kakehashi::mapping
