#include "kakehashi/mapping/converter.hpp"

#include "extended_document.hpp"
#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/mapping/hl7v2_view.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <set>

namespace kakehashi::mapping {
namespace {

using adapters::ssmix2::Action;
using adapters::ssmix2::StoredFile;

// open, read, close: stored files are small, so one read into a per-thread buffer usually gets
// the whole file (a short read of a regular file is its end); no stream buffers, no stat.
// O_NOATIME: the first read of a freshly stored file would otherwise dirty its inode (relatime
// writes the access time when it is not newer than the modification time), one journalled
// inode update per message; refused (EPERM) for files the process does not own, then retried
// without.
bool ReadAll(const std::filesystem::path& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  thread_local std::array<char, 65536> buffer;
  out.clear();
  bool ok = true;
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    out.append(buffer.data(), static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < buffer.size()) break;
  }
  ::close(fd);
  return ok;
}

// MSH-4 of the patient's current ADT-00 file when it is a 10-digit 医療機関コード (the facility the
// Patient rule's patient_system takes without --facility). An extended-storage record sits at
// <ID>/<date>/<type folder>/<content folder>/<file>; ADT-00 at <ID>/-/ADT-00/<file>_1 (digest
// §2, §4). Empty when there is none. Deterministic: read from the store, not from what an
// earlier record of the run happened to be.
std::string StoreFacility(const std::filesystem::path& main_file) {
  const std::filesystem::path patient_dir =
      main_file.parent_path().parent_path().parent_path().parent_path();
  std::error_code ec;
  std::filesystem::directory_iterator it(patient_dir / "-" / "ADT-00", ec);
  if (ec) return {};
  std::string latest;  // the `_1` file with the greatest name (latest 発生日時)
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 2 && name.ends_with("_1") && name > latest) latest = name;
  }
  if (latest.empty()) return {};
  std::string bytes;
  if (!ReadAll(patient_dir / "-" / "ADT-00" / latest, bytes)) return {};
  NullSink quiet;
  auto parsed = adapters::hl7v2::Parse(bytes, {}, quiet);
  if (parsed.messages.empty()) return {};
  Hl7v2View view(parsed.messages.front());
  for (std::size_t s = 0; s < view.SegmentCount(); ++s) {
    if (view.SegmentId(s) != "MSH") continue;
    std::string f = view.Value(s, 4, 1, 1, 1);
    const bool digits =
        std::all_of(f.begin(), f.end(), [](char c) { return c >= '0' && c <= '9'; });
    return f.size() == 10 && digits ? f : std::string();
  }
  return {};
}

// Deep merge for Encounter versions (converter.hpp): `newer`'s members win, members it lacks
// keep `older`'s value; objects merge member by member, participants by role, other arrays and
// primitives are replaced.
void MergeInto(fhir::Node& older, const fhir::Node& newer) {
  for (std::size_t i = 0; i < newer.Size(); ++i) {
    const std::string_view key = newer.Key(i);
    const fhir::Node& value = newer.Child(i);
    fhir::Node* existing = older.Find(key);
    if (existing != nullptr && existing->IsObject() && value.IsObject()) {
      MergeInto(*existing, value);
    } else if (key == "participant" && existing != nullptr && existing->IsArray() &&
               value.IsArray()) {
      // Participants merge by role (Encounter.participant.type: ATND, ADM …): the A54's new
      // attending replaces the attending, the admitting doctor of the A01 stays.
      fhir::Node list = fhir::Node::Array();
      auto type_of = [](const fhir::Node& p) {
        const fhir::Node* t = p.Find("type");
        return t != nullptr ? fhir::WriteJson(*t) : std::string();
      };
      std::vector<bool> used(value.Size(), false);
      for (const auto& old_item : existing->Items()) {
        const std::string role = type_of(old_item);
        bool replaced = false;
        for (std::size_t j = 0; j < value.Size(); ++j) {
          if (!used[j] && type_of(value.Child(j)) == role) {
            list.Push(value.Child(j));
            used[j] = replaced = true;
          }
        }
        if (!replaced) list.Push(old_item);
      }
      for (std::size_t j = 0; j < value.Size(); ++j) {
        if (!used[j]) list.Push(value.Child(j));
      }
      older.Set(key, std::move(list));
    } else {
      older.Set(key, value);
    }
  }
}

