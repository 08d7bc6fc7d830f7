#include "kakehashi/mapping/mapper.hpp"

#include "kakehashi/mapping/coding_binder.hpp"
#include "kakehashi/mapping/functions.hpp"
#include "kakehashi/mapping/ids.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>

namespace kakehashi::mapping {
namespace {

using fhir::Node;
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

// Segment ids compared as integers instead of memcmp calls (the mapper compares ids on every
// path it resolves): ids of up to 7 bytes are packed with their length in the top byte (HL7 ids
// have 3); a longer id packs to kLongId and is then compared as text.
constexpr std::uint64_t kLongId = ~std::uint64_t{0};

std::uint64_t PackId(std::string_view id) {
  if (id.size() > 7) return kLongId;
  std::uint64_t key = static_cast<std::uint64_t>(id.size()) << 56;
  for (std::size_t i = 0; i < id.size(); ++i) {
    key |= static_cast<std::uint64_t>(static_cast<unsigned char>(id[i])) << (8 * i);
  }
  return key;
}

// Whether two texts are equal. `==` on two views compiles to an out-of-line
// string_view::compare call in this file's larger functions (GCC 12); the resource-type tests of
// EvalRef run per planned resource and reference, so they use this inline test instead.
inline bool Same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// A segment id with its packed key.
struct SegId {
  std::string_view text;
  std::uint64_t key = PackId({});
  SegId() = default;
  explicit SegId(std::string_view t) : text(t), key(PackId(t)) {}
  static SegId Packed(std::string_view t, std::uint64_t k) {
    SegId id;
    id.text = t;
    id.key = k;
    return id;
  }
  // Always inlined: a key compare is cheaper than the call GCC otherwise emits in the larger
  // functions below (segment scans run per field read).
  [[gnu::always_inline]] bool operator==(const SegId& other) const {
    return key == other.key && (key != kLongId || Same(text, other.text));
  }
};

// "PID-5[2].1.2" (absolute) or ".1.2" (relative to the datatype's base field).
struct Path {
  std::string segment;
  std::uint64_t segment_key = 0;  // PackId(segment)
  int field = 0;
  int repetition = 0;  // 0 = not given
  int component = 0;
  int subcomponent = 0;
  bool relative = false;
};

bool ParseInt(std::string_view s, std::size_t& i, int& out) {
  std::size_t start = i;
  out = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') out = out * 10 + (s[i++] - '0');
  return i > start;
}

std::optional<Path> ParsePath(std::string_view s) {
  Path p;
  std::size_t i = 0;
  if (s.empty() || s[0] == '.') {
    p.relative = true;
  } else {
    std::size_t dash = s.find('-');
    if (dash == std::string_view::npos || dash == 0) return std::nullopt;
    p.segment = std::string(s.substr(0, dash));
    p.segment_key = PackId(p.segment);
    i = dash + 1;
    if (!ParseInt(s, i, p.field)) return std::nullopt;
    if (i < s.size() && s[i] == '[') {
      ++i;
      if (!ParseInt(s, i, p.repetition) || i >= s.size() || s[i] != ']') return std::nullopt;
      ++i;
    }
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!ParseInt(s, i, p.component)) return std::nullopt;
    if (i < s.size() && s[i] == '.') {
      ++i;
      if (!ParseInt(s, i, p.subcomponent)) return std::nullopt;
    }
  }
  if (i != s.size()) return std::nullopt;
  return p;
}

// The role of a template member (Compiled::roles).
constexpr std::uint8_t kMember = 0, kSkip = 1, kMergeIn = 2;

// What the engine needs to know about one rule object, worked out once per Mapper instead of
// per message (the rules do not change while a Mapper lives): whether it is an expression, its
// members by role, its path parsed, its function and datatype rule resolved.
struct Compiled {
  bool expression = false;
  const Node* path = nullptr;
  const Node* constant = nullptr;
  const Node* lookup = nullptr;
  const Node* ref = nullptr;
  const Node* datatype = nullptr;
  const Node* fn = nullptr;
  const Node* first = nullptr;
  const Node* concat = nullptr;
  const Node* hash = nullptr;
  const Node* each = nullptr;
  const Node* value = nullptr;
  const Node* system = nullptr;
  const Node* fallback = nullptr;  // "default"
  const Node* column = nullptr;
  const Node* args = nullptr;
  const Node* sep = nullptr;
  const Node* tmpl = nullptr;  // "template"
  const Node* require = nullptr;
  bool repeat = false;
  bool all = false;
  bool keep = false;
  bool optional = false;       // lookup "optional": a miss leaves the element out without a warning
  bool merge = false;          // has a "$merge" member (members may then collide)
  std::optional<Path> parsed;  // "path" parsed (nullopt: absent or malformed)
  const Function* function = nullptr;   // "fn" resolved (nullptr: absent or unknown)
  const Node* datatype_rule = nullptr;  // rules.Datatype("datatype") (nullptr: absent/unknown)

  std::vector<std::uint8_t> roles;  // per member: kMember, kSkip ($require/$keep), kMergeIn

