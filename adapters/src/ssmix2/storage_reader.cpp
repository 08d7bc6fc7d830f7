#include "kakehashi/adapters/ssmix2/storage_reader.hpp"

#include "kakehashi/adapters/ssmix2/batch_read.hpp"
#include "kakehashi/common/errc.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <map>
#include <system_error>

namespace kakehashi::adapters::ssmix2 {
namespace fs = std::filesystem;
namespace {

using common::errc;

// Location of an issue about a stored file: root-relative path (operator-facing; see
// docs/decisions/0003-ssmix2-issue-locations.md; IssueSource) and the data type as the record.
Location FileLocation(std::string_view root, std::string_view relative,
                      std::string_view data_type) {
  Location where;
  where.source = IssueSource(root, relative);
  where.record = data_type;
  return where;
}

// An open directory, closed when it goes out of scope.
class DirFd {
 public:
  DirFd() = default;
  explicit DirFd(int fd) : fd_(fd) {}
  DirFd(const DirFd&) = delete;
  DirFd& operator=(const DirFd&) = delete;
  ~DirFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// Opens the directory `name` relative to the open directory `at` (AT_FDCWD: the working
// directory), so that the walk resolves one path component per folder instead of the whole path
// from the root each time. O_NOATIME spares listing a folder the inode write of its access time
// (relatime still writes it on the first listing after a change); the kernel refuses it (EPERM)
// on folders the process does not own, then the folder is opened without it.
DirFd OpenDir(int at, const char* name) {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  int fd = ::openat(at, name, kFlags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(at, name, kFlags);
  return DirFd(fd);
}

// Opens the stored file `name` in the open directory `dir` for StorageReader::Preload: -1 when it
// cannot be opened (the caller then reads it by path and reports the problem as it always did).
// O_NOATIME as in OpenDir; O_NONBLOCK so that a FIFO with a stored file's name cannot stall the
// walk (no effect on regular files).
int OpenFileAt(int dir, const char* name) {
  constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
  int fd = ::openat(dir, name, kFlags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(dir, name, kFlags);
  return fd;
}

// Stored files opened for reading and not yet read (StorageReader::Preload during the walk,
// StorageReader::Load after it): read together (one BatchFileReader submission, in inode order)
// when Flush is called or kMaxBatch are open, and closed in any case. `slot(file)` is the
// StoredFile that receives the bytes of the file Add was given the number `file` for.
template <class Slot>
class PendingReads {
 public:
  PendingReads(Slot slot, bool io_uring) : slot_(std::move(slot)), io_uring_(io_uring) {}
  PendingReads(const PendingReads&) = delete;
  PendingReads& operator=(const PendingReads&) = delete;
  ~PendingReads() { Close(); }

  // Opens `name` (inode `ino`) relative to the open directory `dir` (AT_FDCWD: a path) as file
  // number `file`; one that cannot be opened is left to the caller.
  void Add(int dir, const char* name, std::uint64_t ino, std::size_t file) {
    const int fd = OpenFileAt(dir, name);
    if (fd < 0) return;
    pending_.push_back({ino, fd, file});
    if (pending_.size() == BatchFileReader::kMaxBatch) Flush();
  }

  void Flush() {
    if (pending_.empty()) return;
    // Inode order: a file system numbers the files of a folder tree in creation order and puts
    // their blocks in about the same order, so the batch reaches the disk as ascending blocks.
    std::sort(pending_.begin(), pending_.end(),
              [](const Pending& a, const Pending& b) { return a.ino < b.ino; });
    fds_.clear();
    for (const auto& p : pending_) fds_.push_back(p.fd);
    if (io_uring_) {
      thread_local BatchFileReader reader;  // one ring per thread, set up on first use
      reader.Read(fds_, StorageReader::kPreloadMax, contents_);
    } else {
      contents_.clear();
      for (int fd : fds_)
        contents_.push_back(BatchFileReader::ReadOne(fd, StorageReader::kPreloadMax));
    }
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      slot_(pending_[i].file).content = std::move(contents_[i]);
    }
    Close();
  }

 private:
  void Close() {
    for (const auto& p : pending_) ::close(p.fd);
    pending_.clear();
  }

  struct Pending {
    std::uint64_t ino;
    int fd;
    std::size_t file;
  };
  Slot slot_;
  const bool io_uring_;
  std::vector<Pending> pending_;
  std::vector<int> fds_;
  std::vector<std::optional<std::string>> contents_;
};

// Sorted names of the entries of the open directory `dir`. Directories go to `dirs`, everything
// else to `files` (and, when `file_inos` is given, their inode numbers, in the same order).
// getdents64 with the entry type from the directory itself (a stat only where the file system
// does not say): the walk lists about one folder per stored file, so the usual opendir extras
// (fstat, fcntl) are worth saving.
Result<void> List(const DirFd& dir, std::vector<std::string>& dirs, std::vector<std::string>* files,
                  std::vector<ino64_t>* file_inos = nullptr) {
  dirs.clear();
  if (files != nullptr) files->clear();
  if (file_inos != nullptr) file_inos->clear();
  const int fd = dir.get();
  if (fd < 0) return make_error_code(errc::kIoError);
  alignas(dirent64) char buffer[32768];
  std::vector<std::pair<std::string, ino64_t>> named;  // files with inodes (file_inos given)
  while (true) {
    const ssize_t n = ::getdents64(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error_code(errc::kIoError);
    if (n == 0) break;
    for (ssize_t at = 0; at < n;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer + at);
      at += entry->d_reclen;
      const char* name = entry->d_name;
      if (name[0] == '.') continue;  // ".", "..", editor and OS litter (.DS_Store, .git)
      bool is_dir = entry->d_type == DT_DIR;
      if (entry->d_type == DT_UNKNOWN || entry->d_type == DT_LNK) {
        struct stat st {};
        is_dir = ::fstatat(fd, name, &st, 0) == 0 && S_ISDIR(st.st_mode);
      }
      if (is_dir) {
        dirs.emplace_back(name);
      } else if (file_inos != nullptr) {
        named.emplace_back(name, entry->d_ino);
      } else if (files != nullptr) {
        files->emplace_back(name);
      }
    }
  }
  std::sort(dirs.begin(), dirs.end());
  if (file_inos != nullptr) {
    std::sort(named.begin(), named.end());
    for (auto& [name, ino] : named) {
      if (files != nullptr) files->push_back(std::move(name));
      file_inos->push_back(ino);
    }
  } else if (files != nullptr) {
    std::sort(files->begin(), files->end());
  }
  return {};
}

// The same for a directory given by its path.
Result<void> List(const fs::path& dir, std::vector<std::string>& dirs,
                  std::vector<std::string>* files) {
  return List(OpenDir(AT_FDCWD, dir.c_str()), dirs, files);
}

// An extended-storage content folder name (digest §3): the 7 fields of a standardized file name
// (NHO's text), or 6 without 診療科 (NHO's samples), the 特定キー in place of the オーダNo.
std::optional<FileName> ParseContentFolderName(std::string_view name) {
  if (auto parsed = ParseFileName(name)) return parsed;
  if (std::count(name.begin(), name.end(), '_') != 5) return std::nullopt;
  const std::size_t last = name.rfind('_');
  std::string seven(name.substr(0, last));
  seven += "_-";
  seven += name.substr(last);
  return ParseFileName(seven);
}

bool Later(const StoredFile& a, const StoredFile& b) {
  if (a.name.stored_at != b.name.stored_at) return a.name.stored_at > b.name.stored_at;
  return a.relative > b.relative;
}

}  // namespace

std::string IssueSource(std::string_view root, std::string_view relative) {
  std::string source = "ssmix2:";
  if (!root.empty()) {
    source += root;
    source += '/';
  }
  source += relative;
  return source;
}

std::string StoredFile::Source() const {
  return IssueSource(root, relative);
}

StorageReader::StorageReader(fs::path root, IssueSink& issues)
    : root_(std::move(root)), issues_(issues) {}

void StorageReader::Resolve(std::vector<StoredFile> files, IssueSink& issues,
                            std::vector<StorageRecord>& out, ReaderStats* stats, bool extended) {
  std::map<std::string, std::vector<StoredFile>> groups;
  for (auto& f : files) {
    std::string key = f.name.Key();
    groups[key].push_back(std::move(f));
  }
  for (auto& [key, group] : groups) {
    const std::string type_code = group.front().name.data_type;
    std::vector<StoredFile> current, deleted, history;
    for (auto& f : group) {
      switch (f.name.flag) {
        case Flag::kCurrent: current.push_back(std::move(f)); break;
        case Flag::kDeleted: deleted.push_back(std::move(f)); break;
        case Flag::kSuperseded: history.push_back(std::move(f)); break;
      }
    }
    auto newest_first = [](std::vector<StoredFile>& v) {
      std::sort(v.begin(), v.end(),
                [](const StoredFile& a, const StoredFile& b) { return Later(a, b); });
    };
    newest_first(current);
    newest_first(deleted);
    newest_first(history);

    StorageRecord record;
    if (!current.empty()) {
      record.file = std::move(current.front());
      for (std::size_t i = 1; i < current.size(); ++i) {
        // Two `_1` files for one key: the later 発生日時 wins (digest §3, kakehashi rule).
        issues.Warning("ssmix2.duplicate_current",
                       FileLocation(current[i].root, current[i].relative, type_code),
                       "two files with flag 1 share this key; the one with the later 発生日時 is "
                       "used and this one is treated as superseded history");
        history.push_back(std::move(current[i]));
      }
      if (!deleted.empty()) {
        if (Later(deleted.front(), record.file)) {
          issues.Warning("ssmix2.mixed_flags",
                         FileLocation(record.file.root, record.file.relative, type_code),
                         "files with flag 1 and flag 0 share this key; the flag-0 file is newer, "
                         "so the record is treated as deleted");
          history.push_back(std::move(record.file));
          record.file = std::move(deleted.front());
          record.action = Action::kDelete;
        } else {
          issues.Warning("ssmix2.mixed_flags",
                         FileLocation(record.file.root, record.file.relative, type_code),
                         "files with flag 1 and flag 0 share this key; the flag-1 file is newer, "
                         "so the record is treated as current");
        }
      }
    } else if (!deleted.empty()) {
      // Only `_0` files: the key was deleted; the newest one is the delete message.
      record.action = Action::kDelete;
      record.file = std::move(deleted.front());
    } else {
      record.file = std::move(history.front());
      history.erase(history.begin());
      issues.Warning("ssmix2.no_current",
                     FileLocation(record.file.root, record.file.relative, type_code),
                     "only superseded (flag 2) files exist for this key; the newest one is used "
                     "as the current version");
    }
    std::sort(history.begin(), history.end(),
              [](const StoredFile& a, const StoredFile& b) { return Later(b, a); });
    record.superseded = std::move(history);
    record.type = FindDataType(type_code);
    if (record.type == nullptr && !extended) {
      issues.Warning("ssmix2.unknown_data_type",
                     FileLocation(record.file.root, record.file.relative, type_code),
                     "the data type (file-name field 3) is not one of the 26 SS-MIX2 standardized "
                     "storage types; the record is kept unconverted");
    }
    if (stats != nullptr) {
      ++stats->records;
      stats->superseded += record.superseded.size();
      if (record.action == Action::kDelete) ++stats->deletes;
    }
    out.push_back(std::move(record));
  }
}

Result<void> StorageReader::Collect(const PatientFolder& folder, Collected& c, IssueSink& issues,
                                    ReaderStats& counts) const {
  const std::string& patient_name = folder.id;
  const fs::path patient_dir = root_ / folder.l1 / folder.l2 / folder.id;
  const std::string rel = folder.l1 + '/' + folder.l2 + '/' + folder.id;
  // The folders below as strings: `dir + '/' + name` is what `fs::path(dir) / name` gives for a
  // directory entry's name (no separator in it, never empty) after a path with a file name, and
  // costs one string instead of a copy and re-split of every component per folder and file; each
  // StoredFile's fs::path is then made once from its whole string.
  const std::string& patient_path = patient_dir.native();
  std::vector<std::string> dates, date_files;
  const DirFd patient_fd = OpenDir(AT_FDCWD, patient_dir.c_str());
  KAKEHASHI_TRY_VOID(List(patient_fd, dates, &date_files));
  KeepOnly(dates, 3);  // Restrict() to one care date
  if (only_.size() > 3) date_files.clear();
  for (const auto& f : date_files) {
    issues.Warning("ssmix2.unexpected_entry", FileLocation(label_, rel + '/' + f, ""),
                   "a file directly in a patient folder; expected <care date>/<data type>/<file>");
    ++counts.skipped;
  }
  std::vector<StoredFile>& files = c.files;
  std::vector<StoredFile>& extended = c.extended;
  auto& extended_info = c.extended_info;  // attached after Resolve (Finish)
  std::vector<std::string> types, stray, names, content_dirs, content_files, content_subdirs;
  std::vector<ino64_t> inos;  // of `names`: StoredFile::inode, the read order of Preload and Load
  auto slot = [&files](std::size_t i) -> StoredFile& { return files[i]; };
  PendingReads preloads(slot, io_uring_);  // read together once the folders are walked
  for (const auto& date : dates) {
    const std::string date_path = patient_path + '/' + date;
    const std::string date_rel = rel + '/' + date;
    const DirFd date_fd = OpenDir(patient_fd.get(), date.c_str());
    KAKEHASHI_TRY_VOID(List(date_fd, types, &stray));
    KeepOnly(types, 4);  // Restrict() to one data-type folder
    if (only_.size() > 4) stray.clear();
    for (const auto& f : stray) {
      issues.Warning("ssmix2.unexpected_entry", FileLocation(label_, date_rel + '/' + f, ""),
                     "a file directly in a care-date folder; expected <data type>/<file>");
      ++counts.skipped;
    }
    for (const auto& type : types) {
      const std::string type_path = date_path + '/' + type;
      const std::string type_rel = date_rel + '/' + type;
      const DirFd type_fd = OpenDir(date_fd.get(), type.c_str());
      KAKEHASHI_TRY_VOID(List(type_fd, content_dirs, &names, &inos));
      KeepOnly(content_dirs, 5);            // Restrict() to one extended content folder
      if (only_.size() > 5) names.clear();  // ... whose type folder's own files lie outside
      // Extended storage (digest §3): <type folder>/<content folder>/main file. Type folders of
      // extended storage are CWE-like and contain '^'. Every content folder with files becomes
      // a record (the converter keeps it as a DocumentReference with the files attached).
      for (const auto& content : content_dirs) {
        ++counts.extended;
        const std::string content_rel = type_rel + '/' + content;
        issues.Info("ssmix2.extended_storage", FileLocation(label_, content_rel, ""),
                    "an extended-storage content folder (CDA, PDF, images or non-standard "
                    "HL7); kept as a DocumentReference with its files attached");
        auto parsed = ParseContentFolderName(content);
        if (!parsed) {
          issues.Warning("ssmix2.extended_bad_name", FileLocation(label_, content_rel, ""),
                         "the content folder name has neither the 7 fields of a file name nor "
                         "the 6 without 診療科; not converted");
          ++counts.skipped;
          continue;
        }
        KAKEHASHI_TRY_VOID(
            List(OpenDir(type_fd.get(), content.c_str()), content_subdirs, &content_files));
        if (content_files.empty()) {
          issues.Warning("ssmix2.extended_empty", FileLocation(label_, content_rel, ""),
                         "the extended-storage content folder holds no file; nothing to keep");
          continue;
        }
        // The main file: main_document.hl7 (NHO vitals ORU^R30), else the CDA document (.xml),
        // else the first file; the others follow in name order.
        auto main = std::find(content_files.begin(), content_files.end(), "main_document.hl7");
        if (main == content_files.end()) {
          main = std::find_if(content_files.begin(), content_files.end(), [](const std::string& n) {
            return n.size() > 4 && (n.ends_with(".xml") || n.ends_with(".XML"));
          });
        }
        if (main == content_files.end()) main = content_files.begin();
        std::rotate(content_files.begin(), main, main + 1);
        extended_info[content_rel] = {type, content_files};
        ++counts.files;
        extended.push_back({fs::path(type_path + '/' + content + '/' + content_files.front()),
                            content_rel, std::move(*parsed)});
        extended.back().root = label_;
      }
      for (std::size_t n = 0; n < names.size(); ++n) {
        const std::string& name = names[n];
        const std::string file_rel = type_rel + '/' + name;
        FileNameError error{};
        auto parsed = ParseFileName(name, &error);
        if (!parsed) {
          issues.Error("ssmix2.bad_file_name", FileLocation(label_, file_rel, type),
                       std::string("file skipped: ") + std::string(Describe(error)));
          ++counts.skipped;
          continue;
        }
        // The NHO checker requires path = f1[0:3]/f1[3:6]/f1/f2/f3 (digest §2).
        const std::string& id = parsed->patient_id;
        std::string mismatch;
        if (id != patient_name) mismatch += " 患者ID folder";
        if (id.size() >= 6 && (id.substr(0, 3) != folder.l1 || id.substr(3, 3) != folder.l2)) {
          mismatch += " ID prefix folders";  // shorter IDs: folder names taken as they are
        }
        if (parsed->care_date != date) mismatch += " 診療日 folder";
        if (parsed->data_type != type) mismatch += " データ種別 folder";
        if (!mismatch.empty()) {
          issues.Warning("ssmix2.path_mismatch", FileLocation(label_, file_rel, type),
                         "the file name does not match its folder(s):" + mismatch +
                             "; the file-name fields are used");
        }
        ++counts.files;
        files.push_back({fs::path(type_path + '/' + name), file_rel, std::move(*parsed)});
        files.back().root = label_;
        files.back().inode = inos[n];
        if (preload_) preloads.Add(type_fd.get(), name.c_str(), inos[n], files.size() - 1);
      }
    }
  }
  preloads.Flush();
  return {};
}

void StorageReader::Finish(Collected c, std::vector<StorageRecord>& out, IssueSink& issues,
                           ReaderStats& counts) {
  Resolve(std::move(c.files), issues, out, &counts);
  if (!c.extended.empty()) {
    const std::size_t first = out.size();
    Resolve(std::move(c.extended), issues, out, &counts, true);
    for (std::size_t i = first; i < out.size(); ++i) {
      auto info = c.extended_info.find(out[i].file.relative);
      if (info == c.extended_info.end()) continue;
      out[i].extended_type = info->second.first;
      out[i].extended_files = info->second.second;
    }
  }
}

void StorageReader::Load(std::vector<StorageRecord>& records) const {
  std::vector<StoredFile*> files;
  for (auto& record : records) {
    if (!record.extended_type.empty()) continue;  // as Preload: PDFs and images can be large
    if (!record.file.content) files.push_back(&record.file);
    for (auto& old : record.superseded) {
      if (!old.content) files.push_back(&old);
    }
  }
  // Whole batches of neighbouring inodes (Preload's batches are the walk's groups of kMaxBatch).
  std::stable_sort(files.begin(), files.end(),
                   [](const StoredFile* a, const StoredFile* b) { return a->inode < b->inode; });
  auto slot = [&files](std::size_t i) -> StoredFile& { return *files[i]; };
  PendingReads reads(slot, io_uring_);
  for (std::size_t i = 0; i < files.size(); ++i) {
    reads.Add(AT_FDCWD, files[i]->path.c_str(), files[i]->inode, i);
  }
  reads.Flush();
}

Result<void> StorageReader::ReadPatient(const PatientFolder& folder,
                                        std::vector<StorageRecord>& out, IssueSink& issues,
                                        ReaderStats* stats) const {
  ReaderStats unused;
  ReaderStats& counts = stats != nullptr ? *stats : unused;
  Collected c;
  KAKEHASHI_TRY_VOID(Collect(folder, c, issues, counts));
  Finish(std::move(c), out, issues, counts);
  return {};
}

namespace {

// How far along its life a stored file is: files are only renamed 1 -> 2 -> 0 (digest §3).
int FlagRank(Flag flag) {
  switch (flag) {
    case Flag::kCurrent: return 0;
    case Flag::kSuperseded: return 1;
    case Flag::kDeleted: return 2;
  }
  return 0;
}

// Keeps, of the files of several parts (roots) with one name-stem (the root-relative path but
// for the condition flag), those of the part whose copy is furthest along (FlagRank; a tie: the
// later part). `parts[i]` are the files of part i; the kept ones are appended to `out` in part
// order.
void KeepFurthest(std::vector<std::vector<StoredFile>>& parts, std::vector<StoredFile>& out) {
  // stem -> the largest (rank, part) of its copies
  std::map<std::string, std::pair<int, std::size_t>> best;
  auto stem = [](const StoredFile& f) {
    const std::string& r = f.relative;
    return r.size() >= 2 ? r.substr(0, r.size() - 2) : r;  // "…_1" -> "…"
  };
  for (std::size_t p = 0; p < parts.size(); ++p) {
    for (const auto& f : parts[p]) {
      const std::pair<int, std::size_t> mine{FlagRank(f.name.flag), p};
      auto [it, inserted] = best.emplace(stem(f), mine);
      if (!inserted && it->second < mine) it->second = mine;
    }
  }
  for (std::size_t p = 0; p < parts.size(); ++p) {
    for (auto& f : parts[p]) {
      if (best.find(stem(f))->second.second == p) out.push_back(std::move(f));
    }
  }
}

}  // namespace

Result<void> StorageReader::ReadPatient(const std::vector<RootFolder>& parts,
                                        std::vector<StorageRecord>& out, IssueSink& issues,
                                        std::size_t* failed, std::vector<std::size_t>* files) {
  if (files != nullptr) files->assign(parts.size(), 0);
  ReaderStats counts;
  if (parts.size() == 1) {
    auto read = parts[0].reader->ReadPatient(parts[0].folder, out, issues, &counts);
    if (!read && failed != nullptr) *failed = 0;
    if (read && files != nullptr) (*files)[0] = counts.files;
    return read;
  }
  std::vector<Collected> collected(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::size_t before = counts.files;
    if (auto read = parts[i].reader->Collect(parts[i].folder, collected[i], issues, counts);
        !read) {
      if (failed != nullptr) *failed = i;
      return read;
    }
    if (files != nullptr) (*files)[i] = counts.files - before;
  }
  Collected merged;
  std::vector<std::vector<StoredFile>> standard(parts.size()), extended(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    standard[i] = std::move(collected[i].files);
    extended[i] = std::move(collected[i].extended);
    for (auto& [content, info] : collected[i].extended_info) {
      merged.extended_info[content] = std::move(info);  // a later root's copy replaces
    }
  }
  KeepFurthest(standard, merged.files);
  KeepFurthest(extended, merged.extended);
  Finish(std::move(merged), out, issues, counts);
  return {};
}

Result<void> StorageReader::LoadNextPatient(bool& more) {
  more = false;
  KAKEHASHI_TRY(auto folder, NextPatientFolder());
  if (!folder) return {};
  std::vector<StorageRecord> records;
  KAKEHASHI_TRY_VOID(ReadPatient(*folder, records, issues_, &stats_));
  for (auto& r : records) pending_.push_back(std::move(r));
  more = true;
  return {};
}

Result<std::optional<StorageReader::PatientFolder>> StorageReader::NextPatientFolder() {
  if (!started_) {
    started_ = true;
    std::error_code ec;
    if (!fs::is_directory(root_, ec)) return make_error_code(errc::kNotFound);
    std::vector<std::string> files;
    KAKEHASHI_TRY_VOID(List(root_, l1_.names, &files));
    // Root-level files (index database, README) and the transaction-log year folders
    // (<root>/<year>/TR_*.DAT) are not standardized-storage data: skip them quietly except for
    // a count.
    std::erase_if(l1_.names, [this](const std::string& n) {
      bool year = n.size() == 4 &&
                  std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (n.size() > 3 && !year) {
        issues_.Warning("ssmix2.unexpected_entry", FileLocation(label_, n, ""),
                        "a folder in the storage root whose name is longer than the 3-character "
                        "patient ID prefix; skipped");
        ++stats_.skipped;
      }
      return n.size() > 3;
    });
    KeepOnly(l1_.names, 0);
  }
  while (true) {
    if (l3_.next < l3_.names.size()) {
      ++stats_.patients;
      return std::optional<PatientFolder>(PatientFolder{l1_name_, l2_name_, l3_.names[l3_.next++]});
    }
    if (l2_.next < l2_.names.size()) {
      l2_name_ = l2_.names[l2_.next++];
      KAKEHASHI_TRY_VOID(List(root_ / l1_name_ / l2_name_, l3_.names, nullptr));
      KeepOnly(l3_.names, 2);
      l3_.next = 0;
      continue;
    }
    if (l1_.next < l1_.names.size()) {
      l1_name_ = l1_.names[l1_.next++];
      KAKEHASHI_TRY_VOID(List(root_ / l1_name_, l2_.names, nullptr));
      KeepOnly(l2_.names, 1);
      l2_.next = 0;
      l3_.names.clear();
      l3_.next = 0;
      continue;
    }
    return std::optional<PatientFolder>();
  }
}

void StorageReader::Restrict(const std::string& relative) {
  only_.clear();
  std::size_t start = 0;
  while (start <= relative.size()) {
    const std::size_t slash = relative.find('/', start);
    std::string part =
        relative.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) only_.push_back(std::move(part));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

void StorageReader::KeepOnly(std::vector<std::string>& names, std::size_t level) const {
  if (only_.size() <= level) return;
  std::erase_if(names, [&](const std::string& n) { return n != only_[level]; });
}

std::optional<StorageReader::Subtree> StorageReader::Locate(const fs::path& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec).lexically_normal();
  if (ec) return std::nullopt;
  if (p.filename().empty()) p = p.parent_path();  // "…/0012345678/"
  // The patient folder is the path itself or one of its 3 ancestors (<ID>/<date>/<type>/<content
  // folder>); it sits at <root>/<ID[0:3]>/<ID[3:6]>/<ID> (digest §2).
  fs::path cur = p;
  for (int depth = 0; depth < 4 && cur.has_parent_path() && cur != cur.root_path(); ++depth) {
    const std::string id = cur.filename().string();
    const fs::path l2 = cur.parent_path();
    const fs::path l1 = l2.parent_path();
    if (id.size() > 3 && l2.filename().string() == id.substr(3, 3) &&
        l1.filename().string() == id.substr(0, 3) && l1.has_parent_path()) {
      Subtree out;
      out.root = l1.parent_path();
      out.relative = p.lexically_relative(out.root).generic_string();
      return out;
    }
    cur = cur.parent_path();
  }
  return std::nullopt;
}

Result<std::optional<StorageRecord>> StorageReader::Next() {
  while (pending_.empty()) {
    bool more = false;
    KAKEHASHI_TRY_VOID(LoadNextPatient(more));
    if (!more) return std::optional<StorageRecord>();
  }
  StorageRecord record = std::move(pending_.front());
  pending_.pop_front();
  return std::optional<StorageRecord>(std::move(record));
}

Result<std::size_t> StorageReader::NextPatient(std::vector<StorageRecord>& out) {
  out.clear();
  while (pending_.empty()) {
    bool more = false;
    KAKEHASHI_TRY_VOID(LoadNextPatient(more));
    if (!more) return std::size_t{0};
  }
  out.reserve(pending_.size());
  for (auto& r : pending_) out.push_back(std::move(r));
  pending_.clear();
  return out.size();
}

double StorageReader::Progress() const {
  if (l1_.names.empty()) return started_ ? 1.0 : 0.0;
  double done = l1_.next > 0 ? static_cast<double>(l1_.next - 1) : 0.0;
  if (!l2_.names.empty()) {
    double inner = l2_.next > 0 ? static_cast<double>(l2_.next - 1) : 0.0;
    if (!l3_.names.empty()) inner += static_cast<double>(l3_.next) / l3_.names.size();
    done += inner / static_cast<double>(l2_.names.size());
  }
  return std::min(1.0, done / static_cast<double>(l1_.names.size()));
}

Result<StorageRecord> StorageReader::ResolveFile(const fs::path& file, IssueSink& issues) {
  const std::string name = file.filename().string();
  FileNameError error{};
  auto parsed = ParseFileName(name, &error);
  if (!parsed) {
    issues.Error("ssmix2.bad_file_name", FileLocation("", name, ""),
                 std::string("not an SS-MIX2 file: ") + std::string(Describe(error)));
    return make_error_code(errc::kInvalidArgument);
  }
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return make_error_code(errc::kNotFound);
  const std::string key = parsed->Key();
  std::vector<StoredFile> files;
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  std::vector<std::string> dirs, names;
  KAKEHASHI_TRY_VOID(List(dir, dirs, &names));
  for (const auto& n : names) {
    auto sibling = ParseFileName(n);
    if (sibling && sibling->Key() == key) files.push_back({dir / n, n, std::move(*sibling)});
  }
  std::vector<StorageRecord> records;
  Resolve(std::move(files), issues, records);
  if (records.empty()) return make_error_code(errc::kNotFound);
  return std::move(records.front());
}

MergedWalk::MergedWalk(std::vector<StorageReader*> readers)
    : readers_(std::move(readers)), heads_(readers_.size()) {}

void MergedWalk::Advance(std::size_t i, Step& step) {
  auto next = readers_[i]->NextPatientFolder();
  if (!next) {
    heads_[i].reset();
    step.ended.emplace_back(i, next.error());
    failed_ = true;
    return;
  }
  heads_[i] = std::move(*next);
}

bool MergedWalk::Next(Step& step) {
  step.readers.clear();
  step.folders.clear();
  step.ended.clear();
  if (!started_) {
    started_ = true;
    for (std::size_t i = 0; i < readers_.size(); ++i) Advance(i, step);
  }
  // A failed walk ends the merge (decision 0017): the patients after it would otherwise be read
  // from the other roots alone — a full export's stale records without the delta's updates and
  // deletes.
  if (failed_) return false;
  // The smallest head in the walk order (prefix folders, then the patient folder).
  const auto before = [](const StorageReader::PatientFolder& a,
                         const StorageReader::PatientFolder& b) {
    if (a.l1 != b.l1) return a.l1 < b.l1;
    if (a.l2 != b.l2) return a.l2 < b.l2;
    return a.id < b.id;
  };
  const StorageReader::PatientFolder* least = nullptr;
  for (const auto& head : heads_) {
    if (head && (least == nullptr || before(*head, *least))) least = &*head;
  }
  if (least == nullptr) return false;
  const StorageReader::PatientFolder patient = *least;
  for (std::size_t i = 0; i < readers_.size(); ++i) {
    if (!heads_[i] || before(patient, *heads_[i])) continue;  // this root has no such patient
    step.readers.push_back(i);
    step.folders.push_back({readers_[i], std::move(*heads_[i])});
    Advance(i, step);
  }
  return true;
}

double MergedWalk::Progress() const {
  if (readers_.empty()) return 1.0;
  double sum = 0;
  for (const auto* r : readers_) sum += r->Progress();
  return sum / static_cast<double>(readers_.size());
}

}  // namespace kakehashi::adapters::ssmix2