// MSH-9.2 (trigger event) of a message; empty when absent.
std::string TriggerOf(const Hl7v2View& view) {
  for (std::size_t s = 0; s < view.SegmentCount(); ++s) {
    if (view.SegmentId(s) == "MSH") return view.Value(s, 9, 1, 2, 1);
  }
  return {};
}

// PID-3.1 of a message (first repetition, first component): the patient its patient-scoped ids
// derive from (OutputSink::MessagePatient).
std::string PatientOf(const Hl7v2View& view) {
  for (std::size_t s = 0; s < view.SegmentCount(); ++s) {
    if (view.SegmentId(s) == "PID") return view.Value(s, 3, 1, 1, 1);
  }
  return {};
}

// The merge time of an HL7 v2 message (OutputSink::EncounterVersion): MSH-7 (message date/time),
// else EVN-2 (recorded date/time), as 17 digits yyyyMMddHHmmssfff comparable with the SS-MIX2
// 発生日時: the DTM's digits up to the seconds padded with zeros, then up to 3 fraction digits;
// the time zone is ignored (JAHIS senders write local time). Empty when neither has a digit.
std::string MergeTime(const Hl7v2View& view) {
  std::string dtm;
  for (std::size_t s = 0; s < view.SegmentCount() && dtm.empty(); ++s) {
    if (view.SegmentId(s) == "MSH") dtm = view.Value(s, 7, 1, 1, 1);
  }
  for (std::size_t s = 0; s < view.SegmentCount() && dtm.empty(); ++s) {
    if (view.SegmentId(s) == "EVN") dtm = view.Value(s, 2, 1, 1, 1);
  }
  std::string out;
  std::size_t i = 0;
  while (i < dtm.size() && out.size() < 14 && dtm[i] >= '0' && dtm[i] <= '9') out += dtm[i++];
  if (out.empty()) return out;
  out.resize(14, '0');
  if (i < dtm.size() && dtm[i] == '.') ++i;
  while (i < dtm.size() && out.size() < 17 && dtm[i] >= '0' && dtm[i] <= '9') out += dtm[i++];
  out.resize(17, '0');
  return out;
}

}  // namespace

std::string_view CancelledTrigger(std::string_view trigger) noexcept {
  // HL7 v2.5 chapter 3 cancel events and the events they cancel (ADT-01/21/22/31/32/41/42/51/52
  // register / cancel pairs of digest §5; A11 also cancels A04, HL7 v2.5 §3.3.11).
  static constexpr std::pair<std::string_view, std::string_view> kPairs[] = {
      {"A11", "A01"}, {"A12", "A02"}, {"A13", "A03"}, {"A25", "A16"}, {"A26", "A15"},
      {"A27", "A14"}, {"A52", "A21"}, {"A53", "A22"}, {"A55", "A54"},
  };
  for (const auto& [cancel, cancelled] : kPairs) {
    if (trigger == cancel) return cancelled;
  }
  return {};
}

namespace {

// Where an ADT event stands in a stay (HL7 v2.5 chapter 3): pre-admission, admission, events
// during the stay, discharge; -1 for events outside that order (A08 …).
int StayRank(std::string_view trigger) noexcept {
  if (trigger == "A14" || trigger == "A27") return 0;
  if (trigger == "A01" || trigger == "A04" || trigger == "A11") return 1;
  if (trigger == "A03" || trigger == "A13") return 3;
  static constexpr std::string_view kDuring[] = {"A02", "A12", "A15", "A26", "A16", "A25",
                                                 "A21", "A52", "A22", "A53", "A54", "A55"};
  for (const auto t : kDuring) {
    if (trigger == t) return 2;
  }
  return -1;
}

}  // namespace