  // The compiled facts of the rule objects this one evaluates, filled in once every object is
  // compiled (CompiledIndex::Link), so that evaluation goes from object to object without a
  // look-up per node: per member (templates), per item of the list an expression evaluates
  // ("first", "concat", "hash" or "args", the one EvalExpression uses), and of "value" and
  // "template". nullptr where the child is not an object.
  const Node* node = nullptr;
  std::vector<const Compiled*> members;
  const Node* list = nullptr;
  std::vector<const Compiled*> items;
  const Compiled* value_info = nullptr;
  const Compiled* tmpl_info = nullptr;
  const Compiled* datatype_info = nullptr;  // of datatype_rule
};

Compiled Compile(const Node& rule, const RuleSet& rules) {
  Compiled c;
  c.node = &rule;
  if (!rule.IsObject()) return c;
  c.path = rule.Find("path");
  c.constant = rule.Find("const");
  c.lookup = rule.Find("lookup");
  c.ref = rule.Find("ref");
  c.datatype = rule.Find("datatype");
  c.fn = rule.Find("fn");
  c.first = rule.Find("first");
  c.concat = rule.Find("concat");
  c.hash = rule.Find("hash");
  c.each = rule.Find("each");
  c.expression = c.path != nullptr || c.constant != nullptr || c.lookup != nullptr ||
                 c.ref != nullptr || c.datatype != nullptr || c.fn != nullptr ||
                 c.first != nullptr || c.concat != nullptr || c.hash != nullptr ||
                 c.each != nullptr;
  c.value = rule.Find("value");
  c.system = rule.Find("system");
  c.fallback = rule.Find("default");
  c.column = rule.Find("column");
  c.args = rule.Find("args");
  c.sep = rule.Find("sep");
  c.tmpl = rule.Find("template");
  c.require = rule.Find("$require");
  const Node* repeat = rule.Find("repeat");
  c.repeat = repeat != nullptr && repeat->AsBool();
  const Node* all = rule.Find("all");
  c.all = all != nullptr && all->AsBool();
  const Node* optional = rule.Find("optional");
  c.optional = optional != nullptr && optional->AsBool();
  const Node* keep = rule.Find("$keep");
  c.keep = keep != nullptr && keep->AsBool();
  c.merge = rule.Find("$merge") != nullptr;
  c.roles.reserve(rule.Size());
  for (std::size_t i = 0; i < rule.Size(); ++i) {
    const std::string_view key = rule.Key(i);
    c.roles.push_back(key == "$require" || key == "$keep" ? kSkip
                      : key == "$merge"                   ? kMergeIn
                                                          : kMember);
  }
  if (c.path != nullptr) c.parsed = ParsePath(c.path->Text());
  if (c.fn != nullptr) c.function = FindFunction(c.fn->Text());
  if (c.datatype != nullptr) c.datatype_rule = rules.Datatype(c.datatype->Text());
  return c;
}

// Rule object -> Compiled, looked up several times per template member per message: an
// open-addressing table keyed by the node's address (power-of-two size, linear probing), a few
// nanoseconds per lookup instead of a std::unordered_map's modulo and node chase.
class CompiledIndex {
 public:
  void Build(const std::unordered_map<const Node*, Compiled>& nodes) {
    std::size_t size = 16;
    while (size < nodes.size() * 2) size *= 2;
    slots_.assign(size, {nullptr, 0});
    infos_.clear();
    infos_.reserve(nodes.size());
    for (const auto& [node, info] : nodes) {
      std::size_t i = Slot(node);
      while (slots_[i].first != nullptr) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = {node, static_cast<std::uint32_t>(infos_.size())};
      infos_.push_back(info);
    }
  }
  // Points every compiled object at the compiled facts of its object children.
  void Link() {
    auto of = [this](const Node* child) -> const Compiled* {
      return child != nullptr && child->IsObject() ? Find(child) : nullptr;
    };
    for (Compiled& c : infos_) {
      const Node& rule = *c.node;
      c.members.resize(rule.Size());
      for (std::size_t i = 0; i < rule.Size(); ++i) c.members[i] = of(&rule.Child(i));
      c.list = c.first != nullptr    ? c.first
               : c.concat != nullptr ? c.concat
               : c.hash != nullptr   ? c.hash
                                     : c.args;
      if (c.list != nullptr) {
        c.items.resize(c.list->Size());
        for (std::size_t i = 0; i < c.list->Size(); ++i) c.items[i] = of(&c.list->Child(i));
      }
      c.value_info = of(c.value);
      c.tmpl_info = of(c.tmpl);
      c.datatype_info = of(c.datatype_rule);
    }
  }
  const Compiled* Find(const Node* node) const {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = Slot(node);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].first == node) return &infos_[slots_[i].second];
      if (slots_[i].first == nullptr) return nullptr;
    }
  }

 private:
  std::size_t Slot(const Node* node) const {
    auto bits = reinterpret_cast<std::uintptr_t>(node);
    return static_cast<std::size_t>((bits >> 4) * 0x9E3779B97F4A7C15ULL >> 20) &
           (slots_.size() - 1);
  }
  std::vector<std::pair<const Node*, std::uint32_t>> slots_;
  std::vector<Compiled> infos_;
};

// Distinct for every CompiledRules ever made (never reused, unlike an address).
std::uint64_t NextCompiledRulesId() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

// Every rule object reachable from the message rules (and the resources and datatypes they
// name), compiled. Immutable after construction, so concurrent Map() calls share it.
struct Mapper::CompiledRules {
  std::unordered_map<const Node*, Compiled> nodes;  // filled by the walk
  CompiledIndex index;                              // the same, for lookups
  const std::uint64_t id = NextCompiledRulesId();   // MessageMemo::rules_id

  void Walk(const Node& node, const RuleSet& rules) {
    if (node.IsArray()) {
      for (const auto& item : node.Items()) Walk(item, rules);
      return;
    }
    if (!node.IsObject() || nodes.count(&node) != 0) return;
    const Compiled& c = nodes.emplace(&node, Compile(node, rules)).first->second;
    const Node* datatype_rule = c.datatype_rule;
    for (std::size_t i = 0; i < node.Size(); ++i) Walk(node.Child(i), rules);
    if (datatype_rule != nullptr) Walk(*datatype_rule, rules);
  }
  void WalkResource(std::string_view name, const RuleSet& rules) {
    if (const Node* rule = rules.Resource(name)) Walk(*rule, rules);
  }
};

Mapper::Mapper(const RuleSet& rules, MapOptions options)
    : rules_(rules), options_(std::move(options)), compiled_(std::make_shared<CompiledRules>()) {
  CompiledRules& c = *compiled_;
  for (const std::string& data_type : rules_.MessageTypes()) {
    const Node* message = rules_.Message(data_type);
    if (message == nullptr) continue;
    c.Walk(*message, rules_);
    if (const Node* list = message->Find("resources")) {
      for (const auto& item : list->Items()) {
        if (const Node* name = item.Find("resource")) c.WalkResource(name->Text(), rules_);
      }
    }
  }
  c.WalkResource("DocumentReference", rules_);
  c.WalkResource("Provenance", rules_);
  // References name resource rules too ({"ref": "Patient"} computes the Patient id).
  std::vector<std::string> refs;
  for (const auto& [node, info] : c.nodes) {
    if (info.ref != nullptr) refs.emplace_back(info.ref->Text());
  }
  for (const auto& name : refs) c.WalkResource(name, rules_);
  c.index.Build(c.nodes);
  c.index.Link();
}

