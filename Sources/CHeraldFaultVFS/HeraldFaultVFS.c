// The `herald-fault` VFS: see include/CHeraldFaultVFS.h.

#include "CHeraldFaultVFS.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// MARK: State

/// One write or truncation since the file's last sync, and how to undo it.
typedef struct {
    sqlite3_int64 offset;
    sqlite3_int64 sizeBefore;
    unsigned char *preimage;  // the bytes it overwrote, from `offset`
    int preimageLength;
} FaultEntry;

/// A tracked file: its path and its undo log.
typedef struct FaultRecord {
    char *path;
    FaultEntry *entries;
    int count;
    int capacity;
    struct FaultRecord *next;
} FaultRecord;

/// The files of one simulation.
typedef struct FaultDomain {
    char *prefix;
    size_t prefixLength;
    FaultRecord *records;
    /// Bumped by every crash: handles opened before it are inert.
    uint64_t generation;
    int crashed;
    int64_t countdown;  // <= 0: not armed
    uint64_t crashSeed;
    int64_t capacity;  // <= 0: unlimited
    herald_fault_stats stats;
    struct FaultDomain *next;
} FaultDomain;

/// A file opened through the VFS; the real (unix) file follows it in memory.
typedef struct {
    sqlite3_file base;
    sqlite3_file *real;
    FaultDomain *domain;  // NULL: not tracked, plain pass-through
    FaultRecord *record;
    uint64_t generation;
} FaultFile;

static pthread_mutex_t faultMutex = PTHREAD_MUTEX_INITIALIZER;
static FaultDomain *faultDomains = NULL;
static sqlite3_vfs faultVFS;
static sqlite3_vfs *realVFS = NULL;
static int registerResult = -1;

static FaultDomain *domainNamed(const char *prefix) {
    for (FaultDomain *domain = faultDomains; domain; domain = domain->next) {
        if (strcmp(domain->prefix, prefix) == 0) return domain;
    }
    return NULL;
}

static FaultDomain *domainOfPath(const char *path) {
    if (!path) return NULL;
    for (FaultDomain *domain = faultDomains; domain; domain = domain->next) {
        if (strncmp(domain->prefix, path, domain->prefixLength) == 0) return domain;
    }
    return NULL;
}

static FaultRecord *recordOfPath(FaultDomain *domain, const char *path, int create) {
    for (FaultRecord *record = domain->records; record; record = record->next) {
        if (strcmp(record->path, path) == 0) return record;
    }
    if (!create) return NULL;
    FaultRecord *record = calloc(1, sizeof(FaultRecord));
    if (!record) return NULL;
    record->path = strdup(path);
    if (!record->path) {
        free(record);
        return NULL;
    }
    record->next = domain->records;
    domain->records = record;
    return record;
}

static void clearLog(FaultRecord *record) {
    for (int i = 0; i < record->count; i++) free(record->entries[i].preimage);
    record->count = 0;
}

static void freeRecords(FaultDomain *domain) {
    FaultRecord *record = domain->records;
    while (record) {
        FaultRecord *next = record->next;
        clearLog(record);
        free(record->entries);
        free(record->path);
        free(record);
        record = next;
    }
    domain->records = NULL;
}

static int appendEntry(FaultRecord *record, FaultEntry entry) {
    if (record->count == record->capacity) {
        int capacity = record->capacity ? record->capacity * 2 : 64;
        FaultEntry *entries = realloc(record->entries, (size_t)capacity * sizeof(FaultEntry));
        if (!entries) return SQLITE_NOMEM;
        record->entries = entries;
        record->capacity = capacity;
    }
    record->entries[record->count++] = entry;
    return SQLITE_OK;
}