std::optional<fhir::Node> MergeEncounterVersions(const std::vector<VersionToMerge>& versions) {
  // HL7 v2 cancel messages withdraw the latest earlier version of the event they cancel (A13 the
  // A03, A12 the A02 …), as a deleted SS-MIX2 key withdraws its own (digest §3).
  std::vector<bool> withdrawn(versions.size(), false);
  for (std::size_t i = 0; i < versions.size(); ++i) {
    if (!versions[i].by_trigger) continue;
    const std::string_view cancelled = CancelledTrigger(versions[i].trigger);
    if (cancelled.empty()) continue;
    for (std::size_t j = i; j-- > 0;) {
      const std::string_view t = versions[j].trigger;
      if (!withdrawn[j] && (t == cancelled || (cancelled == "A01" && t == "A04"))) {
        withdrawn[j] = true;
        break;
      }
    }
  }
  const VersionToMerge* first = nullptr;
  const VersionToMerge* last = nullptr;
  bool live = false;
  std::size_t count = 0;
  fhir::Node merged;
  for (std::size_t i = 0; i < versions.size(); ++i) {
    if (withdrawn[i] || versions[i].resource == nullptr) continue;
    live = live || versions[i].live;
    // A cancel sets the stay's status only when nothing later in the stay than the event it
    // cancels is still there (decision 0013): an A13 reopens a discharged stay, but an A12 (or
    // an A27) ordered after the A03 (or the A01) reverses its own event and leaves the status.
    bool keep_status = true;
    if (const auto cancelled = CancelledTrigger(versions[i].trigger); !cancelled.empty()) {
      const int rank = StayRank(cancelled);
      for (std::size_t k = 0; k < versions.size() && keep_status; ++k) {
        if (k == i || withdrawn[k] || versions[k].resource == nullptr) continue;
        if (!CancelledTrigger(versions[k].trigger).empty()) continue;
        if (StayRank(versions[k].trigger) > rank) keep_status = false;
      }
    }
    if (first == nullptr) {
      first = &versions[i];
      merged = *versions[i].resource;
    } else if (keep_status) {
      MergeInto(merged, *versions[i].resource);
    } else {
      fhir::Node without_status = *versions[i].resource;
      without_status.Remove("status");
      MergeInto(merged, without_status);
    }
    last = &versions[i];
    ++count;
  }
  if (!live) return std::nullopt;
  if (count > 1) {
    // A stay that is not over has no end (HL7 0003 A13 cancels the discharge): the latest
    // status decides, an earlier A03's PV1-45 does not survive it.
    const fhir::Node* status = merged.Find("status");
    const bool over =
        status != nullptr && (status->Text() == "finished" || status->Text() == "cancelled");
    fhir::Node* period = merged.Find("period");
    const fhir::Node* latest_period = last->resource->Find("period");
    if (!over && period != nullptr &&
        (latest_period == nullptr || latest_period->Find("end") == nullptr)) {
      period->Remove("end");
      if (period->Size() == 0) merged.Remove("period");
    }
  }
  return merged;
}

bool Converter::PutMerged(OutputSink& out, const std::string& id) {
  auto it = encounter_versions_.find(id);
  if (it == encounter_versions_.end()) return false;
  std::vector<VersionToMerge> in_order;
  in_order.reserve(it->second.size());
  for (const auto& v : it->second) {
    in_order.push_back({&v.resource, v.trigger, v.by_trigger, v.live});
  }
  auto merged = MergeEncounterVersions(in_order);
  if (!merged) return false;
  out.Put("Encounter", id, std::move(*merged));
  return true;
}