namespace {

struct Base {
  std::size_t segment = kNone;
  int field = 0;
  int repetition = 1;
  int component = 0;  // 0: the whole repetition
};

struct Scope {
  std::size_t segment = kNone;      // the segment the resource instance iterates over
  SegId segment_id;                 // text of a rule node (lives as long as the rules)
  const Node* following = nullptr;  // segment ids that follow the scope segment in its group
  const Node* preceding = nullptr;  // segment ids that precede it in its group (ORC, TQ1 of OBR)
  int index = 1;
  int group_index = 1;
  std::optional<Base> base;  // inside a datatype template
  std::string fhir_path;
  const std::string* self_id = nullptr;
};

struct Planned {
  std::string type;
  std::string id;
  std::string reference;  // "type/id", what references to it hold
  std::size_t segment = kNone;
  const Node* rule = nullptr;  // the resource rule
  Scope scope;
};

struct Out {
  Node node;
  bool data = false;
};

// Forwards issues, dropping repeats of the same code at the same field within one message (a
// function called for several elements would otherwise report one problem many times).
class DedupSink final : public IssueSink {
 public:
  explicit DedupSink(IssueSink& next) : next_(next) {}
  void Report(Issue issue) override {
    if (FirstTime(issue.code, issue.where.field)) next_.Report(std::move(issue));
  }
  bool StopRequested() const override { return next_.StopRequested(); }
  bool Keeps(Severity severity) const override { return next_.Keeps(severity); }
  // Repeats are dropped from the counts as from the reports.
  void CountOnly(Severity severity, std::string_view code, std::string_view field) override {
    if (FirstTime(code, field)) next_.CountOnly(severity, code, field);
  }

 private:
  bool FirstTime(std::string_view code, std::string_view field) {
    for (const auto& [seen_code, seen_field] : seen_) {
      if (seen_code == code && seen_field == field) return false;
    }
    seen_.emplace_back(code, field);
    return true;
  }

  IssueSink& next_;
  std::vector<std::pair<std::string_view, std::string>> seen_;  // code (static), field
};

class Engine {
 public:
  Engine(const RuleSet& rules, const MapOptions& options, const MessageView& message,
         const SourceInfo& source, IssueSink& issues, const CompiledIndex& compiled,
         std::uint64_t rules_id)
      : rules_(rules),
        options_(options),
        compiled_(compiled),
        msg_(message),
        source_(source),
        dedup_(issues),
        issues_(dedup_) {
    memo_.rules_id = rules_id;
    // Fields read, one flag per field of every segment in one block (a vector per segment cost
    // an allocation each), and whether any field of a segment was read (also one past its end).
    used_first_.reserve(msg_.SegmentCount() + 1);
    std::size_t flags = 0;
    for (std::size_t s = 0; s < msg_.SegmentCount(); ++s) {
      used_first_.push_back(flags);
      flags += static_cast<std::size_t>(std::max(msg_.FieldCount(s), 0)) + 1;
    }
    used_first_.push_back(flags);
    used_.assign(flags, 0);
    touched_.assign(msg_.SegmentCount(), 0);
    ids_.reserve(msg_.SegmentCount());
    for (std::size_t s = 0; s < msg_.SegmentCount(); ++s) ids_.emplace_back(msg_.SegmentId(s));
  }

  MapResult Run(const std::string& data_type, const Node* message_rule) {
    MapResult result;
    result.data_type = data_type;
    result.mapped = message_rule != nullptr;
    if (message_rule == nullptr) {
      issues_.Info("mapping.unmapped_message", source_.where,
                   "no mapping rule for this data type; the message is kept as a "
                   "DocumentReference with the original message attached");
      Plan("DocumentReference", nullptr, nullptr);
    } else {
      for (const auto& item : message_rule->Find("resources")->Items()) {
        const Node* each = item.Find("each");
        Plan(item.Find("resource")->Text(), each, item.Find("following"), item.Find("group"),
             item.Find("preceding"));
      }
    }
    if (rules_.Resource("Provenance") != nullptr) Plan("Provenance", nullptr, nullptr);
    // Built first, then moved out: a resource refers to every planned one (EvalRef).
    std::vector<Node> built;
    built.reserve(planned_.size());
    for (auto& p : planned_) built.push_back(Build(p));
    result.resources.reserve(planned_.size());
    for (std::size_t i = 0; i < planned_.size(); ++i) {
      result.resources.emplace_back(std::move(planned_[i].type), std::move(planned_[i].id),
                                    std::move(built[i]));  // no temporary MappedResource
    }
    if (options_.report_unused && message_rule != nullptr) ReportUnused(*message_rule);
    return result;
  }

 private:
  // ------------------------------------------------------------------ planning (pass 1: ids)
  void Plan(std::string_view rule_name, const Node* each, const Node* following,
            const Node* group = nullptr, const Node* preceding = nullptr) {
    const Node* rule = rules_.Resource(rule_name);
    if (rule == nullptr) return;
    const Node* type_node = rule->Find("resourceType");
    const std::string type(type_node != nullptr ? type_node->Text() : rule_name);
    std::vector<Scope> scopes;
    if (each == nullptr) {
      scopes.emplace_back();
    } else {
      int index = 0;
      const SegId each_id(each->Text());
      for (std::size_t s = 0; s < ids_.size(); ++s) {
        if (!(ids_[s] == each_id)) continue;
        Scope scope;
        scope.segment = s;
        scope.segment_id = each_id;
        scope.following = following;
        scope.preceding = preceding;
        scope.index = ++index;
        scope.group_index = index;
        scopes.push_back(std::move(scope));
      }
      // "group": a path whose value groups the instances (ORC-4 = RP number: the RXEs of one RP
      // are numbered 1, 2, … even when each has its own ORC); group_index counts within a group.
      if (group != nullptr) {
        auto path = ParsePath(group->Text());
        if (!path || path->relative) {
          RuleError("malformed \"group\" path in a message rule");
        } else {
          std::map<std::string, int> counters;
          for (auto& scope : scopes) scope.group_index = ++counters[Read(*path, scope)];
        }
      }
    }
    for (auto& scope : scopes) {
      Planned p;
      p.type = type;
      p.rule = rule;
      p.segment = scope.segment;
      p.scope = scope;
      p.scope.fhir_path.reserve(kFhirPathReserve);  // grows and shrinks per member: no regrowth
      p.scope.fhir_path = type;
      p.id = IdFor(*rule, p.scope);
      p.reference.reserve(p.type.size() + 1 + p.id.size());
      p.reference.append(p.type).append("/").append(p.id);
      planned_.push_back(std::move(p));
    }
  }