/// SplitMix64, for the seeded choice of what a crash keeps.
static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// Undoes the unsynced writes of every file of `domain` (all, or all but a seeded prefix),
/// newest first, with plain POSIX calls on the path; then makes old handles inert.
static void crashDomain(FaultDomain *domain, uint64_t seed) {
    uint64_t random = seed;
    for (FaultRecord *record = domain->records; record; record = record->next) {
        int keep = seed == 0 ? 0 : (int)(splitmix(&random) % (uint64_t)(record->count + 1));
        if (record->count > keep) {
            int fd = open(record->path, O_RDWR | O_CLOEXEC);
            if (fd >= 0) {
                for (int i = record->count - 1; i >= keep; i--) {
                    FaultEntry *entry = &record->entries[i];
                    if (entry->preimageLength > 0) {
                        ssize_t written = pwrite(fd, entry->preimage, (size_t)entry->preimageLength, (off_t)entry->offset);
                        (void)written;
                    }
                    int truncated = ftruncate(fd, (off_t)entry->sizeBefore);
                    (void)truncated;
                    domain->stats.undoneWrites += 1;
                }
                close(fd);
            }
        }
        clearLog(record);
    }
    domain->generation += 1;
    domain->crashed = 1;
    domain->countdown = 0;
    domain->stats.crashes += 1;
}

/// Counts an I/O event of `domain`; returns 1 when an armed crash fires on it.
static int eventFires(FaultDomain *domain) {
    domain->stats.events += 1;
    if (domain->countdown > 0) {
        domain->countdown -= 1;
        if (domain->countdown == 0) {
            crashDomain(domain, domain->crashSeed);
            return 1;
        }
    }
    return 0;
}

/// The bytes the domain's tracked files take, by their sizes on disk.
static int64_t usedBytes(FaultDomain *domain) {
    int64_t used = 0;
    for (FaultRecord *record = domain->records; record; record = record->next) {
        struct stat info;
        if (stat(record->path, &info) == 0) used += (int64_t)info.st_size;
    }
    return used;
}

/// Whether growing `file` to `newEnd` bytes would take its domain past its capacity.
static int exceedsCapacity(FaultFile *file, sqlite3_int64 newEnd) {
    if (file->domain->capacity <= 0 || !file->record) return 0;
    sqlite3_int64 size = 0;
    if (file->real->pMethods->xFileSize(file->real, &size) != SQLITE_OK || newEnd <= size) return 0;
    return usedBytes(file->domain) + (newEnd - size) > file->domain->capacity;
}

static int isInert(FaultFile *file) {
    return file->domain && (file->domain->crashed || file->generation != file->domain->generation);
}

// MARK: File methods

static int faultClose(sqlite3_file *base) {
    FaultFile *file = (FaultFile *)base;
    int result = file->real->pMethods ? file->real->pMethods->xClose(file->real) : SQLITE_OK;
    return result;
}

static int faultRead(sqlite3_file *base, void *buffer, int amount, sqlite3_int64 offset) {
    FaultFile *file = (FaultFile *)base;
    pthread_mutex_lock(&faultMutex);
    int inert = isInert(file);
    pthread_mutex_unlock(&faultMutex);
    if (inert) return SQLITE_IOERR_READ;
    return file->real->pMethods->xRead(file->real, buffer, amount, offset);
}

static int faultWrite(sqlite3_file *base, const void *buffer, int amount, sqlite3_int64 offset) {
    FaultFile *file = (FaultFile *)base;
    if (!file->domain) return file->real->pMethods->xWrite(file->real, buffer, amount, offset);
    pthread_mutex_lock(&faultMutex);
    if (isInert(file) || eventFires(file->domain)) {
        pthread_mutex_unlock(&faultMutex);
        return SQLITE_IOERR_WRITE;
    }
    if (exceedsCapacity(file, offset + amount)) {
        // What the unix VFS answers when write(2) fails with ENOSPC.
        file->domain->stats.fullWrites += 1;
        pthread_mutex_unlock(&faultMutex);
        return SQLITE_FULL;
    }
    int result = SQLITE_OK;
    if (file->record) {
        sqlite3_int64 size = 0;
        result = file->real->pMethods->xFileSize(file->real, &size);
        FaultEntry entry = {offset, size, NULL, 0};
        if (result == SQLITE_OK && offset < size) {
            sqlite3_int64 length = size - offset < amount ? size - offset : amount;
            entry.preimage = malloc((size_t)length);
            if (!entry.preimage) result = SQLITE_NOMEM;
            if (result == SQLITE_OK) {
                entry.preimageLength = (int)length;
                result = file->real->pMethods->xRead(file->real, entry.preimage, (int)length, offset);
            }
        }
        if (result == SQLITE_OK) result = appendEntry(file->record, entry);
        if (result != SQLITE_OK) {
            free(entry.preimage);
            result = SQLITE_IOERR_WRITE;
        }
    }
    if (result == SQLITE_OK) result = file->real->pMethods->xWrite(file->real, buffer, amount, offset);
    pthread_mutex_unlock(&faultMutex);
    return result;
}

