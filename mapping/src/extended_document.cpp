#include "extended_document.hpp"

#include "kakehashi/common/base64.hpp"
#include "kakehashi/mapping/ids.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <cctype>
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

// --- CDA R2 header (HL7 CDA R2 §4.2.1 ClinicalDocument; digest §3 "Main file: CDA R2 XML") ---

// The local name of an element (`cda:title` -> `title`): CDA documents come with the default
// namespace urn:hl7-org:v3 or with a prefix.
std::string_view LocalName(const pugi::xml_node& node) {
  std::string_view name = node.name();
  const std::size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node Child(const pugi::xml_node& parent, std::string_view local) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && LocalName(c) == local) return c;
  }
  return {};
}

bool IsOid(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

// II (root OID + extension) -> FHIR Identifier; nullopt when the root is not an OID.
std::optional<Node> IdentifierOf(const pugi::xml_node& ii) {
  const std::string_view root = ii.attribute("root").value();
  const std::string_view extension = ii.attribute("extension").value();
  if (!IsOid(root)) return std::nullopt;
  Node id = Node::Object();
  if (extension.empty()) {
    // A bare OID identifies the document itself (CDA II without extension).
    id.Set("system", Node::String("urn:ietf:rfc:3986"));
    id.Set("value", Node::String("urn:oid:" + std::string(root)));
  } else {
    id.Set("system", Node::String("urn:oid:" + std::string(root)));
    id.Set("value", Node::String(std::string(extension)));
  }
  return id;
}

// CDA TS `YYYYMMDD[HHMM[SS[.fff]]][+ZZZZ]` -> FHIR dateTime; a time without a zone is JST
// (+09:00, as for HL7 v2 timestamps, docs/mapping.md "Dates").
std::optional<std::string> CdaTimeToFhir(std::string_view ts) {
  std::size_t digits = 0;
  while (digits < ts.size() && ts[digits] >= '0' && ts[digits] <= '9') ++digits;
  std::string_view zone;
  std::size_t rest = digits;
  if (rest < ts.size() && ts[rest] == '.') {  // fractions of a second: dropped
    ++rest;
    while (rest < ts.size() && ts[rest] >= '0' && ts[rest] <= '9') ++rest;
  }
  if (rest < ts.size()) zone = ts.substr(rest);
  if (!zone.empty() && (zone.size() != 5 || (zone[0] != '+' && zone[0] != '-'))) {
    return std::nullopt;
  }
  if (digits != 4 && digits != 6 && digits != 8 && digits != 12 && digits != 14) {
    return std::nullopt;
  }
  std::string out(ts.substr(0, 4));
  if (digits >= 6) out.append("-").append(ts.substr(4, 2));
  if (digits >= 8) out.append("-").append(ts.substr(6, 2));
  if (digits < 12) return out;
  out.append("T").append(ts.substr(8, 2)).append(":").append(ts.substr(10, 2)).append(":");
  out.append(digits == 14 ? ts.substr(12, 2) : "00");
  if (zone.empty()) {
    out.append("+09:00");
  } else {
    out.append(zone.substr(0, 3)).append(":").append(zone.substr(3, 2));
  }
  return out;
}

// PN: family + one half-width space + given (JP_HumanName text convention, terminology §1), or
// the element's text when it has no parts.
std::string PersonName(const pugi::xml_node& name) {
  std::string family = Child(name, "family").child_value();
  std::string given = Child(name, "given").child_value();
  if (family.empty() && given.empty()) return name.text().get();
  if (family.empty() || given.empty()) return family + given;
  return family + " " + given;
}

// Reads the CDA header into `doc` (DocumentReference) and the main attachment: id ->
// masterIdentifier, code -> one more type coding (LOINC 2.16.840.1.113883.6.1 ->
// http://loinc.org), title -> description, effectiveTime -> attachment.creation, author ->
// author (display = assignedPerson name, identifier = assignedAuthor id). Returns false when
// `bytes` is not well-formed XML; true with nothing read when its root is not ClinicalDocument.
bool ReadCdaHeader(const std::string& bytes, Node& doc, Node& main_attachment) {
  pugi::xml_document xml;
  if (!xml.load_buffer(bytes.data(), bytes.size(), pugi::parse_default, pugi::encoding_auto)) {
    return false;
  }
  const pugi::xml_node cda = xml.document_element();
  if (LocalName(cda) != "ClinicalDocument") return true;
  if (auto id = IdentifierOf(Child(cda, "id"))) doc.Set("masterIdentifier", std::move(*id));
  const pugi::xml_node code = Child(cda, "code");
  const std::string_view code_value = code.attribute("code").value();
  const std::string_view code_system = code.attribute("codeSystem").value();
  if (!code_value.empty() && IsOid(code_system)) {
    const std::string system = code_system == "2.16.840.1.113883.6.1"
                                   ? std::string("http://loinc.org")
                                   : "urn:oid:" + std::string(code_system);
    Node* type = doc.Find("type");
    Node* codings = type != nullptr ? type->Find("coding") : nullptr;
    bool present = false;
    if (codings != nullptr) {
      for (const auto& c : codings->Items()) {
        const Node* s = c.Find("system");
        const Node* v = c.Find("code");
        present = present ||
                  (s != nullptr && v != nullptr && s->Text() == system && v->Text() == code_value);
      }
    }
    if (!present && type != nullptr) {
      Node coding = Node::Object();
      coding.Set("system", Node::String(system));
      coding.Set("code", Node::String(std::string(code_value)));
      const std::string_view display = code.attribute("displayName").value();
      if (!display.empty()) coding.Set("display", Node::String(std::string(display)));
      if (codings == nullptr) {
        Node list = Node::Array();
        list.Push(std::move(coding));
        type->Set("coding", std::move(list));
      } else {
        codings->Push(std::move(coding));
      }
    }
  }
  const std::string title = Child(cda, "title").child_value();
  if (!title.empty()) doc.Set("description", Node::String(title));
  if (auto created = CdaTimeToFhir(Child(cda, "effectiveTime").attribute("value").value())) {
    main_attachment.Set("creation", Node::String(*created));
  }
  Node authors = Node::Array();
  for (pugi::xml_node a = cda.first_child(); a; a = a.next_sibling()) {
    if (a.type() != pugi::node_element || LocalName(a) != "author") continue;
    const pugi::xml_node assigned = Child(a, "assignedAuthor");
    Node ref = Node::Object();
    if (auto id = IdentifierOf(Child(assigned, "id"))) ref.Set("identifier", std::move(*id));
    std::string display = PersonName(Child(Child(assigned, "assignedPerson"), "name"));
    if (display.empty()) {
      display = Child(Child(assigned, "representedOrganization"), "name").child_value();
    }
    if (!display.empty()) ref.Set("display", Node::String(display));
    if (ref.Size() > 0) authors.Push(std::move(ref));
  }
  if (authors.Size() > 0) doc.Set("author", std::move(authors));
  return true;
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
                                     std::string_view patient_system, std::size_t* unreadable,
                                     bool* cda_unreadable) {
  const auto& n = record.file.name;
  const std::filesystem::path dir = record.file.path.parent_path();
  Node content = Node::Array();
  std::size_t failed = 0;
  std::string bytes;
  std::string main_xml;  // the main file when it is XML (CDA header read below)
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
    if (file == record.extended_files.front() && EndsWith(file, ".xml")) {
      main_xml = bytes;
    }
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
  if (!main_xml.empty()) {
    Node* items = doc.Find("content");
    Node* main_attachment =
        items != nullptr && items->Size() > 0 ? items->Child(0).Find("attachment") : nullptr;
    if (main_attachment != nullptr && !ReadCdaHeader(main_xml, doc, *main_attachment) &&
        cda_unreadable != nullptr) {
      *cda_unreadable = true;
    }
  }
  return doc;
}

// Provenance of an extended-storage document, like the one every mapped message gets
// (resource/Provenance.json): target the DocumentReference, recorded = 発生日時 (the storing time),
// agent kakehashi (assembler), entity = the content folder (root-relative path).
std::optional<Node> ExtendedProvenance(const adapters::ssmix2::StorageRecord& record,
                                       const std::string& document_id) {
  auto recorded = StoredAtInstant(record.file.name.stored_at);
  if (!recorded) return std::nullopt;  // Provenance.recorded is 1..1
  Node prov = Node::Object();
  prov.Set("resourceType", Node::String("Provenance"));
  prov.Set("id", Node::String(ExtendedProvenanceId(record)));
  Node target = Node::Object();
  target.Set("reference", Node::String("DocumentReference/" + document_id));
  Node targets = Node::Array();
  targets.Push(std::move(target));
  prov.Set("target", std::move(targets));
  prov.Set("recorded", Node::String(*recorded));
  Node coding = Node::Object();
  coding.Set("system",
             Node::String("http://terminology.hl7.org/CodeSystem/provenance-participant-type"));
  coding.Set("code", Node::String("assembler"));
  Node codings = Node::Array();
  codings.Push(std::move(coding));
  Node type = Node::Object();
  type.Set("coding", std::move(codings));
  Node who = Node::Object();
  who.Set("display", Node::String("kakehashi"));
  Node agent = Node::Object();
  agent.Set("type", std::move(type));
  agent.Set("who", std::move(who));
  Node agents = Node::Array();
  agents.Push(std::move(agent));
  prov.Set("agent", std::move(agents));
  Node identifier = Node::Object();
  identifier.Set("system", Node::String("urn:kakehashi:ssmix2:extended-content-folder"));
  identifier.Set("value", Node::String(record.file.relative));
  Node what = Node::Object();
  what.Set("identifier", std::move(identifier));
  what.Set("display", Node::String(record.file.relative));
  Node entity = Node::Object();
  entity.Set("role", Node::String("source"));
  entity.Set("what", std::move(what));
  Node entities = Node::Array();
  entities.Push(std::move(entity));
  prov.Set("entity", std::move(entities));
  return prov;
}

std::string ExtendedProvenanceId(const adapters::ssmix2::StorageRecord& record) {
  return DeterministicId({"Provenance", "ssmix2-extended", record.file.relative});
}

}  // namespace kakehashi::mapping
