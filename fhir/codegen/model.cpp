// Builds the codegen model from the R4 StructureDefinition snapshots and terminology bundles.
//
// Snapshots already carry inherited elements (Resource.id … DomainResource.text …) re-pathed to
// the type, in specification order, which is what FHIR JSON canonical order follows
// (http://hl7.org/fhir/R4/json.html#ordering is not mandatory, but kakehashi chooses it).
#include "model.hpp"

#include <rapidjson/document.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

namespace kakehashi::fhir::codegen {
namespace {

using rapidjson::Value;

bool ReadJson(const std::string& path, rapidjson::Document& doc) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "kakehashi_fhir_codegen: cannot read " << path << "\n";
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    std::cerr << "kakehashi_fhir_codegen: " << path << " is not a JSON object\n";
    return false;
  }
  return true;
}

std::string Str(const Value& obj, const char* key) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

bool Bool(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

const Value* Member(const Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

const Value* Array(const Value& obj, const char* key) {
  const Value* v = Member(obj, key);
  return v != nullptr && v->IsArray() ? v : nullptr;
}

std::string AfterLast(const std::string& s, char c) {
  const auto pos = s.rfind(c);
  return pos == std::string::npos ? s : s.substr(pos + 1);
}

std::string ExtensionValue(const Value& obj, const std::string& url, const char* value_key) {
  if (const Value* ext = Array(obj, "extension")) {
    for (const auto& e : ext->GetArray()) {
      if (Str(e, "url") == url) return Str(e, value_key);
    }
  }
  return {};
}

// JSON representation of primitives (http://hl7.org/fhir/R4/json.html#primitive): boolean is a
// JSON boolean; integer, decimal, positiveInt and unsignedInt are JSON numbers; all else strings.
std::string JsonTypeOf(const std::string& name) {
  if (name == "boolean") return "boolean";
  if (name == "integer" || name == "decimal" || name == "positiveInt" || name == "unsignedInt")
    return "number";
  return "string";
}

// Type codes of FHIRPath system types (Element.id, Extension.url, primitive values) are spelled
// "http://hl7.org/fhirpath/System.String"; the structuredefinition-fhir-type extension names the
// FHIR type ("string", "id", "uri").
std::string TypeCode(const Value& type) {
  std::string code = Str(type, "code");
  if (code.rfind("http://hl7.org/fhirpath/", 0) == 0) {
    std::string fhir_type = ExtensionValue(
        type, "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type", "valueUrl");
    if (!fhir_type.empty()) return fhir_type;
    return "string";
  }
  return code;
}

int Strength(const std::string& s) {
  if (s == "example") return 1;
  if (s == "preferred") return 2;
  if (s == "extensible") return 3;
  if (s == "required") return 4;
  return 0;
}

std::string StripVersion(const std::string& url) {
  const auto bar = url.find('|');
  return bar == std::string::npos ? url : url.substr(0, bar);
}

struct SnapshotElement {
  const Value* def;
  std::string path;
};

void AddTypesFromSd(const Value& sd, Model& model) {
  const std::string kind = Str(sd, "kind");
  const std::string derivation = Str(sd, "derivation");
  if (derivation == "constraint") return;  // profiles (SimpleQuantity, MoneyQuantity, vitals)
  if (kind == "logical") return;
  const std::string name = Str(sd, "type");
  const Value* snapshot = Member(sd, "snapshot");
  const Value* elems = snapshot ? Array(*snapshot, "element") : nullptr;
  if (name.empty() || elems == nullptr) return;

  std::vector<SnapshotElement> all;
  for (const auto& e : elems->GetArray()) all.push_back({&e, Str(e, "path")});

  // Paths that have children: backbone elements.
  std::set<std::string> parents;
  for (const auto& e : all) {
    const auto dot = e.path.rfind('.');
    if (dot != std::string::npos) parents.insert(e.path.substr(0, dot));
  }

  auto make_type = [&](const std::string& type_name, int type_kind, const std::string& base) {
    GenType t;
    t.name = type_name;
    t.kind = type_kind;
    t.base = base;
    const std::string prefix = type_name + ".";
    for (const auto& se : all) {
      if (se.path.rfind(prefix, 0) != 0) continue;
      const std::string rest = se.path.substr(prefix.size());
      if (rest.find('.') != std::string::npos) continue;
      const Value& d = *se.def;
      if (type_kind == 0 && rest == "value") continue;  // the JSON value itself, not a member
      GenElement el;
      el.path = se.path;
      el.is_choice = rest.size() > 3 && rest.compare(rest.size() - 3, 3, "[x]") == 0;
      el.name = el.is_choice ? rest.substr(0, rest.size() - 3) : rest;
      if (const Value* m = Member(d, "min"); m && m->IsUint()) el.min = m->GetUint();
      const std::string max = Str(d, "max");
      el.max =
          max == "*" ? 0xFFFFFFFFu : static_cast<unsigned>(std::stoul(max.empty() ? "1" : max));
      el.is_modifier = Bool(d, "isModifier");
      el.is_summary = Bool(d, "isSummary");
      if (const Value* types = Array(d, "type")) {
        for (const auto& ty : types->GetArray()) {
          GenTypeRef ref;
          ref.code = TypeCode(ty);
          if (const Value* tp = Array(ty, "targetProfile")) {
            for (const auto& p : tp->GetArray())
              if (p.IsString()) ref.target_profiles.emplace_back(p.GetString());
          }
          el.types.push_back(std::move(ref));
        }
      }
      // Resource.id is documented as type id (http://hl7.org/fhir/R4/resource.html#Resource) but
      // the snapshot spells it System.String with fhir-type "string"; use the documented type.
      if (const Value* b = Member(d, "base");
          b && Str(*b, "path") == "Resource.id" && el.types.size() == 1)
        el.types[0].code = "id";
      const std::string content_ref = Str(d, "contentReference");
      if (!content_ref.empty()) {
        el.element_type = content_ref.substr(content_ref[0] == '#' ? 1 : 0);
        // contentReference elements carry no type; they always reuse a backbone element.
        if (el.types.empty()) el.types.push_back({"BackboneElement", {}});
      } else if (parents.count(se.path) != 0 && !el.is_choice) {
        el.element_type = se.path;
      }
      if (const Value* b = Member(d, "binding"); b && b->IsObject()) {
        el.binding = Strength(Str(*b, "strength"));
        el.value_set = StripVersion(Str(*b, "valueSet"));
      }
      if (const Value* cs = Array(d, "constraint")) {
        for (const auto& c : cs->GetArray()) {
          const std::string key = Str(c, "key");
          if (!key.empty()) el.constraints.push_back(key);
        }
      }
      t.elements.push_back(std::move(el));
    }
    return t;
  };

  const std::string base_url = Str(sd, "baseDefinition");
  const std::string base = base_url.empty() ? "" : AfterLast(base_url, '/');
  int type_kind = kind == "primitive-type" ? 0 : kind == "resource" ? 2 : 1;
  GenType root = make_type(name, type_kind, base);
  root.is_abstract = Bool(sd, "abstract");
  if (type_kind == 0) {
    root.json_type = JsonTypeOf(name);
    for (const auto& se : all) {
      if (se.path == name + ".value") {
        if (const Value* types = Array(*se.def, "type")) {
          for (const auto& ty : types->GetArray()) {
            root.regex =
                ExtensionValue(ty, "http://hl7.org/fhir/StructureDefinition/regex", "valueString");
          }
        }
      }
    }
  }
  model.types[name] = std::move(root);

  // Backbone types, named by path.
  for (const auto& se : all) {
    if (se.path == name || parents.count(se.path) == 0) continue;
    std::string base_type = "BackboneElement";
    if (const Value* types = Array(*se.def, "type"); types && types->Size() > 0)
      base_type = TypeCode((*types)[0]);
    model.types[se.path] = make_type(se.path, 3, base_type);
  }
}

// ---- value sets -----------------------------------------------------------------------------

struct Terminology {
  std::map<std::string, const Value*> code_systems;
  std::map<std::string, const Value*> value_sets;
};

void AddConcepts(const Value& concepts, const std::string& system, std::vector<GenCode>& out) {
  for (const auto& c : concepts.GetArray()) {
    out.push_back({system, Str(c, "code"), Str(c, "display")});
    if (const Value* nested = Array(c, "concept")) AddConcepts(*nested, system, out);
  }
}

const Value* FindConcept(const Value& concepts, const std::string& code) {
  for (const auto& c : concepts.GetArray()) {
    if (Str(c, "code") == code) return &c;
    if (const Value* nested = Array(c, "concept")) {
      if (const Value* found = FindConcept(*nested, code)) return found;
    }
  }
  return nullptr;
}

class Expander {
 public:
  explicit Expander(const Terminology& t) : t_(t) {}

  // Expands a ValueSet per its compose (http://hl7.org/fhir/R4/valueset.html#compositions):
  // enumerated concepts, whole complete code systems, is-a filters over the package's hierarchy,
  // imported value sets and excludes. Anything else makes the expansion incomplete.
  bool Expand(const std::string& url, std::vector<GenCode>& out, int depth = 0) {
    auto it = t_.value_sets.find(url);
    if (it == t_.value_sets.end() || depth > 8) return false;
    const Value& vs = *it->second;
    const Value* compose = Member(vs, "compose");
    if (compose == nullptr || !compose->IsObject()) return FromExpansion(vs, out);
    bool complete = true;
    if (const Value* includes = Array(*compose, "include")) {
      for (const auto& inc : includes->GetArray()) {
        std::vector<GenCode> part;
        if (!Include(inc, part, depth)) complete = false;
        out.insert(out.end(), part.begin(), part.end());
      }
    }
    if (const Value* excludes = Array(*compose, "exclude")) {
      for (const auto& exc : excludes->GetArray()) {
        std::vector<GenCode> part;
        if (!Include(exc, part, depth)) complete = false;
        std::vector<GenCode> kept;
        for (auto& c : out) {
          bool drop = false;
          for (const auto& x : part) drop = drop || (x.system == c.system && x.code == c.code);
          if (!drop) kept.push_back(std::move(c));
        }
        out.swap(kept);
      }
    }
    return complete;
  }

 private:
  bool FromExpansion(const Value& vs, std::vector<GenCode>& out) {
    const Value* expansion = Member(vs, "expansion");
    const Value* contains = expansion ? Array(*expansion, "contains") : nullptr;
    if (contains == nullptr) return false;
    for (const auto& c : contains->GetArray())
      out.push_back({Str(c, "system"), Str(c, "code"), Str(c, "display")});
    return true;
  }

  bool Include(const Value& inc, std::vector<GenCode>& out, int depth) {
    const std::string system = Str(inc, "system");
    const Value* imports = Array(inc, "valueSet");
    if (system.empty()) {
      if (imports == nullptr || imports->Size() != 1) return false;
      return Expand(StripVersion((*imports)[0].GetString()), out, depth + 1);
    }
    if (imports != nullptr) return false;  // intersection with a value set: not computed
    const Value* cs = nullptr;
    if (auto c = t_.code_systems.find(system); c != t_.code_systems.end()) cs = c->second;
    const Value* cs_concepts = cs ? Array(*cs, "concept") : nullptr;
    if (const Value* concepts = Array(inc, "concept")) {
      for (const auto& c : concepts->GetArray()) {
        GenCode code{system, Str(c, "code"), Str(c, "display")};
        if (code.display.empty() && cs_concepts != nullptr) {
          if (const Value* d = FindConcept(*cs_concepts, code.code))
            code.display = Str(*d, "display");
        }
        out.push_back(std::move(code));
      }
      return true;
    }
    if (cs == nullptr || cs_concepts == nullptr) return false;
    const Value* filters = Array(inc, "filter");
    if (filters == nullptr || filters->Size() == 0) {
      if (Str(*cs, "content") != "complete") return false;
      AddConcepts(*cs_concepts, system, out);
      return true;
    }
    // One is-a / descendent-of filter on the concept hierarchy of a complete code system.
    if (filters->Size() != 1 || Str(*cs, "content") != "complete") return false;
    const Value& f = (*filters)[0];
    const std::string op = Str(f, "op");
    if (Str(f, "property") != "concept" || (op != "is-a" && op != "descendent-of")) return false;
    const Value* root = FindConcept(*cs_concepts, Str(f, "value"));
    if (root == nullptr) return false;
    if (op == "is-a") out.push_back({system, Str(*root, "code"), Str(*root, "display")});
    if (const Value* nested = Array(*root, "concept")) AddConcepts(*nested, system, out);
    // Hierarchies expressed with "subsumedBy" properties instead of nesting are not followed.
    return !HasSubsumedBy(*cs_concepts);
  }

  static bool HasSubsumedBy(const Value& concepts) {
    for (const auto& c : concepts.GetArray()) {
      if (const Value* props = Array(c, "property")) {
        for (const auto& p : props->GetArray())
          if (Str(p, "code") == "subsumedBy" || Str(p, "code") == "parent") return true;
      }
      if (const Value* nested = Array(c, "concept"); nested && HasSubsumedBy(*nested)) return true;
    }
    return false;
  }

  const Terminology& t_;
};

}  // namespace

bool LoadModel(const std::string& package_dir, Model& model) {
  rapidjson::Document pkg;
  if (!ReadJson(package_dir + "/package.json", pkg)) return false;
  model.package = Str(pkg, "name") + "@" + Str(pkg, "version");
  const std::string dir = package_dir + "/dist/fhir/r4/";

  std::vector<std::unique_ptr<rapidjson::Document>> docs;
  auto load = [&](const char* file) -> const Value* {
    docs.push_back(std::make_unique<rapidjson::Document>());
    if (!ReadJson(dir + file, *docs.back())) return nullptr;
    return Array(*docs.back(), "entry");
  };
  for (const char* file : {"profiles-types.json", "profiles-resources.json"}) {
    const Value* entries = load(file);
    if (entries == nullptr) return false;
    for (const auto& e : entries->GetArray()) {
      const Value* r = Member(e, "resource");
      if (r == nullptr || Str(*r, "resourceType") != "StructureDefinition") continue;
      if (model.spec_version.empty()) model.spec_version = Str(*r, "fhirVersion");
      AddTypesFromSd(*r, model);
    }
  }

  Terminology terminology;
  for (const char* file : {"valuesets.json", "v3-codesystems.json", "v2-tables.json"}) {
    const Value* entries = load(file);
    if (entries == nullptr) return false;
    for (const auto& e : entries->GetArray()) {
      const Value* r = Member(e, "resource");
      if (r == nullptr) continue;
      const std::string type = Str(*r, "resourceType");
      const std::string url = Str(*r, "url");
      if (type == "CodeSystem") terminology.code_systems.emplace(url, r);
      if (type == "ValueSet") terminology.value_sets.emplace(url, r);
    }
  }

  std::set<std::string> required;
  for (const auto& [name, type] : model.types) {
    for (const auto& el : type.elements)
      if (el.binding == 4 && !el.value_set.empty()) required.insert(el.value_set);
  }
  Expander expander(terminology);
  for (const auto& url : required) {
    GenValueSet vs;
    vs.url = url;
    std::vector<GenCode> codes;
    vs.complete = expander.Expand(url, codes);
    std::set<std::pair<std::string, std::string>> seen;
    for (auto& c : codes) {
      if (seen.insert({c.system, c.code}).second) vs.codes.push_back(std::move(c));
    }
    if (!vs.complete) vs.codes.clear();
    model.value_sets[url] = std::move(vs);
  }
  if (model.spec_version.empty()) model.spec_version = "4.0.1";
  return true;
}

std::string CppString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '?': out += "\\?"; break;  // no trigraphs
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\%03o", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string Banner(const Model& model) {
  return "// Generated by kakehashi_fhir_codegen (fhir/codegen/) from " + model.package +
         " (FHIR " + model.spec_version +
         ").\n// DO NOT EDIT: change the generator and run `make regen-fhir`.\n";
}

namespace {
bool write_failed = false;
}  // namespace

bool AnyWriteFailed() {
  return write_failed;
}

bool WriteFileIfChanged(const std::string& path, const std::string& content) {
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str() == content) return true;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::cerr << "kakehashi_fhir_codegen: cannot write " << path << "\n";
    write_failed = true;
    return false;
  }
  out << content;
  if (!out) write_failed = true;
  return static_cast<bool>(out);
}

}  // namespace kakehashi::fhir::codegen