static int faultTruncate(sqlite3_file *base, sqlite3_int64 newSize) {
    FaultFile *file = (FaultFile *)base;
    if (!file->domain) return file->real->pMethods->xTruncate(file->real, newSize);
    pthread_mutex_lock(&faultMutex);
    if (isInert(file) || eventFires(file->domain)) {
        pthread_mutex_unlock(&faultMutex);
        return SQLITE_IOERR_TRUNCATE;
    }
    int result = SQLITE_OK;
    if (file->record) {
        sqlite3_int64 size = 0;
        result = file->real->pMethods->xFileSize(file->real, &size);
        FaultEntry entry = {newSize, size, NULL, 0};
        if (result == SQLITE_OK && newSize < size) {
            entry.preimage = malloc((size_t)(size - newSize));
            if (!entry.preimage) result = SQLITE_NOMEM;
            if (result == SQLITE_OK) {
                entry.preimageLength = (int)(size - newSize);
                result = file->real->pMethods->xRead(file->real, entry.preimage, entry.preimageLength, newSize);
            }
        }
        if (result == SQLITE_OK) result = appendEntry(file->record, entry);
        if (result != SQLITE_OK) {
            free(entry.preimage);
            result = SQLITE_IOERR_TRUNCATE;
        }
    }
    if (result == SQLITE_OK) result = file->real->pMethods->xTruncate(file->real, newSize);
    pthread_mutex_unlock(&faultMutex);
    return result;
}

static int faultSync(sqlite3_file *base, int flags) {
    FaultFile *file = (FaultFile *)base;
    if (!file->domain) return file->real->pMethods->xSync(file->real, flags);
    pthread_mutex_lock(&faultMutex);
    if (isInert(file) || eventFires(file->domain)) {
        pthread_mutex_unlock(&faultMutex);
        return SQLITE_IOERR_FSYNC;
    }
    file->domain->stats.syncs += 1;
    if (file->record) clearLog(file->record);
    pthread_mutex_unlock(&faultMutex);
    // Durability is simulated: no real fsync.
    return SQLITE_OK;
}

static int faultFileSize(sqlite3_file *base, sqlite3_int64 *size) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xFileSize(file->real, size);
}

static int faultLock(sqlite3_file *base, int level) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xLock(file->real, level);
}

static int faultUnlock(sqlite3_file *base, int level) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xUnlock(file->real, level);
}

static int faultCheckReservedLock(sqlite3_file *base, int *result) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xCheckReservedLock(file->real, result);
}

static int faultFileControl(sqlite3_file *base, int op, void *argument) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xFileControl(file->real, op, argument);
}

static int faultSectorSize(sqlite3_file *base) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xSectorSize(file->real);
}

static int faultDeviceCharacteristics(sqlite3_file *base) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xDeviceCharacteristics(file->real);
}

static int faultShmMap(sqlite3_file *base, int page, int pageSize, int extend, void volatile **pointer) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xShmMap(file->real, page, pageSize, extend, pointer);
}

static int faultShmLock(sqlite3_file *base, int offset, int count, int flags) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xShmLock(file->real, offset, count, flags);
}

static void faultShmBarrier(sqlite3_file *base) {
    FaultFile *file = (FaultFile *)base;
    file->real->pMethods->xShmBarrier(file->real);
}

static int faultShmUnmap(sqlite3_file *base, int deleteFlag) {
    FaultFile *file = (FaultFile *)base;
    return file->real->pMethods->xShmUnmap(file->real, deleteFlag);
}

static int faultFetch(sqlite3_file *base, sqlite3_int64 offset, int amount, void **pointer) {
    // No memory-mapped reads: every read goes through xRead.
    (void)base;
    (void)offset;
    (void)amount;
    *pointer = NULL;
    return SQLITE_OK;
}

