// Issues: problems found in *data* (as opposed to operational errors, which are error_codes).
//
// Every problem with input becomes an Issue with a stable code ("hl7v2.pid.bad_date"), a location
// precise enough to find the offending bytes, and a message that says what is wrong and how to fix
// it. Messages and locations never contain field values (no patient data): name the record, the
// segment and the field, never what is in it. Published codes never change meaning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kakehashi {

// Mirrors FHIR issue-severity (http://hl7.org/fhir/issue-severity).
enum class Severity : std::uint8_t {
  kFatal,        // framing or our own code failed: nothing usable came out of this record
  kError,        // the record (or the resource made from it) is invalid
  kWarning,      // suspect but usable
  kInformation,  // worth knowing (e.g. a field no rule read)
};

// "fatal", "error", "warning", "information" (the FHIR codes).
std::string_view ToString(Severity severity) noexcept;
std::optional<Severity> SeverityFromString(std::string_view text) noexcept;

// Where an issue was found. Every member is optional; fill in what is known.
struct Location {
  std::string source;      // file or stream name as given by the operator ("ssmix2:001/234/…")
  std::string record;      // record id inside the source: MSH-10, file name, CSV row "row 12"
  std::string field;       // source path inside the record: "PID-7", "OBX[3]-5.1", "RP 2 / 201"
  std::string fhir_path;   // FHIRPath of the produced element: "Patient.birthDate"
  std::int64_t byte = -1;  // byte offset inside the source, -1 when unknown
  std::int64_t line = -1;  // 1-based line (or segment) number, -1 when unknown

  // Compact one-line rendering: "file.hl7 msg MSG0001 PID-7 (byte 120) -> Patient.birthDate".
  std::string ToString() const;
};

struct Issue {
  Severity severity = Severity::kError;
  std::string_view code;  // stable, dotted, lowercase; must point at static storage
  Location where;
  std::string message;  // what is wrong and how to fix it; never a field value

  // "error hl7v2.pid.bad_date at <location>: <message>"
  std::string ToString() const;
};

}  // namespace kakehashi