void Converter::Emit(OutputSink& out, MappedResource&& r, const std::string& order,
                     const EncounterVersionInfo& info) {
  ++stats_.put_by_type[r.type];
  if (r.type != "Encounter") {
    out.Put(r.type, r.id, std::move(r.resource));
    return;
  }
  out.EncounterVersion(r.id, info, &r.resource);
  auto& versions = encounter_versions_[r.id];
  // Stable: an equal order key keeps processing order.
  auto at =
      std::upper_bound(versions.begin(), versions.end(), order,
                       [](const std::string& o, const EncounterVersion& v) { return o < v.order; });
  versions.insert(at, EncounterVersion{order, std::string(info.slot), std::string(info.trigger),
                                       info.by_trigger, info.live, std::move(r.resource)});
  PutMerged(out, r.id);
}

void Converter::Withdraw(OutputSink& out, MappedResource&& r, const std::string& order,
                         const EncounterVersionInfo& info, bool cancel, bool opening) {
  out.EncounterVersion(r.id, info, cancel ? &r.resource : nullptr);
  auto& versions = encounter_versions_[r.id];
  std::erase_if(versions, [&](const EncounterVersion& v) { return v.slot == info.slot; });
  if (cancel) {
    auto at = std::upper_bound(
        versions.begin(), versions.end(), order,
        [](const std::string& o, const EncounterVersion& v) { return o < v.order; });
    versions.insert(at, EncounterVersion{order, std::string(info.slot), std::string(info.trigger),
                                         false, false, std::move(r.resource)});
  }
  if (PutMerged(out, r.id)) {
    ++stats_.put_by_type["Encounter"];
  } else if (opening) {
    ++stats_.deleted_by_type["Encounter"];
    out.Delete("Encounter", r.id);
  }
}

std::size_t Converter::ConvertHl7(std::string_view bytes, const std::string& source,
                                  OutputSink& out, IssueSink& issues) {
  ++stats_.files;
  adapters::hl7v2::ParseOptions options;
  options.source = source;
  auto parsed = adapters::hl7v2::Parse(bytes, options, issues);
  if (parsed.messages.empty()) {
    ++stats_.unusable;
    return 0;
  }
  std::size_t count = 0;
  for (const auto& message : parsed.messages) {
    Hl7v2View view(message);
    SourceInfo info;
    info.kind = "hl7v2";
    info.file = source;
    info.message_index = static_cast<int>(message.IndexInSource()) + 1;
    info.where = message.LocationOf();
    MapResult result = mapper_.Map(view, info, issues);
    ++stats_.messages;
    if (!result.mapped) ++stats_.unmapped;
    // Merge order: the message time (MSH-7, else EVN-2), then the message sequence, so that the
    // messages of one stay merge alike in one input or over several imports.
    char sequence[24];
    std::snprintf(sequence, sizeof sequence, "%020zu", ++message_sequence_);
    const std::string when = MergeTime(view);
    const std::string order = when + sequence;
    char slot[24];
    std::snprintf(slot, sizeof slot, "%08d", info.message_index);
    EncounterVersionInfo version;
    version.when = when;
    version.slot = slot;
    const std::string trigger = TriggerOf(view);
    version.trigger = trigger;
    version.by_trigger = true;  // a cancel message withdraws what it cancels (converter.hpp)
    out.MessageTime(when);
    out.MessagePatient(PatientOf(view));
    for (auto& r : result.resources) Emit(out, std::move(r), order, version);
    ++count;
  }
  encounter_versions_.clear();  // merging spans one HL7 input (converter.hpp)
  return count;
}

