// A SQLite VFS whose reads never wait for the disk, for the store reads an io thread makes
// itself (decision 0051): it wraps the default "unix" VFS, and while a NowaitScope is alive on
// the calling thread its xRead reads with preadv2(..., RWF_NOWAIT) (Linux >= 4.14 for buffered
// reads: EAGAIN instead of waiting for a page that is not in the page cache) and its xSleep
// does not sleep. A read that would wait fails (SQLITE_IOERR_READ) and the scope records it:
// the caller drops the attempt and reads on a thread that may wait. Everything else (locks,
// the WAL index in the -shm, writes) is the unix VFS's own, so connections of this VFS and of
// the default one share the same POSIX locks and WAL index. Outside a scope it reads as the
// unix VFS does.
//
// Thread-safety: the VFS is registered once (any thread); a scope belongs to its thread.
#pragma once

namespace kakehashi::gateway::store::detail {

// The VFS's name for sqlite3_open_v2, registered on the first call; nullptr when the default
// VFS is not "unix" (nothing to wrap: callers then do not read without waiting).
const char* NowaitVfsName();

// While alive, reads through the VFS on this thread never wait (see above). Not nestable.
class NowaitScope {
 public:
  NowaitScope();
  ~NowaitScope();
  NowaitScope(const NowaitScope&) = delete;
  NowaitScope& operator=(const NowaitScope&) = delete;
  // A read failed because it would have waited (or could not be made without waiting).
  bool would_wait() const;
};

// Tests: the next `reads` reads made in a NowaitScope (any thread) fail as if their pages were
// not in memory.
void FailNowaitReadsForTesting(int reads);
// Tests: the next `locks` lock requests on the WAL index (-shm) made in a NowaitScope fail with
// SQLITE_BUSY, as if another connection held them.
void FailNowaitShmLocksForTesting(int locks);

}  // namespace kakehashi::gateway::store::detail
