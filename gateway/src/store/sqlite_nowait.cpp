// The nowait VFS (sqlite_nowait.hpp). SQLite's VFS interface: https://www.sqlite.org/vfs.html
// and the sqlite3_vfs / sqlite3_io_methods documentation (c3ref/vfs.html, c3ref/io_methods.html):
// a VFS's szOsFile bytes are given to xOpen, which fills in pMethods; a wrapper keeps the
// wrapped VFS's file object inside its own.
#include "store/sqlite_nowait.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include <sys/stat.h>
#include <sys/uio.h>

namespace kakehashi::gateway::store::detail {

namespace {

thread_local bool tls_nowait = false;
thread_local bool tls_would_wait = false;
std::atomic<int> fail_reads{0};
std::atomic<int> fail_locks{0};

// Our file object; the unix VFS's one follows it in the same allocation.
struct File {
  sqlite3_file base;   // base.pMethods = &kMethods once open
  sqlite3_file* real;  // the unix VFS's file
  int fd;              // its descriptor (checked to be the named file), -1 when not known
};
constexpr std::size_t kFileBytes = (sizeof(File) + 15) & ~std::size_t{15};

// The unix VFS's file object starts with its io methods, its VFS and its inode record, then
// the descriptor (`unixFile` in SQLite's os_unix.c, unchanged since 3.7). Only used once the
// descriptor there is shown to be open on the same file as the name (Open, below).
constexpr std::size_t kUnixFdAt = 3 * sizeof(void*);

sqlite3_vfs* Real(sqlite3_vfs* vfs) {
  return static_cast<sqlite3_vfs*>(vfs->pAppData);
}
sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<File*>(f)->real;
}

// --- io methods: xRead reads without waiting in a scope; the rest is the unix VFS's.

bool TakeInjectedFailure(std::atomic<int>& failures) {
  int left = failures.load(std::memory_order_relaxed);
  while (left > 0) {
    if (failures.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

int Read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  auto* file = reinterpret_cast<File*>(f);
  if (!tls_nowait) return file->real->pMethods->xRead(file->real, buf, amount, offset);
  if (file->fd >= 0 && !TakeInjectedFailure(fail_reads)) {
    iovec io{buf, static_cast<std::size_t>(amount)};
    ssize_t n = 0;
    do {
      n = preadv2(file->fd, &io, 1, offset, RWF_NOWAIT);
    } while (n < 0 && errno == EINTR);
    if (n == amount) return SQLITE_OK;
    // EAGAIN: not (all) in the page cache. A short read (part cached, or the end of the file)
    // is left to the unix VFS on a thread that may wait, which knows what to zero-fill.
    // EOPNOTSUPP: this file system cannot; no further attempts on this file.
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) file->fd = -1;
  }
  tls_would_wait = true;
  return SQLITE_IOERR_READ;
}

int Close(sqlite3_file* f) {
  return Real(f)->pMethods->xClose(Real(f));
}
int Write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  return Real(f)->pMethods->xWrite(Real(f), buf, amount, offset);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int level) {
  return Real(f)->pMethods->xLock(Real(f), level);
}
int Unlock(sqlite3_file* f, int level) {
  return Real(f)->pMethods->xUnlock(Real(f), level);
}
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) {
  return Real(f)->pMethods->xSectorSize(Real(f));
}
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  if (tls_nowait && (flags & SQLITE_SHM_LOCK) != 0 && TakeInjectedFailure(fail_locks)) {
    return SQLITE_BUSY;  // tests: as if another connection held it
  }
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) {
  Real(f)->pMethods->xShmBarrier(Real(f));
}
int ShmUnmap(sqlite3_file* f, int remove) {
  return Real(f)->pMethods->xShmUnmap(Real(f), remove);
}
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), offset, amount, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), offset, p);
}

const sqlite3_io_methods kMethods = {3,
                                     Close,
                                     Read,
                                     Write,
                                     Truncate,
                                     Sync,
                                     FileSize,
                                     Lock,
                                     Unlock,
                                     CheckReservedLock,
                                     FileControl,
                                     SectorSize,
                                     DeviceCharacteristics,
                                     ShmMap,
                                     ShmLock,
                                     ShmBarrier,
                                     ShmUnmap,
                                     Fetch,
                                     Unfetch};