Converter::Mapped Converter::MapFile(const StoredFile& file, IssueSink& issues, bool quiet) {
  Mapped mapped;
  NullSink null_sink;
  IssueSink& sink = quiet ? static_cast<IssueSink&>(null_sink) : issues;
  Location where;
  where.source = file.Source();  // root-relative; names the root when several (0017)
  where.record = file.name.data_type;
  // The bytes the SS-MIX2 walker already read (StorageReader::Preload), else read them here.
  std::string read;
  if (!file.content && !ReadAll(file.path, read)) {
    sink.Error("ssmix2.unreadable_file", where, "the stored file could not be read");
    return mapped;
  }
  const std::string_view bytes = file.content ? std::string_view(*file.content) : read;
  adapters::hl7v2::ParseOptions options;
  options.source = where.source;
  auto parsed = adapters::hl7v2::Parse(bytes, options, sink);
  if (parsed.messages.empty()) {
    sink.Error("hl7v2.no_message", where, "the stored file holds no usable HL7 v2 message");
    return mapped;
  }
  for (const auto& message : parsed.messages) {
    Hl7v2View view(message);
    SourceInfo info;
    info.kind = "ssmix2";
    info.file = file.relative;
    info.data_type = file.name.data_type;
    info.message_index = static_cast<int>(message.IndexInSource()) + 1;
    info.where = message.LocationOf();
    MapResult result = mapper_.Map(view, info, sink);
    if (mapped.trigger.empty()) mapped.trigger = TriggerOf(view);
    if (std::string patient = PatientOf(view);
        std::find(mapped.patients.begin(), mapped.patients.end(), patient) ==
        mapped.patients.end()) {
      mapped.patients.push_back(std::move(patient));
    }
    if (!quiet) {
      ++stats_.messages;
      if (!result.mapped) ++stats_.unmapped;
    }
    if (mapped.resources.empty()) {
      mapped.resources = std::move(result.resources);  // the usual one message per file
    } else {
      for (auto& r : result.resources) mapped.resources.push_back(std::move(r));
    }
  }
  mapped.ok = true;
  return mapped;
}

void Converter::ConvertExtended(const adapters::ssmix2::StorageRecord& record, OutputSink& out,
                                IssueSink& issues) {
  ++stats_.files;
  // The Patient id must be the one ADT-00 yields: with --facility that facility; without it the
  // MSH-4 of the patient's ADT-00 in the same store (functions.cpp FacilityCode).
  std::string facility = mapper_.Options().facility_code;
  if (facility.empty()) facility = StoreFacility(record.file.path);
  const std::string system = PatientSystem(facility);
  const std::string id = ExtendedDocumentId(record, system);
  if (record.action == Action::kDelete) {
    // The content folder was renamed `…_0` (digest §3): the document is withdrawn.
    ++stats_.deleted_by_type["DocumentReference"];
    out.Delete("DocumentReference", id);
    return;
  }
  Location where;
  where.source = record.file.Source();
  std::size_t unreadable = 0;
  bool cda_unreadable = false;
  auto document = ExtendedDocument(record, system, &unreadable, &cda_unreadable);
  if (cda_unreadable) {
    issues.Warning("ssmix2.cda_unreadable", where,
                   "the main .xml file of the extended-storage content folder is not well-formed "
                   "XML: the document is kept as an attachment without its CDA header data");
  }
  if (unreadable > 0) {
    issues.Error("ssmix2.unreadable_file", where,
                 "a file of the extended-storage content folder could not be read; the document "
                 "is kept without it");
  }
  if (!document) {
    ++stats_.unusable;
    return;
  }
  ++stats_.put_by_type["DocumentReference"];
  out.Put("DocumentReference", id, std::move(*document));
  // Like every mapped message, the document gets a Provenance pointing at its source.
  if (auto provenance = ExtendedProvenance(record, id)) {
    ++stats_.put_by_type["Provenance"];
    out.Put("Provenance", ExtendedProvenanceId(record), std::move(*provenance));
  }
  // main_document.hl7 (NHO vitals ORU^R30): also through the HL7 v2 path when a message rule
  // maps its type; otherwise the DocumentReference above already keeps it whole.
  if (record.extended_files.empty() || record.extended_files.front() != "main_document.hl7") {
    return;
  }
  std::string bytes;
  if (!ReadAll(record.file.path, bytes)) return;  // reported above
  NullSink parse_issues;  // the message was kept whole; a parse problem is not lost data
  adapters::hl7v2::ParseOptions options;
  options.source = where.source;
  auto parsed = adapters::hl7v2::Parse(bytes, options, parse_issues);
  for (const auto& message : parsed.messages) {
    Hl7v2View view(message);
    SourceInfo info;
    info.kind = "ssmix2";
    info.file = record.file.relative + "/main_document.hl7";
    info.message_index = static_cast<int>(message.IndexInSource()) + 1;
    info.where = message.LocationOf();
    CollectingSink collected;
    MapResult result = mapper_.Map(view, info, collected);
    if (!result.mapped) continue;
    for (const auto& issue : collected.Issues()) issues.Report(issue);
    ++stats_.messages;
    for (auto& r : result.resources) {
      ++stats_.put_by_type[r.type];
      out.Put(r.type, r.id, std::move(r.resource));
    }
  }
}

