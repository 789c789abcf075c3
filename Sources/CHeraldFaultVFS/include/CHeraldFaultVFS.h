// A SQLite VFS that simulates losing unsynced writes in a crash, for Herald's simulator.
//
// `herald-fault` wraps the default (unix) VFS. Files are grouped into domains, one per
// directory prefix (one per simulation). For every main database, WAL and journal file of a
// domain it keeps an undo log of the writes and truncations made since the file's last sync:
// the bytes each one overwrote and the size before it. A sync (SQLite's xSync, or Herald's own
// WAL fdatasync through herald_fault_sync) empties the log; it does not call fsync, since
// durability is simulated. A crash undoes the logged writes, newest first (all of them, or all
// but a seeded random prefix, as if the disk had flushed some in order), then makes every handle
// opened before it inert (its I/O fails) and refuses opens and deletes until a restart.
// Deletions and file creation are treated as durable at once (directories are not modelled).
// A domain can also be given a capacity: a write that would grow its files past it fails with
// SQLITE_FULL, as the unix VFS answers a write(2) that fails with ENOSPC (a full disk).

#ifndef CHERALDFAULTVFS_H
#define CHERALDFAULTVFS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The name to open a database with (`file:/path?vfs=herald-fault`).
#define HERALD_FAULT_VFS_NAME "herald-fault"

/// Registers the VFS (not as the default) once; later calls return the first result.
/// Returns SQLITE_OK (0) or an SQLite error code.
int herald_fault_register(void);

/// Starts (or resets) the domain of the files whose paths start with `prefix`: forgets their
/// logs, clears a crash and disarms. Call before the domain's first file is opened.
void herald_fault_domain_reset(const char *prefix);

/// Forgets the domain `prefix` and its logs (after its files were removed).
void herald_fault_domain_remove(const char *prefix);

/// Arms a crash of `prefix`'s domain at its `countdown`-th I/O event from now (1 = the next one).
/// Writes, truncations and syncs are events. The event that fires does not happen and fails.
/// `seed` chooses what the crash keeps (0: nothing unsynced). `countdown` <= 0 disarms.
void herald_fault_arm(const char *prefix, int64_t countdown, uint64_t seed);

/// Crashes the domain `prefix` now. `seed` as in herald_fault_arm.
void herald_fault_crash(const char *prefix, uint64_t seed);

/// Whether the domain `prefix` has crashed and not yet restarted.
int herald_fault_is_crashed(const char *prefix);

/// Ends the crash of the domain `prefix`: files may be opened again (by a new connection).
void herald_fault_restart(const char *prefix);

/// Herald's WAL fdatasync: marks everything written to `path` as synced. Counts as an I/O event
/// (a crash armed for it fires instead). Returns SQLITE_OK, or SQLITE_IOERR_FSYNC when the domain
/// crashed. A file the VFS does not track is left alone (SQLITE_OK).
int herald_fault_sync(const char *path);

/// Limits the total size of the tracked files (database, WAL, journal) of the domain `prefix` to
/// `capacity` bytes: a write that would grow them past it does not happen and fails with
/// SQLITE_FULL. Writes within a file's current size always succeed. `capacity` <= 0: unlimited.
void herald_fault_set_capacity(const char *prefix, int64_t capacity);

/// The bytes the domain `prefix` may still grow by under its capacity (0 when full), or -1 when
/// it has no capacity (or is unknown): a stand-in for `statvfs` on a small disk.
int64_t herald_fault_free_space(const char *prefix);

/// What the domain `prefix` has seen: I/O events, syncs, crashes, bytes of unsynced writes undone,
/// writes refused for lack of capacity.
typedef struct {
    int64_t events;
    int64_t syncs;
    int64_t crashes;
    int64_t undoneWrites;
    int64_t fullWrites;
} herald_fault_stats;

/// The counters of the domain `prefix` (zeros for an unknown domain).
herald_fault_stats herald_fault_get_stats(const char *prefix);

#ifdef __cplusplus
}
#endif

#endif