  // The id from the rule's "id" expression; nullopt when it read nothing from the message.
  std::optional<std::string> DataIdFor(const Node& rule, Scope& scope) {
    if (const Node* id_rule = rule.Find("id")) {
      if (auto id = Eval(*id_rule, scope); id && id->data && id->node.IsString()) {
        return std::string(id->node.Text());
      }
    }
    return std::nullopt;
  }

  std::string IdFor(const Node& rule, Scope& scope) {
    if (auto id = DataIdFor(rule, scope)) return std::move(*id);
    // No identity in the data: the message position is the identity (stable per file).
    return DeterministicId({rule.Find("resourceType") ? rule.Find("resourceType")->Text() : "",
                            source_.file, std::to_string(source_.message_index),
                            std::to_string(scope.index)});
  }

  // ------------------------------------------------------------------ building (pass 2)
  Node Build(Planned& p) {
    Node resource = Node::Object();
    resource.Append("resourceType", Node::String(p.type));
    resource.Append("id", Node::String(p.id));
    if (const Node* profile = p.rule->Find("profile")) {
      if (const TableRow* row =
              rules_.Lookup("profiles", "", profile->Text(), ToString(options_.profile))) {
        Node meta = Node::Object();
        meta.Append("profile", Node::Array()).Push(Node::String(row->target_code));
        resource.Append("meta", std::move(meta));
      } else {
        RuleError("profile name not in tables/profiles.tsv");
      }
    }
    p.scope.self_id = &p.id;
    if (const Node* body = p.rule->Find("body")) {
      const Compiled& info = Info(*body);
      if (info.require == nullptr) {
        EvalBodyInto(*body, info, p.scope, resource);
      } else if (auto out = EvalObject(*body, info, p.scope, /*keep=*/true)) {
        // The body's keys are unique (EvalObject), so only the three set above can collide.
        for (std::size_t i = 0; i < out->node.Size(); ++i) {
          const std::string_view key = out->node.Key(i);
          if (IsHeadKey(key)) {
            resource.Set(key, std::move(out->node.Child(i)));
          } else {
            resource.Append(key, std::move(out->node.Child(i)));
          }
        }
      }
    }
    return resource;
  }

  // The members Build sets before the body.
  static bool IsHeadKey(std::string_view key) {
    return key == std::string_view("resourceType") || key == std::string_view("id") ||
           key == std::string_view("meta");
  }

  // The body's members straight into the resource, which already holds resourceType, id and
  // meta: the same members in the same order as evaluating the body as a template and then
  // moving its members over (Build's other branch), without the intermediate object. Only for a
  // body without "$require" (that check must see the body's members alone).
  void EvalBodyInto(const Node& rule, const Compiled& info, Scope& scope, Node& resource) {
    EvalMembersInto(rule, info, scope, resource, /*head_keys_set=*/true);
  }

  // Evaluates the object rule's members into `dest` (a template's fresh object or a resource
  // body): "$merge" members spread, the others set (info.merge, or a resource head key when
  // `head_keys_set`) or appended (rule keys are unique: no lookup needed). Returns whether any
  // member came from data.
  bool EvalMembersInto(const Node& rule, const Compiled& info, Scope& scope, Node& dest,
                       bool head_keys_set) {
    bool data = false;
    const std::size_t parent_length = scope.fhir_path.size();
    // A rule with many members (a resource body, a large template) reserves room for all of them
    // at its first member instead of growing the member vectors 4 -> 8 -> 16; an object that gets
    // no member allocates nothing.
    const std::size_t room = dest.Size() + rule.Size();
    bool reserved = room <= kReserveAbove;
    for (std::size_t i = 0; i < rule.Size(); ++i) {
      const std::uint8_t role = i < info.roles.size() ? info.roles[i] : kMember;
      if (role == kSkip) continue;
      const std::string_view key = rule.Key(i);
      scope.fhir_path.append(".").append(key);
      auto v = Eval(rule.Child(i), scope, i < info.members.size() ? info.members[i] : nullptr);
      scope.fhir_path.resize(parent_length);
      if (!v) continue;
      data = data || v->data;
      if (!reserved) {
        dest.ReserveMembers(room);
        reserved = true;
      }
      if (role == kMergeIn) {
        for (std::size_t k = 0; k < v->node.Size(); ++k) {
          dest.Set(v->node.Key(k), std::move(v->node.Child(k)));
        }
      } else if (info.merge || (head_keys_set && IsHeadKey(key))) {
        dest.Set(key, std::move(v->node));
      } else {
        dest.Append(key, std::move(v->node));
      }
    }
    return data;
  }

  // ------------------------------------------------------------------ evaluation
  // `known`: the compiled facts of `rule` when the caller has them (Compiled::members etc.).
  std::optional<Out> Eval(const Node& rule, Scope& scope, const Compiled* known = nullptr) {
    switch (rule.kind()) {
      case Node::Kind::kNull: return std::nullopt;
      case Node::Kind::kBool:
      case Node::Kind::kNumber:
      case Node::Kind::kString: return Copied(rule, false);
      case Node::Kind::kArray: {
        Out out{Node::Array(), false};
        for (const auto& item : rule.Items()) {
          auto v = Eval(item, scope);
          if (!v) continue;
          out.data = out.data || v->data;
          if (v->node.IsArray()) {
            for (std::size_t k = 0; k < v->node.Size(); ++k) {
              out.node.Push(std::move(v->node.Child(k)));
            }
          } else {
            out.node.Push(std::move(v->node));
          }
        }
        if (out.node.Size() == 0) return std::nullopt;
        return out;
      }
      case Node::Kind::kObject: {
        // One lookup of the compiled facts, handed down (each Eval used to look them up twice).
        const Compiled& info = known != nullptr ? *known : Info(rule);
        return info.expression ? EvalExpression(info, scope) : EvalObject(rule, info, scope, false);
      }
    }
    return std::nullopt;
  }

