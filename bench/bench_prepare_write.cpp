// bench_prepare_write [SECONDS [NAME]]
//
// What a write costs the io thread that prepares it: `kakehashi serve` runs
// Handler::PrepareRequest of a PUT or POST [base]/Type on the io thread that read it (JSON
// parse, checks, conformance/ validation as serve wires it, serialisation, index rows), while
// a Bundle is prepared on a reader thread (decision 0027) and a cached read by id costs the io
// thread a few microseconds. Prints, per body, its size and the thread CPU time per
// PrepareRequest (CLOCK_THREAD_CPUTIME_ID: independent of other load on the machine, apart from
// cache effects), each body repeated for about SECONDS (default 1) of CPU. The bodies: a
// Patient as bench_gateway.sh loads them, Observations with 10 and 100 components, a Binary of
// 64 KiB and 1 MiB of base64 data, and for comparison the 100-Observation transaction Bundle of
// bench_gateway.sh (prepared on a reader thread by the server). No store access is timed
// (PrepareRequest needs none; an in-memory SQLite store backs the handler). NAME: only the
// bodies whose name contains it (for a profiler).
#include "kakehashi/conformance/validator.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/gateway/handler.hpp"
#include "kakehashi/gateway/store/store.hpp"

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace {

double ThreadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

std::string Patient() {
  return R"({"resourceType":"Patient","id":"p0","identifier":[{"system":"urn:oid:1.2.392.100495.20.3.51.11311234567","value":"00000000"}],)"
         R"("name":[{"use":"official","text":"佐藤 太郎","family":"佐藤","given":["太郎"]},)"
         R"({"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation","valueCode":"SYL"}],)"
         R"("text":"サトウ タロウ","family":"サトウ","given":["タロウ"]}],"gender":"male","birthDate":"1980-04-01"})";
}

std::string Quantity(int i) {
  return R"({"value":)" + std::to_string(100 + i) +
         R"(,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"})";
}

std::string Observation(int components) {
  std::string out =
      R"({"resourceType":"Observation","id":"o1","status":"final",)"
      R"("code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},)"
      R"("subject":{"reference":"Patient/p0"},"effectiveDateTime":"2026-11-30T09:00:00+09:00")";
  if (components > 0) {
    out += R"(,"component":[)";
    for (int i = 0; i < components; ++i) {
      if (i > 0) out += ',';
      out += R"({"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},)"
             R"("valueQuantity":)" +
             Quantity(i) + "}";
    }
    out += ']';
  }
  out += '}';
  return out;
}

std::string Binary(std::size_t data_bytes) {
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string data;
  data.reserve(data_bytes);
  for (std::size_t i = 0; i < data_bytes; ++i) data += kB64[(i * 7 + i / 64) % 64];
  return R"({"resourceType":"Binary","id":"b1","contentType":"application/pdf","data":")" + data +
         "\"}";
}

std::string TransactionBundle(int n) {
  std::string out = R"({"resourceType":"Bundle","type":"transaction","entry":[)";
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    char uuid[64];
    std::snprintf(uuid, sizeof uuid, "urn:uuid:00000000-0000-4000-8000-%012d", i);
    out += R"({"fullUrl":")" + std::string(uuid) +
           R"(","resource":{"resourceType":"Observation","status":"final",)"
           R"("code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},)"
           R"("subject":{"reference":"Patient/p)" +
           std::to_string(i) +
           R"("},"effectiveDateTime":"2026-11-30T09:00:00+09:00","valueQuantity":)" + Quantity(i) +
           R"(},"request":{"method":"POST","url":"Observation"}})";
  }
  out += "]}";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kakehashi;
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const std::string only = argc > 2 ? argv[2] : "";
  auto store = gateway::store::OpenStore("sqlite::memory:");
  if (!store) {
    std::fprintf(stderr, "bench_prepare_write: cannot open an in-memory store\n");
    return 2;
  }
  // As `kakehashi serve` wires it (gateway/app/cmd_serve.cpp).
  conformance::ValidatorOptions validator_options;
  validator_options.check_references = false;
  auto validator = std::make_shared<conformance::Validator>(validator_options);
  gateway::HandlerOptions options;
  options.node_validator = [validator](const fhir::Node& resource, IssueSink& issues) {
    validator->Validate(resource, issues);
  };
  gateway::Handler handler(**store, options);
  struct Case {
    const char* name;
    const char* method;
    const char* target;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"PUT Patient (bench_gateway.sh)", "PUT", "/fhir/Patient/p0", Patient()},
      {"PUT Observation, 10 components", "PUT", "/fhir/Observation/o1", Observation(10)},
      {"PUT Observation, 100 components", "PUT", "/fhir/Observation/o1", Observation(100)},
      {"POST Observation, 100 components", "POST", "/fhir/Observation", Observation(100)},
      {"PUT Binary, 64 KiB data", "PUT", "/fhir/Binary/b1", Binary(64 * 1024)},
      {"PUT Binary, 1 MiB data", "PUT", "/fhir/Binary/b1", Binary(1024 * 1024)},
      {"POST transaction, 100 Observations", "POST", "/fhir", TransactionBundle(100)},
  };
  std::printf("%-36s %10s %10s %14s %12s\n", "body", "bytes", "runs", "CPU/request us",
              "us per KiB");
  for (const Case& c : cases) {
    if (std::string(c.name).find(only) == std::string::npos) continue;
    gateway::Request request;
    request.method = c.method;
    request.target = c.target;
    request.headers = {{"Content-Type", "application/fhir+json"}};
    request.body = c.body;
    {
      auto first = handler.PrepareRequest(request);
      if (auto* r = std::get_if<gateway::Response>(&first)) {
        std::fprintf(stderr, "bench_prepare_write: %s answered %d: %s\n", c.name, r->status,
                     r->body.c_str());
        return 1;
      }
    }
    int runs = 0;
    const double t0 = ThreadCpuSeconds();
    double t = t0;
    while (t - t0 < seconds || runs < 3) {
      auto prepared = handler.PrepareRequest(request);
      if (!std::holds_alternative<std::unique_ptr<gateway::PreparedRequest>>(prepared)) return 1;
      ++runs;
      t = ThreadCpuSeconds();
    }
    const double us = (t - t0) * 1e6 / runs;
    std::printf("%-36s %10zu %10d %14.1f %12.2f\n", c.name, c.body.size(), runs, us,
                us * 1024.0 / static_cast<double>(c.body.size()));
  }
  return 0;
}
