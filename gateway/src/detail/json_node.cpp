#include "detail/json_node.hpp"

#include <utility>

namespace kakehashi::gateway::detail {

// Recursion depth is the tree's: at most ParseJson's max_depth for parsed input, a few levels
// more for what the handler adds (meta).
fhir::Node ToNode(Json&& value) {
  switch (value.kind()) {
    case Json::Kind::kNull: return fhir::Node();
    case Json::Kind::kBool: return fhir::Node::Bool(value.AsBool());
    case Json::Kind::kNumber: return fhir::Node::Number(value.ReleaseText());
    case Json::Kind::kString: return fhir::Node::String(value.ReleaseText());
    case Json::Kind::kObject: {
      fhir::Node out = fhir::Node::Object();
      auto& members = value.Members();
      out.ReserveMembers(members.size());
      // Member names are unique in a Json object (the reader rejects repeats, Set replaces), so
      // Append needs no lookup.
      for (auto& [key, member] : members) out.Append(std::move(key), ToNode(std::move(member)));
      return out;
    }
    case Json::Kind::kArray: {
      fhir::Node out = fhir::Node::Array();
      for (Json& item : value.Items()) out.Push(ToNode(std::move(item)));
      return out;
    }
  }
  return fhir::Node();
}

}  // namespace kakehashi::gateway::detail
