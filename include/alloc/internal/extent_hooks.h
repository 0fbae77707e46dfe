/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Extent hooks: jemalloc 5's face of the chunk hook layer.
 *
 * The chunk layer (chunk.c) calls one set of hooks, the chunk_hooks_t in
 * its cache. jemalloc 4 programs read and write that set directly
 * (arena.<i>.chunk_hooks). jemalloc 5 programs read and write an
 * extent_hooks_t pointer (arena.<i>.extent_hooks, arenas.create); this
 * module translates between the two, so there is still one set of hooks per
 * arena and one code path through them:
 *
 *   - installing extent hooks E makes the cache's chunk hooks
 *     extent_hooks_chunk_face, functions that find the arena by the index
 *     every hook receives and call E (a NULL member of E answers "not
 *     supported": dalloc, split, merge, commit and decommit refuse, purge
 *     falls back from forced to lazy);
 *   - reading the extent hooks of an arena that runs on the default hooks
 *     gives extent_hooks_default, whose members do what the default chunk
 *     hooks do (mmap, munmap, madvise; destroy unmaps), so a program can
 *     wrap them;
 *   - reading them where 4.x hooks are installed gives
 *     extent_hooks_of_chunk_hooks, whose members call those 4.x hooks (the
 *     cache keeps them as face_hooks).
 *
 * Every translation finds the arena by the arena index its hook receives,
 * never by the hooks pointer: a program that wraps hooks may pass its own
 * table on.
 *
 * destroy exists only on the 5.x side: when an arena is destroyed, the
 * spans whose dalloc hook refused to take them back go to destroy
 * (chunk_cache_destroy).
 *
 * Locking: the functions taking a cache expect the arena lock held.
 */
#ifndef ALLOC_INTERNAL_EXTENT_HOOKS_H
#define ALLOC_INTERNAL_EXTENT_HOOKS_H

#include <stdbool.h>

#include "alloc/internal/chunk.h"

/* The extent hooks of an arena on the default hooks. */
extern const extent_hooks_t extent_hooks_default;

/* Reads the arena's hooks as an extent_hooks_t: the program's own,
 * extent_hooks_default, or extent_hooks_of_chunk_hooks; NULL for a private
 * heap's region cache, which has no hooks. */
extent_hooks_t *extent_hooks_get(chunk_cache_t *cache);

/* Installs `hooks` (arena.<i>.extent_hooks write, arenas.create). Returns
 * true, changing nothing, when hooks is NULL or has no alloc member (EINVAL:
 * the arena could not get memory), and for a region cache. */
bool extent_hooks_set(chunk_cache_t *cache, extent_hooks_t *hooks);

/* Whether chunk hooks `hooks` are this module's translation of an arena's
 * extent hooks (arena.<i>.chunk_hooks read back and written again). */
bool extent_hooks_is_chunk_face(const chunk_hooks_t *hooks);

#endif
