// Emits the metadata tables of kakehashi/fhir/r4/meta.hpp as plain static arrays of PODs, split
// into several translation units so that each compiles quickly:
//   r4_meta.cpp             the sorted TypeInfo table and FindType()/AllTypes()
//   r4_meta_elements_N.cpp  ElementInfo arrays (with their TypeRef and string lists)
//   r4_meta_valuesets.cpp   the required value set expansions and FindValueSet()
// Every table is `constinit`: without it g++ 12 silently falls back to dynamic initialisation of
// these large aggregates and then spends minutes optimising the generated initialiser at -O3.
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "model.hpp"

namespace kakehashi::fhir::codegen {
namespace {

constexpr int kElementChunks = 4;

const char* const kKinds[] = {"TypeKind::kPrimitive", "TypeKind::kComplex", "TypeKind::kResource",
                              "TypeKind::kBackbone"};
const char* const kStrengths[] = {"BindingStrength::kNone", "BindingStrength::kExample",
                                  "BindingStrength::kPreferred", "BindingStrength::kExtensible",
                                  "BindingStrength::kRequired"};

std::string ElementsName(std::size_t type_index) {
  return "kElements" + std::to_string(type_index);
}

// Deduplicated string lists and TypeRef lists of one translation unit.
class Pools {
 public:
  std::string StringList(const std::vector<std::string>& items) {
    if (items.empty()) return "{}";
    std::string key;
    for (const auto& s : items) key += s + '\n';
    auto it = strings_.find(key);
    if (it != strings_.end()) return it->second;
    const std::string name = "kS" + std::to_string(strings_.size());
    decls_ << "constexpr std::string_view " << name << "[] = {";
    for (std::size_t i = 0; i < items.size(); ++i) decls_ << (i ? ", " : "") << CppString(items[i]);
    decls_ << "};\n";
    strings_.emplace(key, name);
    return name;
  }

  std::string TypeList(const std::vector<GenTypeRef>& types) {
    if (types.empty()) return "{}";
    std::vector<std::string> profiles;
    std::string key;
    for (const auto& t : types) {
      key += t.code + ':';
      for (const auto& p : t.target_profiles) key += p + ',';
      key += '\n';
    }
    auto it = types_.find(key);
    if (it != types_.end()) return it->second;
    std::vector<std::string> parts;
    for (const auto& t : types) {
      std::string part = "{";  // appended piecewise: g++ 12 -Wrestrict misfires on operator+
      part.append(CppString(t.code)).append(", ").append(StringList(t.target_profiles));
      parts.push_back(part.append("}"));
    }
    const std::string name = "kT" + std::to_string(types_.size());
    decls_ << "constexpr TypeRef " << name << "[] = {";
    for (std::size_t i = 0; i < parts.size(); ++i) decls_ << (i ? ", " : "") << parts[i];
    decls_ << "};\n";
    types_.emplace(key, name);
    return name;
  }

  std::string Declarations() const { return decls_.str(); }

