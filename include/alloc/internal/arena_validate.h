/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The arena walker (src/arena_validate.c): a debug check of one arena's
 * metadata against itself.
 *
 * Under all of the arena's locks it checks every chunk's page map (header
 * pages, run boundaries at both ends, flags, page classes, maximal free
 * runs), every small run (descriptor, page classes, nfree against its
 * bitmap, bitmap padding and search hint), the bins (runcur, nonfull list),
 * the free-run lists and their mask, the dirty counters and dirty-chunk
 * list, active pages, the spare chunk, the chunk cache, huge extents, and
 * with config_stats the bin and large counters.
 *
 * It changes nothing and asserts nothing: it returns the text of the first
 * check that failed, so a unit test can damage an arena on purpose and see
 * the damage named, and debug builds (arena_validate_maybe) can
 * abort with it.
 */
#ifndef ALLOC_INTERNAL_ARENA_VALIDATE_H
#define ALLOC_INTERNAL_ARENA_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/internal/arena.h"

/* Returns NULL when every check holds, else the text of the first one that
 * failed ("arena_validate.c:LINE: expression"). Takes the arena's bin locks
 * in index order, then its lock. Skips the page-run checks while a purge of
 * the arena is in progress (its runs are out of the lists then). Costs a
 * walk of every page of the arena: debug builds call it every
 * ARENA_VALIDATE_INTERVAL slow-path operations (arena_validate_maybe). */
const char *arena_validate(arena_t *arena);

/* In debug builds, walks the arena every ARENA_VALIDATE_INTERVAL calls (or
 * every call when `always`) and aborts with the first broken invariant;
 * nothing in other builds. The arena's slow paths that enter it holding no
 * lock call it (small and large allocation, large free, fills and flushes),
 * and purge_all and reset with `always`. */
void arena_validate_maybe(arena_t *arena, bool always);

#endif