// --- VFS methods: xOpen wraps, xSleep does not sleep in a scope; the rest is the unix VFS's.

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = reinterpret_cast<File*>(f);
  file->base.pMethods = nullptr;
  file->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kFileBytes);
  file->real->pMethods = nullptr;
  file->fd = -1;
  sqlite3_vfs* real = Real(vfs);
  const int rc = real->xOpen(real, name, file->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (file->real->pMethods != nullptr) file->real->pMethods->xClose(file->real);
    return rc;
  }
  if (file->real->pMethods->iVersion < 3) {  // not the unix VFS's methods: not wrapped
    file->real->pMethods->xClose(file->real);
    return SQLITE_CANTOPEN;
  }
  int fd = -1;
  std::memcpy(&fd, reinterpret_cast<const char*>(file->real) + kUnixFdAt, sizeof fd);
  struct stat by_fd {};
  struct stat by_name {};
  if (name != nullptr && fd >= 0 && fstat(fd, &by_fd) == 0 && stat(name, &by_name) == 0 &&
      by_fd.st_dev == by_name.st_dev && by_fd.st_ino == by_name.st_ino) {
    file->fd = fd;
  }
  file->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Real(vfs)->xDelete(Real(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Real(vfs)->xAccess(Real(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return Real(vfs)->xFullPathname(Real(vfs), name, n, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) {
  return Real(vfs)->xDlOpen(Real(vfs), name);
}
void DlError(sqlite3_vfs* vfs, int n, char* out) {
  Real(vfs)->xDlError(Real(vfs), n, out);
}
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Real(vfs)->xDlSym(Real(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) {
  Real(vfs)->xDlClose(Real(vfs), handle);
}
int Randomness(sqlite3_vfs* vfs, int n, char* out) {
  return Real(vfs)->xRandomness(Real(vfs), n, out);
}
// SQLite sleeps between retries when the WAL index is being changed under a starting read
// transaction (and gives up after ~100 of them); in a scope the retries run without sleeping.
int Sleep(sqlite3_vfs* vfs, int microseconds) {
  if (tls_nowait) return microseconds;
  return Real(vfs)->xSleep(Real(vfs), microseconds);
}
int CurrentTime(sqlite3_vfs* vfs, double* out) {
  return Real(vfs)->xCurrentTime(Real(vfs), out);
}
int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return Real(vfs)->xGetLastError(Real(vfs), n, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Real(vfs)->xCurrentTimeInt64(Real(vfs), out);
}
int SetSystemCall(sqlite3_vfs* vfs, const char* name, sqlite3_syscall_ptr call) {
  return Real(vfs)->xSetSystemCall(Real(vfs), name, call);
}
sqlite3_syscall_ptr GetSystemCall(sqlite3_vfs* vfs, const char* name) {
  return Real(vfs)->xGetSystemCall(Real(vfs), name);
}
const char* NextSystemCall(sqlite3_vfs* vfs, const char* name) {
  return Real(vfs)->xNextSystemCall(Real(vfs), name);
}

}  // namespace

const char* NowaitVfsName() {
  static const char* const name = []() -> const char* {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (real == nullptr || std::strcmp(real->zName, "unix") != 0 || real->iVersion < 3 ||
        static_cast<std::size_t>(real->szOsFile) < kUnixFdAt + sizeof(int)) {
      return nullptr;
    }
    static sqlite3_vfs vfs{};
    vfs.iVersion = 3;
    vfs.szOsFile = static_cast<int>(kFileBytes) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = "kakehashi-nowait";
    vfs.pAppData = real;
    vfs.xOpen = Open;
    vfs.xDelete = Delete;
    vfs.xAccess = Access;
    vfs.xFullPathname = FullPathname;
    vfs.xDlOpen = DlOpen;
    vfs.xDlError = DlError;
    vfs.xDlSym = DlSym;
    vfs.xDlClose = DlClose;
    vfs.xRandomness = Randomness;
    vfs.xSleep = Sleep;
    vfs.xCurrentTime = CurrentTime;
    vfs.xGetLastError = GetLastError;
    vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    vfs.xSetSystemCall = SetSystemCall;
    vfs.xGetSystemCall = GetSystemCall;
    vfs.xNextSystemCall = NextSystemCall;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) return nullptr;
    return vfs.zName;
  }();
  return name;
}

NowaitScope::NowaitScope() {
  tls_nowait = true;
  tls_would_wait = false;
}

NowaitScope::~NowaitScope() {
  tls_nowait = false;
}

bool NowaitScope::would_wait() const {
  return tls_would_wait;
}

void FailNowaitReadsForTesting(int reads) {
  fail_reads.store(reads, std::memory_order_relaxed);
}

void FailNowaitShmLocksForTesting(int locks) {
  fail_locks.store(locks, std::memory_order_relaxed);
}

}  // namespace kakehashi::gateway::store::detail