  // A template object: members are expressions; dropped unless some member came from data
  // (constants alone never make an element) and every "$require"d member is present.
  std::optional<Out> EvalObject(const Node& rule, Scope& scope, bool keep) {
    return EvalObject(rule, Info(rule), scope, keep);
  }
  std::optional<Out> EvalObject(const Node& rule, const Compiled& info, Scope& scope, bool keep) {
    // Built inside the optional that is returned, and every path returns that one object, so
    // the object is not moved on its way out (named return value).
    std::optional<Out> out(std::in_place, Node::Object(), false);
    out->data = EvalMembersInto(rule, info, scope, out->node, /*head_keys_set=*/false);
    bool drop = out->node.Size() == 0 || (!keep && !info.keep && !out->data);
    if (const Node* require = info.require; require != nullptr && !drop) {
      for (const auto& name : require->Items()) {
        if (out->node.Find(name.Text()) == nullptr) drop = true;
      }
    }
    if (drop) out.reset();
    return out;
  }

  // An Out holding a copy of `node`, copied straight into the optional (Out{node, data} would
  // copy it and then move the copy).
  static std::optional<Out> Copied(const Node& node, bool data) {
    return std::optional<Out>(std::in_place, node, data);
  }

  static const Compiled* ItemInfo(const Compiled& info, std::size_t k) {
    return k < info.items.size() ? info.items[k] : nullptr;
  }

  std::optional<Out> EvalExpression(const Compiled& info, Scope& scope) {
    if (const Node* c = info.constant) return Copied(*c, false);
    if (const Node* ref = info.ref) return EvalRef(info, ref->Text(), scope);
    if (const Node* first = info.first) {
      for (std::size_t k = 0; k < first->Size(); ++k) {
        if (auto v = Eval(first->Child(k), scope, ItemInfo(info, k))) return v;
      }
      return std::nullopt;
    }
    if (const Node* parts = info.concat) {
      const Node* sep = info.sep;
      std::string text;
      bool data = false;
      for (std::size_t k = 0; k < parts->Size(); ++k) {
        auto v = Eval(parts->Child(k), scope, ItemInfo(info, k));
        if (!v || v->node.Text().empty()) continue;
        if (!text.empty() && sep != nullptr) text += sep->Text();
        text += v->node.Text();
        data = data || v->data;
      }
      if (text.empty()) return std::nullopt;
      return Out{Node::String(std::move(text)), data};
    }
    if (const Node* parts = info.hash) {
      IdBuilder id;
      bool data = false;
      for (std::size_t k = 0; k < parts->Size(); ++k) {
        auto v = Eval(parts->Child(k), scope, ItemInfo(info, k));
        id.Add(v ? std::string_view(v->node.Text()) : std::string_view());
        data = data || (v && v->data);
      }
      return Out{Node::String(id.Id()), data};
    }
    if (const Node* each = info.each) return EvalEach(info, each->Text(), scope);
    if (info.datatype != nullptr) return EvalDatatype(info, scope);

    // path [+ lookup] [+ fn]; or fn with args; or lookup with "value".
    std::optional<Out> value;
    const Node* path_node = info.path;
    bool repeat = info.repeat;
    if (path_node != nullptr) {
      const std::optional<Path>& path = info.parsed;
      if (!path) {
        RuleError("malformed path in a rule");
        return std::nullopt;
      }
      if (repeat) {
        Out arr{Node::Array(), true};
        auto base = ResolveBase(*path, scope);
        if (!base) return std::nullopt;
        int count = msg_.RepetitionCount(base->segment, base->field);
        for (int r = 1; r <= count; ++r) {
          std::string text = Read(*path, scope, r);
          if (text.empty()) continue;
          auto v = Finish(info, Out{Node::String(std::move(text)), true}, scope, path_node->Text());
          if (v) arr.node.Push(std::move(v->node));
        }
        if (arr.node.Size() == 0) return std::nullopt;
        return arr;
      }
      std::string text = Read(*path, scope);
      if (text.empty()) return std::nullopt;
      if (info.lookup == nullptr && info.fn == nullptr) {  // a plain read: built in place
        return std::optional<Out>(std::in_place, Node::String(std::move(text)), true);
      }
      value.emplace(Node::String(std::move(text)), true);
      return Finish(info, std::move(value), scope, path_node->Text());
    }
    if (const Node* v = info.value) {
      value = Eval(*v, scope, info.value_info);
      if (!value) return std::nullopt;
      return Finish(info, std::move(value), scope, "");
    }
    return Finish(info, std::nullopt, scope, "");
  }

