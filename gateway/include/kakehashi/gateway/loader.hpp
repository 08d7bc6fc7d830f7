// Bulk loading of FHIR JSON into a gateway (`kakehashi serve --load`), through Handler so every
// resource is validated and indexed exactly as if it had been POSTed.
//
// Accepted inputs: a file holding one resource, a Bundle (transaction/batch Bundles are posted
// as they are; other Bundle types contribute their entries' resources), NDJSON (one resource per
// line, *.ndjson), or a directory searched recursively for *.json and *.ndjson. Resources with an
// id are PUT (idempotent replays), others POSTed. They are sent as transaction Bundles of `chunk`
// entries; a chunk that fails is retried as a batch so one bad resource costs only itself.
//
// Issues (never values): gateway.load.unreadable (file), gateway.load.bad_json (line),
// gateway.load.rejected (a resource the server refused, with the HTTP status).
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"
#include "kakehashi/gateway/handler.hpp"

#include <cstddef>
#include <filesystem>

namespace kakehashi::gateway {

struct LoadStats {
  std::size_t files = 0;
  std::size_t resources = 0;  // stored
  std::size_t rejected = 0;
};

// Errors: common::errc::kNotFound when `path` does not exist.
Result<LoadStats> LoadPath(const Handler& handler, const std::filesystem::path& path,
                           IssueSink& issues, std::size_t chunk = 1000);

}  // namespace kakehashi::gateway