static int faultUnfetch(sqlite3_file *base, sqlite3_int64 offset, void *pointer) {
    (void)base;
    (void)offset;
    (void)pointer;
    return SQLITE_OK;
}

static const sqlite3_io_methods faultMethods = {
    3,
    faultClose,
    faultRead,
    faultWrite,
    faultTruncate,
    faultSync,
    faultFileSize,
    faultLock,
    faultUnlock,
    faultCheckReservedLock,
    faultFileControl,
    faultSectorSize,
    faultDeviceCharacteristics,
    faultShmMap,
    faultShmLock,
    faultShmBarrier,
    faultShmUnmap,
    faultFetch,
    faultUnfetch,
};

// MARK: VFS methods

static int faultOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *base, int flags, int *outFlags) {
    (void)vfs;
    FaultFile *file = (FaultFile *)base;
    memset(file, 0, sizeof(FaultFile));
    file->real = (sqlite3_file *)(file + 1);
    const int trackedKinds = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL;
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainOfPath(name);
    if (domain && domain->crashed) {
        pthread_mutex_unlock(&faultMutex);
        return SQLITE_CANTOPEN;
    }
    if (domain) {
        file->domain = domain;
        file->generation = domain->generation;
        if (flags & trackedKinds) file->record = recordOfPath(domain, name, 1);
    }
    pthread_mutex_unlock(&faultMutex);
    int result = realVFS->xOpen(realVFS, name, file->real, flags, outFlags);
    // SQLite calls xClose whenever pMethods is set, even after a failed open.
    base->pMethods = file->real->pMethods ? &faultMethods : NULL;
    return result;
}

static int faultDelete(sqlite3_vfs *vfs, const char *name, int syncDirectory) {
    (void)vfs;
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainOfPath(name);
    if (domain && domain->crashed) {
        pthread_mutex_unlock(&faultMutex);
        return SQLITE_IOERR_DELETE;
    }
    if (domain) {
        FaultRecord *record = recordOfPath(domain, name, 0);
        if (record) clearLog(record);
    }
    pthread_mutex_unlock(&faultMutex);
    return realVFS->xDelete(realVFS, name, syncDirectory);
}

static int faultAccess(sqlite3_vfs *vfs, const char *name, int flags, int *result) {
    (void)vfs;
    return realVFS->xAccess(realVFS, name, flags, result);
}

static int faultFullPathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    return realVFS->xFullPathname(realVFS, name, size, out);
}

static void *faultDlOpen(sqlite3_vfs *vfs, const char *name) {
    (void)vfs;
    return realVFS->xDlOpen(realVFS, name);
}

static void faultDlError(sqlite3_vfs *vfs, int size, char *message) {
    (void)vfs;
    realVFS->xDlError(realVFS, size, message);
}

static void (*faultDlSym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) {
    (void)vfs;
    return realVFS->xDlSym(realVFS, handle, symbol);
}

static void faultDlClose(sqlite3_vfs *vfs, void *handle) {
    (void)vfs;
    realVFS->xDlClose(realVFS, handle);
}

static int faultRandomness(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return realVFS->xRandomness(realVFS, size, out);
}

static int faultSleep(sqlite3_vfs *vfs, int microseconds) {
    (void)vfs;
    return realVFS->xSleep(realVFS, microseconds);
}

static int faultCurrentTime(sqlite3_vfs *vfs, double *time) {
    (void)vfs;
    return realVFS->xCurrentTime(realVFS, time);
}

static int faultGetLastError(sqlite3_vfs *vfs, int size, char *message) {
    (void)vfs;
    return realVFS->xGetLastError ? realVFS->xGetLastError(realVFS, size, message) : 0;
}

static int faultCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *time) {
    (void)vfs;
    return realVFS->xCurrentTimeInt64(realVFS, time);
}

// MARK: Public functions

