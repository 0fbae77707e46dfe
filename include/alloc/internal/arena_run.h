/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Page runs (src/arena_run.c): the layer of an arena that the bins, large
 * objects, purging and reset are built on. It owns the chunks an arena
 * carves into page runs (arena->chunks_head, the spare, the chunk
 * registry), each chunk's page map (map[] at the first and last page of
 * every run), and the arena's free-run lists (arena->avail, avail_mask,
 * the dirty counters and the dirty-chunk list).
 *
 * Only the arena's own files (arena*.c) and the walker use this header.
 * Every function here must be called with arena->lock held.
 */
#ifndef ALLOC_INTERNAL_ARENA_RUN_H
#define ALLOC_INTERNAL_ARENA_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/arena.h"

/* Page-count classes of the free-run lists: psz_floor[n] is the largest
 * class of at most n pages, for 1 <= n <= CHUNK_NPAGES, and psz_count the
 * number of classes. Written once by arena_run_boot; the walker reads them
 * to check that each free run sits in the list of its class. */
extern uint8_t psz_floor[CHUNK_NPAGES + 1];
extern unsigned psz_count;

/* Computes the page-count class tables; call once at start-up. */
void arena_run_boot(void);

/* Writes the bookkeeping of a run at its first and last page. */
void arena_map_set_run(arena_chunk_t *c, size_t pi, size_t npages, uint32_t flags);

/* Puts the free run [pi, pi+npages) in `state` (MAP_STATE bits) into the
 * free lists as it is, without merging; arena_avail_remove takes the free
 * run starting at pi out of them. */
void arena_avail_insert(arena_t *arena, arena_chunk_t *c, size_t pi, size_t npages, uint32_t state);
void arena_avail_remove(arena_t *arena, arena_chunk_t *c, size_t pi);

/* Marks chunk c as an arena chunk (or not) in the chunk registry. */
void arena_chunk_register(arena_chunk_t *c, bool registered);

/* Takes a free run of at least npages pages (mapping a new chunk if none
 * is long enough), splits off the rest, and marks the run with `flags`
 * (MAP_SMALL or MAP_LARGE). Returns false when no chunk can be had.
 * *cp and *pip are the run's chunk and first page; *zeroed tells whether
 * the run reads as zeros. */
bool arena_run_alloc(arena_t *arena, size_t npages, uint32_t flags, arena_chunk_t **cp, size_t *pip,
                     bool *zeroed);

/* Puts free pages [pi, pi+npages) in `state` (MAP_DIRTY, MAP_UNZEROED or
 * neither) into the free lists, merging with free neighbours alike in
 * dirtiness; a chunk left wholly free becomes the spare or goes back to
 * the chunk cache. The pages' page classes and counters must already have
 * been updated (see arena_run_dalloc). */
void arena_run_insert_free(arena_t *arena, arena_chunk_t *c, size_t pi, size_t npages,
                           uint32_t state);

/* Puts back [pi, pi+npages), the rest of a free run whose map bits were
 * `bits` once its first pages were taken and their map written: merged
 * with its free right neighbour if the run was kept apart (MAP_KEEP), as
 * it is otherwise (the run was maximal). */
void arena_run_insert_rest(arena_t *arena, arena_chunk_t *c, size_t pi, size_t npages,
                           uint32_t bits);

/* Returns the pages of an allocated run [pi, pi+npages) to the free lists
 * in map state `state` (MAP_DIRTY, MAP_UNZEROED, MAP_KEEP or 0). */
void arena_run_release(arena_t *arena, arena_chunk_t *c, size_t pi, size_t npages, uint32_t state);

/* Returns the pages of an allocated run [pi, pi+npages) to the free lists,
 * dirty or clean. */
void arena_run_dalloc(arena_t *arena, arena_chunk_t *c, size_t pi, size_t npages, bool dirty);

/*
 * Large runs, reused by how much of them is resident (doc/design.md, "Reuse
 * by resident length"). arena_run_alloc_large takes a run of npages pages
 * for an object whose request covers its first `used` pages: among the
 * kept runs of exactly that length (MAP_KEEP, at most KEEP_SCAN_MAX looked
 * at) the one whose resident length (page_misc_t.resident) is nearest
 * `used`, else as arena_run_alloc does; *resident is how many of the run's
 * pages from its start may be resident (0: clean). arena_run_dalloc_large
 * frees a large run dirty, kept apart when it has at least
 * LARGE_KEEP_MIN_PAGES pages and the arena purges (else as
 * arena_run_dalloc); its page_misc_t.resident must be set.
 */
bool arena_run_alloc_large(arena_t *arena, size_t npages, size_t used, arena_chunk_t **cp,
                           size_t *pip, bool *zeroed, size_t *resident);
void arena_run_dalloc_large(arena_t *arena, arena_chunk_t *c, size_t pi, size_t npages);

#endif
