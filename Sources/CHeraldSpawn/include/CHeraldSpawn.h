#ifndef C_HERALD_SPAWN_H
#define C_HERALD_SPAWN_H

#include <spawn.h>

/// Makes a pipe whose two descriptors are close-on-exec from the start, so no child started
/// meanwhile by another thread inherits them. Returns 0, or -1 with errno set.
int herald_pipe_cloexec(int descriptors[2]);

/// Adds to `actions`: close every descriptor from `lowest` up, so the child inherits only its
/// standard streams. Returns 0, or an error number (ENOSYS where the C library cannot).
int herald_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

/// Adds to `actions`: change to `directory` before running. Returns 0 or an error number.
int herald_spawn_change_directory(posix_spawn_file_actions_t *actions, const char *directory);

#endif