 private:
  std::map<std::string, std::string> strings_;
  std::map<std::string, std::string> types_;
  std::ostringstream decls_;
};

const char* Bool(bool b) {
  return b ? "true" : "false";
}

std::string Header(const Model& model, const char* what) {
  return Banner(model) + "// " + what +
         "\n// clang-format off\n#include \"kakehashi/fhir/r4/meta.hpp\"\n\n#include <span>\n"
         "#include <string_view>\n\nnamespace kakehashi::fhir::r4::generated {\n\n";
}

}  // namespace

std::vector<std::string> EmitMeta(const Model& model, const std::string& out_dir) {
  std::vector<std::string> written;
  std::vector<const GenType*> types;
  std::size_t total_elements = 0;
  for (const auto& [name, type] : model.types) {
    types.push_back(&type);
    total_elements += type.elements.size();
  }

  // Element chunks, balanced by element count.
  const std::size_t per_chunk = total_elements / kElementChunks + 1;
  std::size_t index = 0;
  for (int chunk = 0; chunk < kElementChunks; ++chunk) {
    Pools pools;
    std::ostringstream body;
    std::size_t in_chunk = 0;
    for (; index < types.size() && (in_chunk < per_chunk || chunk == kElementChunks - 1); ++index) {
      const GenType& t = *types[index];
      if (t.elements.empty()) continue;
      in_chunk += t.elements.size();
      body << "// " << t.name << "\nextern constinit const ElementInfo " << ElementsName(index)
           << "[" << t.elements.size() << "] = {\n";
      for (const auto& e : t.elements) {
        body << "  {" << CppString(e.name) << ", " << CppString(e.path) << ", " << e.min << "u, "
             << (e.max == 0xFFFFFFFFu ? std::string("kUnbounded") : std::to_string(e.max) + "u")
             << ", " << Bool(e.is_choice) << ", " << Bool(e.is_modifier) << ", "
             << Bool(e.is_summary) << ", " << pools.TypeList(e.types) << ", "
             << CppString(e.element_type) << ", " << kStrengths[e.binding] << ", "
             << CppString(e.value_set) << ", " << pools.StringList(e.constraints) << "},\n";
      }
      body << "};\n\n";
    }
    std::string text = Header(model, "ElementInfo tables (part of r4_meta.cpp).");
    text += "namespace {\n" + pools.Declarations() + "}  // namespace\n\n" + body.str();
    text += "}  // namespace kakehashi::fhir::r4::generated\n";
    const std::string path = out_dir + "/r4_meta_elements_" + std::to_string(chunk) + ".cpp";
    if (WriteFileIfChanged(path, text)) written.push_back(path);
  }

  // Type table.
  {
    std::ostringstream out;
    out << Header(model, "TypeInfo table for every R4 type, sorted by name.");
    for (std::size_t i = 0; i < types.size(); ++i) {
      if (types[i]->elements.empty()) continue;
      out << "extern const ElementInfo " << ElementsName(i) << "[" << types[i]->elements.size()
          << "];\n";
    }
    out << "\nextern constinit const TypeInfo kTypes[" << types.size() << "] = {\n";
    for (std::size_t i = 0; i < types.size(); ++i) {
      const GenType& t = *types[i];
      out << "  {" << CppString(t.name) << ", " << kKinds[t.kind] << ", " << CppString(t.base)
          << ", " << Bool(t.is_abstract) << ", "
          << (t.elements.empty() ? std::string("{}")
                                 : std::string("std::span<const ElementInfo>(")
                                       .append(ElementsName(i))
                                       .append(")"))
          << ", " << CppString(t.regex) << ", " << CppString(t.json_type) << "},\n";
    }
    out << "};\nextern const std::size_t kTypeCount = " << types.size() << ";\n";
    out << "extern const std::string_view kSpecVersion = " << CppString(model.spec_version)
        << ";\nextern const std::string_view kSourcePackage = " << CppString(model.package)
        << ";\n\n}  // namespace kakehashi::fhir::r4::generated\n";
    const std::string path = out_dir + "/r4_meta.cpp";
    if (WriteFileIfChanged(path, out.str())) written.push_back(path);
  }

  // Value sets.
  {
    std::ostringstream decls;
    std::ostringstream table;
    std::size_t n = 0;
    for (const auto& [url, vs] : model.value_sets) {
      std::string codes = "{}";
      if (!vs.codes.empty()) {
        codes = "kCodes" + std::to_string(n);
        decls << "constexpr CodeInfo " << codes << "[] = {\n";
        for (const auto& c : vs.codes) {
          decls << "  {" << CppString(c.system) << ", " << CppString(c.code) << ", "
                << CppString(c.display) << "},\n";
        }
        decls << "};\n";
      }
      table << "  {" << CppString(url) << ", " << Bool(vs.complete) << ", " << codes << "},\n";
      ++n;
    }
    std::ostringstream out;
    out << Header(model,
                  "Expansions of the value sets bound with strength 'required' anywhere in R4.");
    out << "namespace {\n" << decls.str() << "}  // namespace\n\n";
    out << "extern constinit const ValueSetInfo kValueSets[" << n << "] = {\n"
        << table.str() << "};\nextern const std::size_t kValueSetCount = " << n << ";\n\n";
    out << "}  // namespace kakehashi::fhir::r4::generated\n";
    const std::string path = out_dir + "/r4_meta_valuesets.cpp";
    if (WriteFileIfChanged(path, out.str())) written.push_back(path);
  }
  return written;
}

}  // namespace kakehashi::fhir::codegen
