// Terminology operations over REST (terminology_ops.hpp): IN parameters from the query, a form or
// a Parameters body; the library API of terminology/operations.hpp; OUT as a Parameters resource
// built with fhir::Node (the OUT parameter names of the R4 OperationDefinitions).
#include "kakehashi/gateway/terminology_ops.hpp"

#include "detail/values.hpp"
#include "handler_util.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/terminology/operations.hpp"

#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace kakehashi::gateway {

namespace {

namespace term = kakehashi::terminology;
using detail::Fail;
using detail::Failure;
using fhir::Node;

// The IN parameters of one call, whatever way they came.
struct In {
  std::vector<std::pair<std::string, std::string>> values;
  std::optional<term::Coding> coding;

  std::optional<std::string> Get(std::string_view name) const {
    for (const auto& [k, v] : values) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
  std::string GetOr(std::string_view name, std::string fallback = {}) const {
    auto v = Get(name);
    return v ? *v : std::move(fallback);
  }
  std::vector<std::string> All(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : values) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
};

// "system|code" (the token form a GET uses for a Coding parameter).
term::Coding CodingFromToken(std::string_view token) {
  term::Coding c;
  if (auto bar = token.find('|'); bar != std::string_view::npos) {
    c.system = std::string(token.substr(0, bar));
    c.code = std::string(token.substr(bar + 1));
  } else {
    c.code = std::string(token);
  }
  return c;
}

std::string Text(const Node* n) {
  return n != nullptr && (n->IsString() || n->IsNumber()) ? std::string(n->Text()) : std::string();
}

// GET: the query. POST: a form, or a Parameters resource (R4 §3.1.0.11), plus any query.
std::variant<In, Failure> ReadIn(const Request& request) {
  In in;
  std::string_view target = request.target;
  if (auto qm = target.find('?'); qm != std::string_view::npos) {
    in.values = detail::ParseQuery(target.substr(qm + 1));
  }
  if (request.method == "POST" && !request.body.empty()) {
    std::string_view ct = request.Header("Content-Type");
    if (ct.find("application/x-www-form-urlencoded") != std::string_view::npos) {
      for (auto& p : detail::ParseQuery(request.body)) in.values.push_back(std::move(p));
    } else {
      auto body = fhir::ParseJson(request.body);
      if (!body) return Fail(400, "invalid", "the body is not JSON");
      if (body->ResourceType() != "Parameters") {
        return Fail(400, "invalid", "POST a Parameters resource (or a form) to an operation");
      }
      if (const Node* list = body->Find("parameter"); list != nullptr && list->IsArray()) {
        for (const Node& p : list->Items()) {
          const std::string name = Text(p.Find("name"));
          if (name.empty()) return Fail(400, "required", "a parameter has no name");
          if (const Node* coding = p.Find("valueCoding"); coding != nullptr) {
            term::Coding c;
            c.system = Text(coding->Find("system"));
            c.version = Text(coding->Find("version"));
            c.code = Text(coding->Find("code"));
            c.display = Text(coding->Find("display"));
            if (name == "coding") in.coding = c;
            continue;
          }
          for (std::string_view type : {"valueString", "valueUri", "valueCode", "valueCanonical",
                                        "valueUrl", "valueInteger", "valueBoolean"}) {
            if (const Node* v = p.Find(type); v != nullptr) {
              std::string text = v->IsBool() ? (v->AsBool() ? "true" : "false") : Text(v);
              in.values.emplace_back(name, std::move(text));
              break;
            }
          }
        }
      }
    }
  }
  if (!in.coding) {
    if (auto token = in.Get("coding")) in.coding = CodingFromToken(*token);
  }
  return in;
}

Node Param(std::string name) {
  Node p = Node::Object();
  p.Set("name", Node::String(std::move(name)));
  return p;
}

Node ValueParam(std::string name, const std::string& type, std::string value) {
  Node p = Param(std::move(name));
  p.Set("value" + type, Node::String(std::move(value)));
  return p;
}

class Parameters {
 public:
  Parameters() : root_(Node::Object()), list_(Node::Array()) {
    root_.Set("resourceType", Node::String("Parameters"));
  }
  void Add(Node p) { list_.Push(std::move(p)); }
  void AddString(std::string name, const std::string& type, std::string value) {
    if (!value.empty()) Add(ValueParam(std::move(name), type, std::move(value)));
  }
  void AddBool(std::string name, bool value) {
    Node p = Param(std::move(name));
    p.Set("valueBoolean", Node::Bool(value));
    Add(std::move(p));
  }
  void AddInt(std::string name, std::size_t value) {
    Node p = Param(std::move(name));
    p.Set("valueInteger", Node::Number(std::to_string(value)));
    Add(std::move(p));
  }
  // The service's findings as an OperationOutcome part (the R5 "issues" convention).
  void AddIssues(const std::vector<Issue>& issues) {
    if (issues.empty()) return;
    Node p = Param("issues");
    p.Set("resource", fhir::ToOperationOutcome(issues));
    Add(std::move(p));
  }
  Node Take() {
    if (list_.Size() > 0) root_.Set("parameter", std::move(list_));
    return std::move(root_);
  }