  // Applies "lookup" then "fn" to a value read by "path"/"value".
  std::optional<Out> Finish(const Compiled& info, std::optional<Out>&& value, Scope& scope,
                            std::string_view field) {
    if (const Node* table = info.lookup) {
      if (!value) return std::nullopt;
      std::string_view code = value->node.Text();
      while (!code.empty() && code.back() == ' ') code.remove_suffix(1);
      const Node* system = info.system;
      const TableRow* row = rules_.Lookup(
          table->Text(), system ? std::string_view(system->Text()) : std::string_view(), code,
          ToString(options_.profile));
      if (row == nullptr) {
        if (const Node* def = info.fallback) return Copied(*def, true);
        if (!rules_.HasTable(table->Text())) {
          RuleError("lookup names a table that does not exist");
          return std::nullopt;
        }
        if (info.optional) return std::nullopt;  // docs/mapping.md: `optional`, no warning
        Location where = Where(scope, field);
        issues_.Warning("mapping.unmapped_code", std::move(where),
                        "code not in table " + std::string(table->Text()) + "; element left out");
        return std::nullopt;
      }
      if (row->target_code.empty()) return std::nullopt;  // deliberately unmapped (table row)
      const Node* column = info.column;
      std::string_view col = column ? std::string_view(column->Text()) : "code";
      // emplace: one Node move (assigning an Out would move-assign its Node: two).
      value.emplace(Node::String(col == "display"  ? row->display
                                 : col == "system" ? row->target_system
                                                   : row->target_code),
                    true);
    }
    if (info.fn != nullptr) {
      const Function* fn = info.function;
      if (fn == nullptr) {
        RuleError("unknown function name in a rule");
        return std::nullopt;
      }
      // The arguments live on the stack for the usual few (a vector per call cost a malloc).
      const std::size_t count = (value ? 1 : 0) + (info.args != nullptr ? info.args->Size() : 0);
      std::array<Argument, kInlineArgs> inline_args;
      std::vector<Argument> heap_args;
      if (count > kInlineArgs) heap_args.resize(count);
      const std::span<Argument> args = count > kInlineArgs
                                           ? std::span<Argument>(heap_args)
                                           : std::span<Argument>(inline_args.data(), count);
      std::size_t n = 0;
      bool data = false;
      if (value) {
        args[n++].emplace(std::move(value->node));  // the value is not used after the call
        data = value->data;
      }
      if (const Node* more = info.args) {
        for (std::size_t k = 0; k < more->Size(); ++k) {
          auto v = Eval(more->Child(k), scope, ItemInfo(info, k));
          data = data || (v && v->data);
          if (v) args[n].emplace(std::move(v->node));
          ++n;
        }
      }
      FunctionContext ctx(rules_, options_, source_, msg_, issues_, source_.where, field,
                          scope.fhir_path, scope.index, scope.group_index);
      ctx.memo = &memo_;
      auto result = (*fn)(std::span<const Argument>(args.data(), args.size()), ctx);
      if (!result) return std::nullopt;
      return std::optional<Out>(std::in_place, std::move(*result), data);
    }
    return std::move(value);
  }

  std::optional<Out> EvalDatatype(const Compiled& info, Scope& scope) {
    // Site rules could make datatypes refer to each other in a cycle: stop instead of
    // overflowing the stack.
    if (datatype_depth_ >= kMaxDatatypeDepth) {
      RuleError("datatype rules nest too deeply (a cycle between datatype files?)");
      return std::nullopt;
    }
    struct DepthGuard {
      int& depth;
      explicit DepthGuard(int& d) : depth(d) { ++depth; }
      ~DepthGuard() { --depth; }
    } guard(datatype_depth_);
    const Node* tmpl = info.datatype_rule;
    if (tmpl == nullptr) {
      RuleError("unknown datatype rule");
      return std::nullopt;
    }
    static const std::optional<Path> kRelative = ParsePath("");
    const std::optional<Path>& path = info.path != nullptr ? info.parsed : kRelative;
    if (!path) {
      RuleError("malformed path in a rule");
      return std::nullopt;
    }
    auto base = ResolveBase(*path, scope);
    if (!base) return std::nullopt;
    if (!info.repeat) {
      // One repetition: its object is the value (no one-element array to build and unwrap).
      const std::optional<Base> outer_base = scope.base;
      scope.base = *base;
      auto v = info.datatype_info != nullptr ? EvalObject(*tmpl, *info.datatype_info, scope, false)
                                             : EvalObject(*tmpl, scope, false);
      scope.base = outer_base;
      if (v) v->data = true;
      return v;
    }
    const int last = msg_.RepetitionCount(base->segment, base->field);
    Out arr{Node::Array(), false};
    // Each repetition sets the base in the scope itself, put back afterwards (a Scope copy would
    // copy its fhir_path string per repetition).
    const std::optional<Base> outer_base = scope.base;
    for (int r = 1; r <= last; ++r) {
      scope.base = *base;
      scope.base->repetition = r;
      auto v = info.datatype_info != nullptr ? EvalObject(*tmpl, *info.datatype_info, scope, false)
                                             : EvalObject(*tmpl, scope, false);
      scope.base = outer_base;
      if (!v) continue;
      arr.data = true;
      arr.node.Push(std::move(v->node));
    }
    if (arr.node.Size() == 0) return std::nullopt;
    return arr;
  }

  // {"each": "TQ1", "template": {...}}: one element per segment of that id in the scope's group.
  std::optional<Out> EvalEach(const Compiled& info, std::string_view segment_id, Scope& scope) {
    const Node* tmpl = info.tmpl;
    if (tmpl == nullptr) return std::nullopt;
    Out arr{Node::Array(), false};
    // Each instance narrows the scope in place and the outer one is put back afterwards (a Scope
    // copy would copy its fhir_path string per segment).
    const std::size_t outer_segment = scope.segment;
    const SegId outer_id = scope.segment_id;
    const Node* outer_following = scope.following;
    const Node* outer_preceding = scope.preceding;
    const SegId each_id(segment_id);
    std::size_t from = outer_segment == kNone ? 0 : outer_segment + 1;
    for (std::size_t s = from; s < ids_.size(); ++s) {
      const SegId& id = ids_[s];
      if (outer_segment != kNone && id == outer_id) break;
      if (!(id == each_id)) continue;
      scope.segment = s;
      scope.segment_id = each_id;
      scope.following = nullptr;
      scope.preceding = nullptr;
      auto v = Eval(*tmpl, scope, info.tmpl_info);
      scope.segment = outer_segment;
      scope.segment_id = outer_id;
      scope.following = outer_following;
      scope.preceding = outer_preceding;
      if (!v) continue;
      arr.data = arr.data || v->data;
      // A template yielding several elements (every ODS-3 repetition) adds each of them: FHIR
      // has no arrays of arrays.
      if (v->node.IsArray()) {
        for (std::size_t i = 0; i < v->node.Size(); ++i) arr.node.Push(std::move(v->node.Child(i)));
      } else {
        arr.node.Push(std::move(v->node));
      }
    }
    if (arr.node.Size() == 0) return std::nullopt;
    return arr;
  }