void Converter::ConvertRecord(const adapters::ssmix2::StorageRecord& record, OutputSink& out,
                              IssueSink& issues) {
  if (record.file.name.patient_id != versions_patient_) {
    encounter_versions_.clear();  // Encounter ids never span patients (converter.hpp)
    versions_patient_ = record.file.name.patient_id;
  }
  // Merge order of Encounter versions: 発生日時 (storing time, digest §2), then processing order.
  char sequence[24];
  std::snprintf(sequence, sizeof sequence, "%020zu", ++message_sequence_);
  const std::string order = record.file.name.stored_at + sequence;
  out.MessageTime(record.file.name.stored_at);
  if (!record.extended_type.empty()) {
    ConvertExtended(record, out, issues);
    return;
  }
  ++stats_.files;
  Mapped current = MapFile(record.file, issues, false);
  if (!current.ok) {
    ++stats_.unusable;
    return;
  }
  for (const std::string& patient : current.patients) out.MessagePatient(patient);
  const std::string slot = record.file.name.Key();
  EncounterVersionInfo version;
  version.when = record.file.name.stored_at;
  version.slot = slot;
  version.trigger = current.trigger;
  if (record.action == Action::kDelete) {
    // A deleted key: everything its message produced goes away (its Provenance stays history),
    // except the stay's Encounter, which other ADT keys feed too: the key withdraws only its own
    // version, and a cancel message in its flag-0 file (A13 for ADT-52, A55 for ADT-01 …; digest
    // §3: cancel triggers count as deletions of the data type they cancel) takes its place, so
    // the stay gets the JIG's cancel target (§5: A13 in-progress, A11 cancelled, A12 the ward
    // before the transfer, HL7 v2.5 §3.3.12). DELETE only when no live version is left and the
    // key opened the stay (ADT-12 外来受付, ADT-21 入院予定, ADT-22 入院実施).
    const bool cancel = !CancelledTrigger(current.trigger).empty();
    const std::string_view code = record.type != nullptr ? record.type->code : std::string_view();
    const bool opening = code == "ADT-12" || code == "ADT-21" || code == "ADT-22";
    version.live = false;
    for (auto& r : current.resources) {
      if (r.type == "Provenance") continue;
      if (r.type == "Encounter") {
        Withdraw(out, std::move(r), order, version, cancel, opening);
        continue;
      }
      ++stats_.deleted_by_type[r.type];
      out.Delete(r.type, r.id);
    }
    return;
  }
  if (record.type != nullptr && record.type->snapshot && record.Previous() != nullptr) {
    std::set<std::string> now;
    for (const auto& r : current.resources) now.insert(r.type + "/" + r.id);
    ++stats_.files;
    Mapped previous = MapFile(*record.Previous(), issues, true);
    for (const std::string& patient : previous.patients) out.MessagePatient(patient);
    for (const auto& r : previous.resources) {
      if (r.type == "Provenance" || now.count(r.type + "/" + r.id) != 0) continue;
      ++stats_.deleted_by_type[r.type];
      out.Delete(r.type, r.id);
    }
  }
  for (auto& r : current.resources) Emit(out, std::move(r), order, version);
}

}  // namespace kakehashi::mapping
