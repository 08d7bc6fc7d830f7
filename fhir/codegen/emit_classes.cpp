// Emits the typed R4 classes: kakehashi/fhir/r4/datatypes.hpp (every complex datatype the typed
// resources reach, Extension.value[x] included) and one header per resource
// (kakehashi/fhir/r4/<snake_case>.hpp), each with one .cpp in fhir/src/generated/.
//
// Shape, chosen for compile speed on small machines: plain classes with public members, special
// members declared in the header and defaulted in the .cpp (so Box<T>/std::vector<T> of
// incomplete types work and users do not instantiate them), no templates in the headers beyond
// Box and std containers. Mapping:
//   primitive 0..1 -> r4::Date (value + id + extensions); 0..* -> std::vector<r4::Date>
//   complex 0..1   -> Box<r4::HumanName>;                 0..* -> std::vector<r4::HumanName>
//   backbone       -> nested struct named by the path's last segment (Patient::Contact)
//   choice x[x]    -> one Box member per allowed type: value_quantity, value_string, …
//   Resource       -> fhir::Node (contained, Bundle.entry.resource: any resource type)
#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "model.hpp"

namespace kakehashi::fhir::codegen {
namespace {

// The resources kakehashi produces or serves first (issue #3); extend as mapping needs more.
const char* const kTypedResources[] = {
    "Patient",
    "Coverage",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "Medication",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "MedicationStatement",
    "Immunization",
    "Observation",
    "DiagnosticReport",
    "Specimen",
    "ServiceRequest",
    "Procedure",
    "DocumentReference",
    "Composition",
    "Bundle",
    "OperationOutcome",
    "CapabilityStatement",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
    "Provenance",
    "AuditEvent",
    "Consent",
    "Parameters",
    "Binary",
};

const std::map<std::string, std::string>& PrimitiveClasses() {
  static const std::map<std::string, std::string> kMap = {
      {"string", "String"},
      {"code", "Code"},
      {"id", "Id"},
      {"uri", "Uri"},
      {"url", "Url"},
      {"canonical", "Canonical"},
      {"oid", "Oid"},
      {"uuid", "Uuid"},
      {"markdown", "Markdown"},
      {"base64Binary", "Base64Binary"},
      {"date", "Date"},
      {"dateTime", "DateTime"},
      {"instant", "Instant"},
      {"time", "Time"},
      {"xhtml", "Xhtml"},
      {"boolean", "Boolean"},
      {"integer", "Integer"},
      {"positiveInt", "PositiveInt"},
      {"unsignedInt", "UnsignedInt"},
      {"decimal", "Decimal"},
  };
  return kMap;
}

const std::set<std::string>& CppKeywords() {
  static const std::set<std::string> kWords = {
      "alignas",  "alignof", "and",      "asm",       "auto",      "bool",     "break",
      "case",     "catch",   "char",     "class",     "const",     "continue", "default",
      "delete",   "do",      "double",   "else",      "enum",      "explicit", "export",
      "extern",   "false",   "float",    "for",       "friend",    "goto",     "if",
      "inline",   "int",     "long",     "mutable",   "namespace", "new",      "not",
      "operator", "or",      "private",  "protected", "public",    "register", "requires",
      "return",   "short",   "signed",   "sizeof",    "static",    "struct",   "switch",
      "template", "this",    "throw",    "true",      "try",       "typedef",  "typeid",
      "typename", "union",   "unsigned", "using",     "virtual",   "void",     "volatile",
      "while",    "xor",     "concept",  "module",    "import"};
  return kWords;
}

std::string Snake(const std::string& camel) {
  std::string out;
  for (std::size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (c >= 'A' && c <= 'Z') {
      const bool prev_lower = i > 0 && !(camel[i - 1] >= 'A' && camel[i - 1] <= 'Z');
      const bool next_lower = i + 1 < camel.size() && camel[i + 1] >= 'a' && camel[i + 1] <= 'z';
      if (i > 0 && (prev_lower || next_lower)) out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

std::string MemberName(const std::string& json) {
  std::string name = Snake(json);
  if (CppKeywords().count(name) != 0) name += '_';
  return name;
}

std::string Upper(const std::string& s) {
  if (s.empty()) return s;
  std::string out = s;
  if (out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

std::string LastSegment(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

class ClassEmitter {
 public:
  explicit ClassEmitter(const Model& model) : model_(model) {}

  // Complex datatypes reachable from the typed resources.
  std::vector<std::string> DatatypeClosure() {
    std::set<std::string> seen;
    std::vector<std::string> queue;
    auto visit_type = [&](const std::string& name) {
      for (const auto& e : model_.types.at(name).elements) {
        for (const auto& t : e.types) {
          auto it = model_.types.find(t.code);
          if (it == model_.types.end() || it->second.kind != 1 || it->second.is_abstract) continue;
          if (t.code == "Element" || t.code == "BackboneElement") continue;
          if (seen.insert(t.code).second) queue.push_back(t.code);
        }
      }
    };
    std::function<void(const std::string&)> visit_tree = [&](const std::string& name) {
      visit_type(name);
      for (const auto& e : model_.types.at(name).elements) {
        if (!e.element_type.empty() && e.element_type.rfind(name + ".", 0) == 0 &&
            e.element_type == e.path)
          visit_tree(e.element_type);
      }
    };
    for (const char* r : kTypedResources) visit_tree(r);
    seen.insert("Extension");
    if (std::find(queue.begin(), queue.end(), "Extension") == queue.end())
      queue.push_back("Extension");
    for (std::size_t i = 0; i < queue.size(); ++i) visit_tree(queue[i]);
    std::vector<std::string> out(seen.begin(), seen.end());
    return out;
  }

  // C++ type of one (non-choice) type code or backbone path, without container.
  std::string CppType(const std::string& code) const {
    auto p = PrimitiveClasses().find(code);
    if (p != PrimitiveClasses().end()) return "r4::" + p->second;
    if (IsResource(code)) return "Node";
    auto b = backbone_names_.find(code);
    if (b != backbone_names_.end()) return b->second;
    return "r4::" + code;
  }

  // Resource-typed elements (contained, Bundle.entry.resource, Bundle.entry.response.outcome)
  // hold any resource as a generic Node.
  bool IsResource(const std::string& code) const {
    auto it = model_.types.find(code);
    return it != model_.types.end() && it->second.kind == 2;
  }

  bool IsPrimitive(const std::string& code) const { return PrimitiveClasses().count(code) != 0; }

  struct Member {
    std::string cpp_type;  // with container
    std::string name;
    std::string json;
    std::string comment;
  };

  std::vector<Member> MembersOf(const GenType& type, bool plain_id) const {
    std::vector<Member> members;
    for (const auto& e : type.elements) {
      const bool array = e.max > 1;
      const std::string card =
          std::to_string(e.min) + ".." + (e.max == 0xFFFFFFFFu ? "*" : std::to_string(e.max));
      if (e.is_choice) {
        for (const auto& t : e.types) {
          members.push_back({"Box<" + CppType(t.code) + ">", MemberName(e.name + Upper(t.code)),
                             e.name + Upper(t.code), e.path + " " + card + " (choice)"});
        }
        continue;
      }
      std::string code =
          e.element_type.empty() ? (e.types.empty() ? "" : e.types[0].code) : e.element_type;
      if (code.empty()) continue;
      std::string cpp;
      if (plain_id &&
          ((e.name == "id" && type.kind != 2) || (type.name == "Extension" && e.name == "url"))) {
        cpp = "std::string";  // JSON attributes without "_x" (Element.id, Extension.url)
      } else if (IsResource(code)) {
        cpp = array ? "std::vector<Node>" : "Node";
      } else if (IsPrimitive(code)) {
        cpp = array ? "std::vector<" + CppType(code) + ">" : CppType(code);
      } else {
        cpp = array ? "std::vector<" + CppType(code) + ">" : "Box<" + CppType(code) + ">";
      }
      members.push_back({cpp, MemberName(e.name), e.name, e.path + " " + card});
    }
    return members;
  }

  // Registers C++ names for the backbone types under `type_name` ("Patient.contact" ->
  // "Patient::Contact").
  void NameBackbones(const std::string& type_name, const std::string& cpp_name) {
    for (const auto& e : model_.types.at(type_name).elements) {
      if (e.element_type.empty() || e.element_type != e.path) continue;
      std::string nested = Upper(LastSegment(e.path));
      if (nested == LastSegment(cpp_name)) nested += "Component";
      const std::string full = cpp_name + "::" + nested;
      backbone_names_[e.path] = full;
      NameBackbones(e.path, full);
    }
  }

  // Declaration of a class (or nested struct) and the out-of-line definitions for the .cpp.
  void EmitClass(const std::string& type_name, const std::string& cpp_name, bool is_resource,
                 int indent, std::ostringstream& h, std::ostringstream& cpp) {
    const GenType& type = model_.types.at(type_name);
    const std::string pad(static_cast<std::size_t>(indent), ' ');
    const std::string local = LastSegment(
        cpp_name.substr(cpp_name.rfind("::") == std::string::npos ? 0 : cpp_name.rfind("::") + 2));
    h << pad << "// " << type_name << "\n";
    h << pad << "class " << local << " {\n" << pad << " public:\n";
    // Nested backbone types: forward declarations, then definitions.
    std::vector<std::string> nested;
    for (const auto& e : type.elements) {
      if (!e.element_type.empty() && e.element_type == e.path) nested.push_back(e.path);
    }
    for (const auto& n : nested) {
      const std::string& full = backbone_names_.at(n);
      h << pad << "  class " << full.substr(full.rfind("::") + 2) << ";\n";
    }
    for (const auto& n : nested) EmitClass(n, backbone_names_.at(n), false, indent + 2, h, cpp);
    h << pad << "  " << local << "();\n";
    h << pad << "  ~" << local << "();\n";
    h << pad << "  " << local << "(const " << local << "&);\n";
    h << pad << "  " << local << "(" << local << "&&) noexcept;\n";
    h << pad << "  " << local << "& operator=(const " << local << "&);\n";
    h << pad << "  " << local << "& operator=(" << local << "&&) noexcept;\n\n";
    if (is_resource) {
      h << pad << "  static constexpr std::string_view kResourceType = \"" << type_name << "\";\n";
      h << pad << "  // Checks `node` (fhir::CheckResource) and reads it. errc::kNotResource\n"
        << pad << "  // for another resourceType, errc::kInvalid when issues were reported.\n";
      h << pad << "  static Result<" << local
        << "> FromNode(const Node& node, IssueSink& issues);\n";
    }
    h << pad << "  // Generic form (canonical member order). Empty values are omitted.\n";
    h << pad << "  Node ToNode() const;\n";
    h << pad
      << "  // Reads the members of an already checked object; unknown members are ignored.\n";
    h << pad << "  void Read(const Node& node);\n\n";
    const auto members = MembersOf(type, true);
    for (const auto& m : members) {
      h << pad << "  " << m.cpp_type << " " << m.name << ";  // " << m.comment << "\n";
    }
    h << pad << "};\n";

    // Definitions.
    cpp << "// " << type_name << "\n";
    cpp << cpp_name << "::" << local << "() = default;\n";
    cpp << cpp_name << "::~" << local << "() = default;\n";
    cpp << cpp_name << "::" << local << "(const " << local << "&) = default;\n";
    cpp << cpp_name << "::" << local << "(" << local << "&&) noexcept = default;\n";
    cpp << cpp_name << "& " << cpp_name << "::operator=(const " << local << "&) = default;\n";
    cpp << cpp_name << "& " << cpp_name << "::operator=(" << local << "&&) noexcept = default;\n";
    if (is_resource) {
      cpp << "Result<" << cpp_name << "> " << cpp_name
          << "::FromNode(const Node& node, IssueSink& issues) {\n"
          << "  if (auto ec = io::CheckForRead(node, kResourceType, issues)) return ec;\n"
          << "  " << cpp_name << " out;\n  out.Read(node);\n  return out;\n}\n";
    }
    cpp << "Node " << cpp_name << "::ToNode() const {\n  Node n = Node::Object();\n";
    if (is_resource) cpp << "  n.Set(\"resourceType\", Node::String(\"" << type_name << "\"));\n";
    for (const auto& m : members) cpp << "  io::Put(n, \"" << m.json << "\", " << m.name << ");\n";
    cpp << "  return n;\n}\n";
    cpp << "void " << cpp_name << "::Read(const Node& node) {\n";
    for (const auto& m : members)
      cpp << "  io::Get(node, \"" << m.json << "\", " << m.name << ");\n";
    if (members.empty()) cpp << "  (void)node;\n";
    cpp << "}\n\n";
  }

  std::string HeaderStart(const std::string& what) const {
    return Banner(model_) + "// " + what +
           "\n// clang-format off\n#pragma once\n\n"
           "#include <string>\n#include <string_view>\n#include <vector>\n\n"
           "#include \"kakehashi/common/issue_sink.hpp\"\n"
           "#include \"kakehashi/common/result.hpp\"\n"
           "#include \"kakehashi/fhir/node.hpp\"\n"
           "#include \"kakehashi/fhir/r4/primitive.hpp\"\n";
  }

  std::string SourceStart(const std::string& header) const {
    return Banner(model_) + "// clang-format off\n#include \"kakehashi/fhir/r4/" + header +
           "\"\n\n#include \"typed_io.hpp\"\n\nnamespace kakehashi::fhir::r4 {\n\n";
  }

  std::vector<std::string> Emit(const std::string& include_dir, const std::string& out_dir) {
    std::vector<std::string> written;
    const auto datatypes = DatatypeClosure();
    for (const auto& d : datatypes) NameBackbones(d, d);
    for (const char* r : kTypedResources) NameBackbones(r, r);

    {
      std::ostringstream h;
      std::ostringstream cpp;
      h << HeaderStart("Complex datatypes used by the typed resources (and by Extension.value[x]).")
        << "\nnamespace kakehashi::fhir::r4 {\n\n";
      for (const auto& d : datatypes) h << "class " << d << ";\n";
      h << "\n";
      cpp << SourceStart("datatypes.hpp");
      for (const auto& d : datatypes) {
        std::ostringstream one;
        EmitClass(d, d, false, 0, one, cpp);
        h << one.str() << "\n";
      }
      h << "}  // namespace kakehashi::fhir::r4\n";
      cpp << "}  // namespace kakehashi::fhir::r4\n";
      if (WriteFileIfChanged(include_dir + "/kakehashi/fhir/r4/datatypes.hpp", h.str()))
        written.push_back("datatypes.hpp");
      if (WriteFileIfChanged(out_dir + "/r4_datatypes.cpp", cpp.str()))
        written.push_back("r4_datatypes.cpp");
    }
    for (const char* r : kTypedResources) {
      const std::string snake = Snake(r);
      std::ostringstream h;
      std::ostringstream cpp;
      h << HeaderStart(std::string("The ") + r + " resource (http://hl7.org/fhir/R4/" +
                       [&] {
                         std::string lower = r;
                         for (auto& c : lower) c = static_cast<char>(std::tolower(c));
                         return lower;
                       }() +
                       ".html).")
        << "#include \"kakehashi/fhir/r4/datatypes.hpp\"\n\nnamespace kakehashi::fhir::r4 {\n\n";
      cpp << SourceStart(snake + ".hpp");
      EmitClass(r, r, true, 0, h, cpp);
      h << "\n}  // namespace kakehashi::fhir::r4\n";
      cpp << "}  // namespace kakehashi::fhir::r4\n";
      if (WriteFileIfChanged(include_dir + "/kakehashi/fhir/r4/" + snake + ".hpp", h.str()))
        written.push_back(snake + ".hpp");
      if (WriteFileIfChanged(out_dir + "/r4_" + snake + ".cpp", cpp.str()))
        written.push_back("r4_" + snake + ".cpp");
    }
    return written;
  }

 private:
  const Model& model_;
  std::map<std::string, std::string> backbone_names_;  // path -> C++ qualified name
};

}  // namespace

std::vector<std::string> EmitClasses(const Model& model, const std::string& include_dir,
                                     const std::string& out_dir) {
  ClassEmitter emitter(model);
  return emitter.Emit(include_dir, out_dir);
}

}  // namespace kakehashi::fhir::codegen