 private:
  Node root_;
  Node list_;
};

Response JsonResponse(const Node& resource) {
  Response r;
  r.SetHeader("Content-Type", std::string(detail::kFhirJson));
  r.body = fhir::WriteJson(resource);
  return r;
}

Response Missing(std::string_view what) {
  return detail::FailureResponse(
      Fail(400, "required", "the parameter " + std::string(what) + " is required"));
}

// The first issue's message, for the diagnostics of a 404 (messages never hold input values).
std::string Why(const std::vector<Issue>& issues, std::string fallback) {
  for (const Issue& i : issues) {
    if (!i.message.empty()) return std::string(i.code) + ": " + i.message;
  }
  return fallback;
}

bool HasCode(const std::vector<Issue>& issues, std::string_view code) {
  for (const Issue& i : issues) {
    if (i.code == code) return true;
  }
  return false;
}

bool ParseSize(const std::string& text, std::size_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
}

// ------------------------------------------------------------------ operations

// CodeSystem/$lookup (R4 codesystem-operation-lookup): system+code or coding.
Response Lookup(const term::TerminologyService& service, const In& in) {
  term::LookupRequest req;
  req.system = in.GetOr("system");
  req.code = in.GetOr("code");
  req.version = in.GetOr("version");
  req.property = in.All("property");
  if (in.coding) {
    if (req.system.empty()) req.system = in.coding->system;
    if (req.code.empty()) req.code = in.coding->code;
  }
  if (req.system.empty()) return Missing("system (or coding)");
  if (req.code.empty()) return Missing("code (or coding)");
  auto r = service.Lookup(req);
  if (!r.found) {
    Failure f = Fail(404, "not-found", Why(r.issues, "the code was not found"));
    f.issues = r.issues;
    return detail::FailureResponse(f);
  }
  return JsonResponse(LookupParameters(r));
}

// ValueSet/$validate-code (R4 valueset-operation-validate-code): url (optional: the implicit
// value set of `system`), system+code or coding, display.
Response ValidateCode(const term::TerminologyService& service, const In& in) {
  term::ValidateCodeRequest req;
  req.url = in.GetOr("url");
  req.system = in.GetOr("system");
  req.code = in.GetOr("code");
  req.display = in.GetOr("display");
  if (in.coding) {
    if (req.system.empty()) req.system = in.coding->system;
    if (req.code.empty()) req.code = in.coding->code;
    if (req.display.empty()) req.display = in.coding->display;
  }
  if (req.code.empty()) return Missing("code (or coding)");
  if (req.system.empty() && req.url.empty()) return Missing("system or url");
  auto r = service.ValidateCode(req);
  if (HasCode(r.issues, "terminology.unknown_valueset")) {
    Failure f = Fail(404, "not-found", Why(r.issues, "the value set is not known"));
    f.issues = r.issues;
    return detail::FailureResponse(f);
  }
  return JsonResponse(ValidateCodeParameters(r));
}

// ValueSet/$expand (R4 valueset-operation-expand): url, filter, offset, count. The expansion is
// returned as a ValueSet resource, as the definition's OUT "return" says.
Response Expand(const term::TerminologyService& service, const In& in) {
  term::ExpandRequest req;
  req.url = in.GetOr("url");
  if (req.url.empty()) return Missing("url");
  req.filter = in.GetOr("filter");
  if (auto o = in.Get("offset"); o && !ParseSize(*o, req.offset)) {
    return detail::FailureResponse(Fail(400, "invalid", "offset must be a non-negative integer"));
  }
  if (auto c = in.Get("count"); c && !ParseSize(*c, req.count)) {
    return detail::FailureResponse(Fail(400, "invalid", "count must be a non-negative integer"));
  }
  req.count = std::min<std::size_t>(req.count, 1000);
  auto r = service.Expand(req);
  if (!r.found) {
    Failure f = Fail(404, "not-found", Why(r.issues, "the value set is not known"));
    f.issues = r.issues;
    return detail::FailureResponse(f);
  }
  Node vs = Node::Object();
  vs.Set("resourceType", Node::String("ValueSet"));
  vs.Set("url", Node::String(r.url));
  vs.Set("status", Node::String("active"));
  Node expansion = Node::Object();
  expansion.Set("identifier", Node::String("urn:uuid:" + detail::NewId()));
  expansion.Set("timestamp", Node::String(detail::FormatInstant(detail::NowUs())));
  expansion.Set("total", Node::Number(std::to_string(r.total)));
  expansion.Set("offset", Node::Number(std::to_string(r.offset)));
  Node parameters = Node::Array();
  auto echo = [&](const char* name, const std::string& type, std::string value) {
    if (value.empty()) return;
    Node p = Node::Object();
    p.Set("name", Node::String(name));
    p.Set("value" + type,
          type == "Integer" ? Node::Number(std::move(value)) : Node::String(std::move(value)));
    parameters.Push(std::move(p));
  };
  echo("filter", "String", req.filter);
  echo("offset", "Integer", std::to_string(req.offset));
  echo("count", "Integer", std::to_string(req.count));
  expansion.Set("parameter", std::move(parameters));
  if (!r.contains.empty()) {
    Node contains = Node::Array();
    for (const auto& c : r.contains) contains.Push(CodingToNode(c));
    expansion.Set("contains", std::move(contains));
  }
  vs.Set("expansion", std::move(expansion));
  return JsonResponse(vs);
}

// ConceptMap/$translate (R4 conceptmap-operation-translate): url, system+code or coding,
// targetsystem, reverse.
Response Translate(const term::TerminologyService& service, const In& in) {
  term::TranslateRequest req;
  req.url = in.GetOr("url");
  req.system = in.GetOr("system");
  req.code = in.GetOr("code");
  req.targetsystem = in.GetOr("targetsystem");
  if (in.coding) {
    if (req.system.empty()) req.system = in.coding->system;
    if (req.code.empty()) req.code = in.coding->code;
  }
  const std::string reverse = in.GetOr("reverse", "false");
  if (reverse != "true" && reverse != "false") {
    return detail::FailureResponse(Fail(400, "invalid", "reverse must be true or false"));
  }
  req.reverse = reverse == "true";
  if (req.code.empty()) return Missing("code (or coding)");
  if (req.system.empty()) return Missing("system (or coding)");
  auto r = service.Translate(req);
  return JsonResponse(TranslateParameters(r));
}

using OperationFn = Response (*)(const term::TerminologyService&, const In&);

TypeOperation Make(std::shared_ptr<const term::TerminologyService> service, std::string type,
                   std::string name, std::string definition, OperationFn fn) {
  TypeOperation op;
  op.type = std::move(type);
  op.name = std::move(name);
  op.definition = std::move(definition);
  op.run = [service = std::move(service), fn](const Request& request) {
    auto in = ReadIn(request);
    if (auto* f = std::get_if<Failure>(&in)) return detail::FailureResponse(*f);
    return fn(*service, std::get<In>(in));
  };
  return op;
}

}  // namespace

std::vector<TypeOperation> TerminologyOperations(const term::TerminologyStore& store,
                                                 term::ProfileSet output) {
  auto service = std::make_shared<const term::TerminologyService>(store, output);
  const std::string base = "http://hl7.org/fhir/OperationDefinition/";
  return {
      Make(service, "CodeSystem", "lookup", base + "CodeSystem-lookup", &Lookup),
      Make(service, "ValueSet", "validate-code", base + "ValueSet-validate-code", &ValidateCode),
      Make(service, "ValueSet", "expand", base + "ValueSet-expand", &Expand),
      Make(service, "ConceptMap", "translate", base + "ConceptMap-translate", &Translate),
  };
}

ValueSetCodes TerminologyValueSetCodes(const term::TerminologyStore& store,
                                       term::ProfileSet output) {
  auto service = std::make_shared<const term::TerminologyService>(store, output);
  return [service](
             std::string_view url,
             std::size_t limit) -> std::optional<std::vector<std::pair<std::string, std::string>>> {
    // The same expansion ValueSet/$expand serves (the implicit value set of a code system).
    term::ExpandRequest request;
    request.url = std::string(url);
    request.count = limit + 1;
    term::ExpandResult expanded = service->Expand(request);
    if (!expanded.found) return std::nullopt;
    std::vector<std::pair<std::string, std::string>> codes;
    // A stored Coding may spell its system any registered way (urn:oid:, an older URL).
    std::vector<std::string> spellings;
    std::string spelled_for;
    for (const term::Coding& c : expanded.contains) {
      if (c.system != spelled_for) {
        spelled_for = c.system;
        const std::string canonical = service->Normalize(c.system).canonical;
        spellings.clear();
        for (std::string& s : service->Registry().SpellingsOf(canonical)) {
          if (s.find(':') != std::string::npos) spellings.push_back(std::move(s));  // URI forms
        }
        spellings.push_back(c.system);
        spellings.push_back(canonical);
        std::sort(spellings.begin(), spellings.end());
        spellings.erase(std::unique(spellings.begin(), spellings.end()), spellings.end());
      }
      for (const std::string& s : spellings) {
        codes.emplace_back(s, c.code);
        if (codes.size() > limit) return codes;
      }
    }
    return codes;
  };
}

// ------------------------------------------------------------------ OUT parameters

Node CodingToNode(const term::Coding& c) {
  Node n = Node::Object();
  if (!c.system.empty()) n.Set("system", Node::String(c.system));
  if (!c.version.empty()) n.Set("version", Node::String(c.version));
  if (!c.code.empty()) n.Set("code", Node::String(c.code));
  if (!c.display.empty()) n.Set("display", Node::String(c.display));
  return n;
}

// codesystem-operation-lookup OUT: name, version, display, property (code, value).
Node LookupParameters(const term::LookupResult& r) {
  Parameters out;
  out.AddString("name", "String", r.name);
  out.AddString("version", "String", r.version);
  out.AddString("display", "String", r.display);
  if (r.found) out.AddString("system", "Uri", r.system);
  for (const auto& p : r.property) {
    Node part = Node::Array();
    part.Push(ValueParam("code", "Code", p.code));
    part.Push(ValueParam("value", "String", p.value));
    Node prop = Param("property");
    prop.Set("part", std::move(part));
    out.Add(std::move(prop));
  }
  out.AddIssues(r.issues);
  return out.Take();
}

// valueset-operation-validate-code OUT: result, message, display.
Node ValidateCodeParameters(const term::ValidateCodeResult& r) {
  Parameters out;
  out.AddBool("result", r.result);
  out.AddString("message", "String", r.message);
  out.AddString("display", "String", r.display);
  out.AddIssues(r.issues);
  return out.Take();
}

// conceptmap-operation-translate OUT: result, message, match (equivalence, concept, source).
Node TranslateParameters(const term::TranslateResult& r) {
  Parameters out;
  out.AddBool("result", r.result);
  out.AddString("message", "String", r.message);
  for (const auto& m : r.match) {
    Node part = Node::Array();
    part.Push(ValueParam("equivalence", "Code", m.equivalence));
    Node concept_param = Param("concept");
    concept_param.Set("valueCoding", CodingToNode(m.coding));
    part.Push(std::move(concept_param));
    if (!m.source.empty()) part.Push(ValueParam("source", "Uri", m.source));
    Node match = Param("match");
    match.Set("part", std::move(part));
    out.Add(std::move(match));
  }
  out.AddIssues(r.issues);
  return out.Take();
}

}  // namespace kakehashi::gateway
