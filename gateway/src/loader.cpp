#include "kakehashi/gateway/loader.hpp"

#include "detail/json.hpp"
#include "kakehashi/common/errc.hpp"

#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

namespace kakehashi::gateway {

namespace {

using detail::Json;

struct Pending {
  std::string entry;  // rendered Bundle entry
  Location where;
};

class Loader {
 public:
  Loader(const Handler& handler, IssueSink& issues, std::size_t chunk)
      : handler_(handler), issues_(issues), chunk_(std::max<std::size_t>(1, chunk)) {}

  void Add(const Json& resource, Location where) {
    std::string_view type = resource.Str("resourceType");
    std::string_view id = resource.Str("id");
    std::string entry = "{\"resource\":";
    detail::WriteJson(resource, entry);
    entry += ",\"request\":{\"method\":\"";
    entry += id.empty() ? "POST" : "PUT";
    entry += "\",\"url\":";
    std::string url(type);
    if (!id.empty()) {
      url += '/';
      url += id;
    }
    detail::AppendJsonString(url, entry);
    entry += "}}";
    pending_.push_back({std::move(entry), std::move(where)});
    if (pending_.size() >= chunk_) Flush();
  }

  void PostBundle(const std::string& body, const Location& where) {
    Request r;
    r.method = "POST";
    r.target = "/fhir";
    r.body = body;
    r.headers.emplace_back("Content-Type", "application/fhir+json");
    Response resp = handler_.Handle(r);
    if (resp.status != 200) {
      Reject(where, resp.status);
      return;
    }
    Json b;
    detail::JsonError e;
    if (detail::ParseJson(resp.body, b, e)) {
      if (const Json* entries = b.Find("entry")) {
        for (const Json& entry : entries->Items()) {
          const Json* response = entry.Find("response");
          std::string_view status = response != nullptr ? response->Str("status") : "";
          if (status.starts_with("2")) {
            ++stats_.resources;
          } else {
            Reject(where, std::atoi(std::string(status).c_str()));
          }
        }
      }
    }
  }

  void Flush() {
    if (pending_.empty()) return;
    auto build = [&](std::string_view type) {
      std::string body = "{\"resourceType\":\"Bundle\",\"type\":\"";
      body += type;
      body += "\",\"entry\":[";
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        if (i > 0) body += ',';
        body += pending_[i].entry;
      }
      body += "]}";
      return body;
    };
    Request r;
    r.method = "POST";
    r.target = "/fhir";
    r.body = build("transaction");
    r.headers.emplace_back("Content-Type", "application/fhir+json");
    Response resp = handler_.Handle(r);
    if (resp.status == 200) {
      stats_.resources += pending_.size();
    } else {
      // Find the bad ones: every entry on its own.
      r.body = build("batch");
      Response batch = handler_.Handle(r);
      Json b;
      detail::JsonError e;
      if (batch.status == 200 && detail::ParseJson(batch.body, b, e) &&
          b.Find("entry") != nullptr) {
        const auto& items = b.Find("entry")->Items();
        for (std::size_t i = 0; i < items.size() && i < pending_.size(); ++i) {
          const Json* response = items[i].Find("response");
          std::string_view status = response != nullptr ? response->Str("status") : "";
          if (status.starts_with("2")) {
            ++stats_.resources;
          } else {
            Reject(pending_[i].where, std::atoi(std::string(status).c_str()));
          }
        }
      } else {
        for (const auto& p : pending_) Reject(p.where, resp.status);
      }
    }
    pending_.clear();
  }

  void Reject(const Location& where, int status) {
    ++stats_.rejected;
    issues_.Error("gateway.load.rejected", where,
                  "the server refused this resource with HTTP status " + std::to_string(status) +
                      "; load it with POST to see the OperationOutcome");
  }

  void File(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    Location where;
    where.source = file.string();
    if (!in) {
      issues_.Error("gateway.load.unreadable", where, "cannot read the file");
      return;
    }
    ++stats_.files;
    if (file.extension() == ".ndjson") {
      std::string line;
      std::int64_t n = 0;
      while (std::getline(in, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        Json resource;
        detail::JsonError e;
        Location at = where;
        at.line = n;
        if (!detail::ParseJson(line, resource, e) || !resource.IsObject()) {
          at.byte = static_cast<std::int64_t>(e.offset);
          issues_.Error("gateway.load.bad_json", at, "not a JSON resource: " + e.message);
          ++stats_.rejected;
          continue;
        }
        Add(resource, at);
      }
      return;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    Json resource;
    detail::JsonError e;
    if (!detail::ParseJson(text, resource, e) || !resource.IsObject()) {
      where.byte = static_cast<std::int64_t>(e.offset);
      issues_.Error("gateway.load.bad_json", where, "not a JSON resource: " + e.message);
      ++stats_.rejected;
      return;
    }
    if (resource.Str("resourceType") == "Bundle") {
      std::string_view type = resource.Str("type");
      if (type == "transaction" || type == "batch") {
        Flush();
        PostBundle(text, where);
        return;
      }
      if (const Json* entries = resource.Find("entry"); entries != nullptr && entries->IsArray()) {
        std::int64_t i = 0;
        for (const Json& entry : entries->Items()) {
          Location at = where;
          at.record = "entry " + std::to_string(i++);
          if (const Json* r = entry.Find("resource"); r != nullptr && r->IsObject()) Add(*r, at);
        }
        return;
      }
    }
    Add(resource, where);
  }

  LoadStats Finish() {
    Flush();
    return stats_;
  }

 private:
  const Handler& handler_;
  IssueSink& issues_;
  std::size_t chunk_;
  std::vector<Pending> pending_;
  LoadStats stats_;
};

}  // namespace

Result<LoadStats> LoadPath(const Handler& handler, const std::filesystem::path& path,
                           IssueSink& issues, std::size_t chunk) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return make_error_code(common::errc::kNotFound);
  Loader loader(handler, issues, chunk);
  if (std::filesystem::is_directory(path, ec)) {
    std::vector<std::filesystem::path> files;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      auto ext = it->path().extension();
      if (ext == ".json" || ext == ".ndjson") files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());  // deterministic order
    for (const auto& f : files) loader.File(f);
  } else {
    loader.File(path);
  }
  auto stats = loader.Finish();
  // Loading allocates and frees a Bundle's worth of JSON per chunk; hand the freed heap back so
  // a server that loaded at start idles small (glibc keeps it otherwise).
  malloc_trim(0);
  return stats;
}

}  // namespace kakehashi::gateway