  // {"ref": "Patient"}: the resource of that type planned for this message whose scope segment is
  // the nearest at or before ours; {"ref": "Observation", "all": true}: every one within our
  // group; {"ref": "*", "all": true}: every other resource. Types this message does not produce
  // (Patient in an order message) get the id their own rule computes at message level.
  std::optional<Out> EvalRef(const Compiled& info, std::string_view type, Scope& scope) {
    bool all = info.all;
    const bool any_type = Same(type, "*");
    auto ref = [](const Planned& p) {
      Node r = Node::Object();
      r.Append("reference", Node::String(p.reference));
      return r;
    };
    if (all) {
      Out arr{Node::Array(), false};
      std::size_t end = kNone;
      if (scope.segment != kNone && !any_type) {
        for (std::size_t s = scope.segment + 1; s < ids_.size(); ++s) {
          if (ids_[s] == scope.segment_id) {
            end = s;
            break;
          }
        }
      }
      for (const auto& p : planned_) {
        if (any_type) {
          if (scope.self_id != nullptr && p.id == *scope.self_id) continue;
        } else {
          if (!Same(p.type, type)) continue;
          if (scope.segment != kNone && p.segment != kNone &&
              (p.segment < scope.segment || (end != kNone && p.segment >= end))) {
            continue;
          }
        }
        arr.node.Push(ref(p));
      }
      if (arr.node.Size() == 0) return std::nullopt;
      return arr;
    }
    const Planned* best = nullptr;
    for (const auto& p : planned_) {
      if (!Same(p.type, type)) continue;
      if (best == nullptr) best = &p;
      if (scope.segment != kNone && p.segment != kNone && p.segment <= scope.segment &&
          (best->segment == kNone || best->segment > scope.segment || p.segment > best->segment)) {
        best = &p;
      }
    }
    if (best != nullptr) return Out{ref(*best), false};
    // The message-level id of a type depends on the message only: computed once per message
    // (every Observation of a lab message points at the same Patient), kept as the reference.
    auto cached = message_ids_.find(type);
    if (cached == message_ids_.end()) {
      const Node* rule_of_type = rules_.Resource(type);
      if (rule_of_type == nullptr) {
        RuleError("reference to a resource type without a rule");
        return std::nullopt;
      }
      Scope message_level;
      std::optional<std::string> reference = DataIdFor(*rule_of_type, message_level);
      if (reference) reference->insert(0, std::string(type) + "/");
      cached = message_ids_.emplace(type, std::move(reference)).first;
    }
    if (!cached->second) return std::nullopt;  // e.g. no PID: no patient to point at
    Node r = Node::Object();
    r.Append("reference", Node::String(*cached->second));
    return Out{std::move(r), false};
  }

  // ------------------------------------------------------------------ message access
  // The segment a path names, seen from the scope: the scope segment itself; a "following"
  // segment after it (before the next scope segment); a "preceding" segment before it (after the
  // previous scope segment: an order group without its own TQ1 must not read the previous
  // group's, HL7 v2.5 §4.4 OML^O33 / OMG^O19 ORC-TQ1-OBR); else the nearest one before it; else
  // the first in the message.
  std::size_t ResolveSegment(const Path& path, const Scope& scope) const {
    const SegId id = SegId::Packed(path.segment, path.segment_key);
    const std::size_t n = ids_.size();
    if (scope.segment != kNone) {
      if (id == scope.segment_id) return scope.segment;
      bool follows = false;
      if (scope.following != nullptr) {
        for (const auto& f : scope.following->Items()) follows = follows || SegId(f.Text()) == id;
      }
      if (follows) {
        for (std::size_t s = scope.segment + 1; s < n; ++s) {
          if (ids_[s] == scope.segment_id) break;
          if (ids_[s] == id) return s;
        }
        return kNone;
      }
      bool precedes = false;
      if (scope.preceding != nullptr) {
        for (const auto& f : scope.preceding->Items()) precedes = precedes || SegId(f.Text()) == id;
      }
      if (precedes) {
        for (std::size_t s = scope.segment; s-- > 0;) {
          if (ids_[s] == scope.segment_id) break;
          if (ids_[s] == id) return s;
        }
        return kNone;
      }
      for (std::size_t s = scope.segment; s-- > 0;) {
        if (ids_[s] == id) return s;
      }
    }
    for (std::size_t s = 0; s < n; ++s) {
      if (ids_[s] == id) return s;
    }
    return kNone;
  }

  std::optional<Base> ResolveBase(const Path& p, const Scope& scope) const {
    if (p.relative) {
      if (!scope.base) return std::nullopt;
      Base b = *scope.base;
      if (b.component == 0) b.component = p.component;
      return b;
    }
    Base b;
    b.segment = ResolveSegment(p, scope);
    if (b.segment == kNone) return std::nullopt;
    b.field = p.field;
    b.repetition = p.repetition > 0 ? p.repetition : 1;
    b.component = p.component;
    return b;
  }

  // `repetition` > 0 overrides an absolute path's own (a "repeat" rule reads every repetition;
  // a relative path always reads its base's repetition).
  std::string Read(const Path& p, const Scope& scope, int repetition = 0) {
    std::size_t segment;
    int field, rep, comp, sub;
    if (p.relative) {
      if (!scope.base) {
        RuleError("a relative path outside a datatype rule");
        return {};
      }
      const Base& b = *scope.base;
      segment = b.segment;
      field = b.field;
      rep = b.repetition;
      if (b.component == 0) {
        comp = p.component > 0 ? p.component : 1;
        sub = p.subcomponent > 0 ? p.subcomponent : 1;
      } else {
        comp = b.component;
        sub = p.component > 0 ? p.component : 1;
      }
    } else {
      segment = ResolveSegment(p, scope);
      if (segment == kNone) return {};
      field = p.field;
      rep = repetition > 0 ? repetition : p.repetition > 0 ? p.repetition : 1;
      comp = p.component > 0 ? p.component : 1;
      sub = p.subcomponent > 0 ? p.subcomponent : 1;
    }
    if (field <= 0) return {};
    touched_[segment] = 1;
    const std::size_t flag = used_first_[segment] + static_cast<std::size_t>(field);
    if (flag < used_first_[segment + 1]) used_[flag] = 1;
    return msg_.Value(segment, field, rep, comp, sub);
  }

