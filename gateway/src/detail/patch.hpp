// The two patch formats of the R4 patch interaction (http.html "patch"): JSON Patch (RFC 6902,
// with JSON Pointer, RFC 6901) and FHIRPath Patch (R4 fhirpatch.html, a Parameters resource) in
// the subset documented at ApplyFhirPathPatch. Both work on the gateway's JSON tree, never
// throw, and leave the document unspecified after a failure (the caller patches a copy).
#pragma once

#include "json.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::gateway::detail {

// Why a patch failed, in the terms of RFC 5789 §2.2 (the status the handler answers).
enum class PatchErrorKind {
  kMalformed,      // 400: not a patch document, unknown operation, bad pointer or path
  kUnsupported,    // 400: a valid FHIRPath Patch outside the supported subset
  kConflict,       // 409: a target the patch assumes is absent, a `test` that fails
  kUnprocessable,  // 422: the result would be too large or too deeply nested
};

struct PatchError {
  PatchErrorKind kind = PatchErrorKind::kMalformed;
  std::size_t operation = 0;  // 0-based index of the failing operation
  std::string message;        // never quotes values from the document (patient data)
};

// Limits on what one patch may do (the request body is bounded by the server's body limit).
inline constexpr std::size_t kMaxPatchOperations = 10'000;
// Nodes plus string bytes a patch may add by copy/move/add/replace in total (copy can double a
// document per operation: "copy from '' to /a" repeated).
inline constexpr std::size_t kMaxPatchGrowth = 64u * 1024u * 1024u;
// The nesting limit of the parser (ParseJson's default): a patched resource never exceeds it.
inline constexpr int kMaxPatchDepth = 64;

// RFC 6902 §4: applies `patch` (an array of operation objects) to `doc` in order; the first
// failing operation stops it.
bool ApplyJsonPatch(Json& doc, const Json& patch, PatchError& error);

// R4 fhirpatch.html over `resource` (a resource of type `type`): `parameters` is a Parameters
// resource whose `operation` parameters carry type/path/name/value/index/source/destination parts.
// Supported paths: the resource type followed by member names, each optionally indexed by a
// non-negative integer ("Patient.name[0].given", "Patient.identifier"); FHIRPath functions,
// `where`, `ofType`, resolve() and operators are 400 (kUnsupported). Values: a `value[x]` part
// (any R4 data type as its JSON form); a value made of `part`s (anonymous BackboneElements) is
// kUnsupported.
bool ApplyFhirPathPatch(Json& resource, const std::string& type, const Json& parameters,
                        PatchError& error);

// RFC 4648 §4 base64 (FHIR base64Binary, a Binary's `data`); whitespace is skipped, padding
// optional; nullopt for any other character.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace kakehashi::gateway::detail
