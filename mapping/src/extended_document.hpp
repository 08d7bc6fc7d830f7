// SS-MIX2 extended storage (digest §3) -> R4 DocumentReference. Private to mapping/.
//
// One content folder (<date>/<type folder>/<content folder>/<files>) is one document: the
// CWE-like type folder gives DocumentReference.type (LOINC document codes where its system is
// `LN`), the content folder name the date (発生日時, the storing time), the care date
// (context.period.start) and the patient (subject, the same id the Patient rule computes), and
// every file of the folder is one content.attachment (base64 data; the main file first). A
// content folder renamed `…_0` is a deletion: the DocumentReference is DELETEd.
#pragma once

#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/fhir/node.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::mapping {

// The deterministic id of the record's DocumentReference: type, patient-ID system, the key
// (患者ID, 診療日, type folder, 特定キー), so an update replaces and a deletion removes it.
std::string ExtendedDocumentId(const adapters::ssmix2::StorageRecord& record,
                               std::string_view patient_system);

// The DocumentReference of an upsert record, or nullopt when none of its files can be read
// (`*unreadable` counts the files that could not be read).
// `patient_system`: PatientSystem() of the configured facility.
// A main file that is CDA R2 (XML with a ClinicalDocument root) also gives masterIdentifier (id),
// a type coding (code), description (title), author and the main attachment's creation
// (effectiveTime); the body stays the attachment. `*cda_unreadable` is set when the main .xml
// file is not well-formed XML (the document is kept without header data).
std::optional<fhir::Node> ExtendedDocument(const adapters::ssmix2::StorageRecord& record,
                                           std::string_view patient_system, std::size_t* unreadable,
                                           bool* cda_unreadable = nullptr);

// The Provenance of an extended-storage document (target the DocumentReference `document_id`,
// recorded = 発生日時, entity = the content folder); nullopt without a valid 発生日時.
std::optional<fhir::Node> ExtendedProvenance(const adapters::ssmix2::StorageRecord& record,
                                             const std::string& document_id);
std::string ExtendedProvenanceId(const adapters::ssmix2::StorageRecord& record);

// urn:oid:1.2.392.100495.20.3.51.1<facility> or the local URN (functions.cpp patient_system).
std::string PatientSystem(std::string_view facility_code);

// Attachment.contentType from a file name and its first bytes: CDA R2 XML -> text/xml (the IHE
// XDS mime type of CDA documents), *.hl7 -> x-application/hl7-v2+er7, PDF, images, text.
std::string ContentTypeOf(std::string_view file_name, std::string_view head);

}  // namespace kakehashi::mapping