  // MSH is consumed by framing, decoding and dispatch; segments the message rule lists under
  // "context" (the PID of an order message: the Patient comes from ADT-00) are not reported.
  void ReportUnused(const Node& message_rule) {
    const Node* context = message_rule.Find("context");
    const SegId msh("MSH");
    // Information issues the sink only counts are counted without a location or message.
    const bool keep = issues_.Keeps(Severity::kInformation);
    std::string field;
    // The "context" segment ids, packed once (compared per segment by key, not by text).
    std::vector<SegId> context_ids;
    if (context != nullptr) {
      for (const auto& c : context->Items()) context_ids.emplace_back(c.Text());
    }
    for (std::size_t s = 0; s < msg_.SegmentCount(); ++s) {
      if (ids_[s] == msh) continue;
      const std::string_view id = ids_[s].text;
      if (std::find(context_ids.begin(), context_ids.end(), ids_[s]) != context_ids.end()) {
        continue;
      }
      int fields = msg_.FieldCount(s);
      // MSH segments were skipped above (by packed id): no per-field test for them below.
      if (touched_[s] == 0) {
        bool has_data = false;
        for (int f = 1; f <= fields && !has_data; ++f) has_data = msg_.RepetitionCount(s, f) > 0;
        if (!has_data) continue;
        if (!keep) {
          issues_.CountOnly(Severity::kInformation, "mapping.unused_segment", id);
          continue;
        }
        Location where = source_.where;
        where.field = id;
        where.line = static_cast<std::int64_t>(s) + 1;
        issues_.Info("mapping.unused_segment", std::move(where), "no rule read this segment");
        continue;
      }
      for (int f = 1; f <= fields; ++f) {
        if (used_[used_first_[s] + static_cast<std::size_t>(f)] != 0) continue;
        if (msg_.RepetitionCount(s, f) == 0) continue;
        field.assign(id).append("-").append(std::to_string(f));
        if (!keep) {
          issues_.CountOnly(Severity::kInformation, "mapping.unused_field", field);
          continue;
        }
        Location where = source_.where;
        where.field = field;
        where.line = static_cast<std::int64_t>(s) + 1;
        issues_.Info("mapping.unused_field", std::move(where), "no rule read this field");
      }
    }
  }

  Location Where(const Scope& scope, std::string_view field) const {
    Location where = source_.where;
    where.field = std::string(field);
    where.fhir_path = scope.fhir_path;
    return where;
  }

  void RuleError(const char* what) {
    Location where = source_.where;
    issues_.Error("mapping.rule_error", std::move(where), what);
  }

  // The compiled facts of a rule object; objects the constructor did not reach (none with the
  // built-in rules) are compiled here once per message.
  const Compiled& Info(const Node& rule) {
    if (const Compiled* found = compiled_.Find(&rule)) return *found;
    auto [it, inserted] = extra_.try_emplace(&rule);
    if (inserted) it->second = Compile(rule, rules_);
    return it->second;
  }

  const RuleSet& rules_;
  const MapOptions& options_;
  const CompiledIndex& compiled_;
  std::unordered_map<const Node*, Compiled> extra_;
  const MessageView& msg_;
  const SourceInfo& source_;
  DedupSink dedup_;
  IssueSink& issues_;
  std::vector<Planned> planned_;
  MessageMemo memo_;  // what functions derive from the whole message (functions.hpp)
  // Per resource type without a planned instance: "Type/id" of its message-level id.
  std::map<std::string, std::optional<std::string>, std::less<>> message_ids_;
  std::vector<std::size_t> used_first_;  // per segment: its first flag in used_ (field 0)
  std::vector<std::uint8_t> used_;       // per segment, per field 0..FieldCount: read
  std::vector<std::uint8_t> touched_;    // per segment: some field read
  std::vector<SegId> ids_;               // the message's segment ids, by position
  static constexpr int kMaxDatatypeDepth = 16;
  static constexpr std::size_t kInlineArgs = 6;
  static constexpr std::size_t kFhirPathReserve = 128;
  static constexpr std::size_t kReserveAbove = 4;  // fhir::Node reserves 4 members by itself
  int datatype_depth_ = 0;
};

std::string Msh9(const MessageView& m) {
  for (std::size_t s = 0; s < m.SegmentCount(); ++s) {
    if (m.SegmentId(s) == "MSH") {
      std::string type = m.Value(s, 9, 1, 1, 1);
      std::string event = m.Value(s, 9, 1, 2, 1);
      return event.empty() ? type : type + "^" + event;
    }
  }
  return {};
}

}  // namespace

std::string_view ToString(ProfileSet profile) noexcept {
  return profile == ProfileSet::kJpCore120 ? "jp-core-1.2.0" : "jp-core-1.1.2";
}

MapResult Mapper::Map(const MessageView& message, const SourceInfo& source,
                      IssueSink& issues) const {
  std::string data_type = source.data_type;
  if (data_type.empty()) data_type = rules_.DataTypeForMessage(Msh9(message));
  const Node* rule = data_type.empty() ? nullptr : rules_.Message(data_type);
  Engine engine(rules_, options_, message, source, issues, compiled_->index, compiled_->id);
  MapResult result = engine.Run(rule != nullptr ? data_type : std::string(), rule);
  // Every Coding through the terminology service (coding_binder.hpp; issue #5).
  const CodingBinder binder(
      options_.terminology != nullptr ? options_.terminology->Registry()
                                      : terminology::CodeSystemRegistry::Builtin(),
      options_.terminology,
      options_.profile == ProfileSet::kJpCore120 ? terminology::ProfileSet::kJpCore120
                                                 : terminology::ProfileSet::kJpCore112);
  CodingBinder::MessageState state;
  for (auto& r : result.resources) binder.Bind(r.resource, source.where, issues, state);
  return result;
}

}  // namespace kakehashi::mapping