int herald_fault_register(void) {
    pthread_mutex_lock(&faultMutex);
    if (registerResult < 0) {
        realVFS = sqlite3_vfs_find(NULL);
        if (!realVFS) {
            registerResult = SQLITE_ERROR;
        } else {
            memset(&faultVFS, 0, sizeof(faultVFS));
            faultVFS.iVersion = 2;
            faultVFS.szOsFile = (int)sizeof(FaultFile) + realVFS->szOsFile;
            faultVFS.mxPathname = realVFS->mxPathname;
            faultVFS.zName = HERALD_FAULT_VFS_NAME;
            faultVFS.xOpen = faultOpen;
            faultVFS.xDelete = faultDelete;
            faultVFS.xAccess = faultAccess;
            faultVFS.xFullPathname = faultFullPathname;
            faultVFS.xDlOpen = faultDlOpen;
            faultVFS.xDlError = faultDlError;
            faultVFS.xDlSym = faultDlSym;
            faultVFS.xDlClose = faultDlClose;
            faultVFS.xRandomness = faultRandomness;
            faultVFS.xSleep = faultSleep;
            faultVFS.xCurrentTime = faultCurrentTime;
            faultVFS.xGetLastError = faultGetLastError;
            faultVFS.xCurrentTimeInt64 = faultCurrentTimeInt64;
            registerResult = sqlite3_vfs_register(&faultVFS, 0);
        }
    }
    int result = registerResult;
    pthread_mutex_unlock(&faultMutex);
    return result;
}

void herald_fault_domain_reset(const char *prefix) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    if (!domain) {
        domain = calloc(1, sizeof(FaultDomain));
        if (domain) {
            domain->prefix = strdup(prefix);
            domain->prefixLength = strlen(prefix);
            domain->next = faultDomains;
            faultDomains = domain;
        }
    }
    if (domain) {
        freeRecords(domain);
        domain->generation += 1;
        domain->crashed = 0;
        domain->countdown = 0;
        domain->capacity = 0;
        memset(&domain->stats, 0, sizeof(domain->stats));
    }
    pthread_mutex_unlock(&faultMutex);
}

void herald_fault_domain_remove(const char *prefix) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain **link = &faultDomains;
    while (*link) {
        FaultDomain *domain = *link;
        if (strcmp(domain->prefix, prefix) == 0) {
            // Handles of this domain must all be closed by now.
            *link = domain->next;
            freeRecords(domain);
            free(domain->prefix);
            free(domain);
            break;
        }
        link = &domain->next;
    }
    pthread_mutex_unlock(&faultMutex);
}

void herald_fault_arm(const char *prefix, int64_t countdown, uint64_t seed) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    if (domain) {
        domain->countdown = countdown > 0 ? countdown : 0;
        domain->crashSeed = seed;
    }
    pthread_mutex_unlock(&faultMutex);
}

void herald_fault_crash(const char *prefix, uint64_t seed) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    if (domain && !domain->crashed) crashDomain(domain, seed);
    pthread_mutex_unlock(&faultMutex);
}

int herald_fault_is_crashed(const char *prefix) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    int crashed = domain ? domain->crashed : 0;
    pthread_mutex_unlock(&faultMutex);
    return crashed;
}

void herald_fault_restart(const char *prefix) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    if (domain) domain->crashed = 0;
    pthread_mutex_unlock(&faultMutex);
}

int herald_fault_sync(const char *path) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainOfPath(path);
    int result = SQLITE_OK;
    if (domain) {
        if (domain->crashed || eventFires(domain)) {
            result = SQLITE_IOERR_FSYNC;
        } else {
            domain->stats.syncs += 1;
            FaultRecord *record = recordOfPath(domain, path, 0);
            if (record) clearLog(record);
        }
    }
    pthread_mutex_unlock(&faultMutex);
    return result;
}

void herald_fault_set_capacity(const char *prefix, int64_t capacity) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    if (domain) domain->capacity = capacity > 0 ? capacity : 0;
    pthread_mutex_unlock(&faultMutex);
}

int64_t herald_fault_free_space(const char *prefix) {
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    int64_t free = -1;
    if (domain && domain->capacity > 0) {
        free = domain->capacity - usedBytes(domain);
        if (free < 0) free = 0;
    }
    pthread_mutex_unlock(&faultMutex);
    return free;
}

herald_fault_stats herald_fault_get_stats(const char *prefix) {
    herald_fault_stats stats = {0, 0, 0, 0, 0};
    pthread_mutex_lock(&faultMutex);
    FaultDomain *domain = domainNamed(prefix);
    if (domain) stats = domain->stats;
    pthread_mutex_unlock(&faultMutex);
    return stats;
}
