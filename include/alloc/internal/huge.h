/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Huge allocations: requests of CHUNK bytes or more, each a span of its own
 * that starts on a chunk boundary. A chunk-aligned pointer is therefore
 * either huge or not ours; the radix tree huge_rtree maps the start of every
 * live huge allocation to its extent_t. Spans come from, and return to, the
 * chunk cache of the arena that made them.
 */
#ifndef ALLOC_INTERNAL_HUGE_H
#define ALLOC_INTERNAL_HUGE_H

#include <stdbool.h>
#include <stddef.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/chunk.h"
#include "alloc/internal/pages.h"

/* opt.oversize_threshold (jemalloc 5): huge blocks of at least this many
 * bytes have their pages purged when freed (when their arena purges at
 * all) instead of staying dirty for decay; 0, the default, turns it off. */
extern size_t opt_oversize_threshold;

/* Sets up the radix tree; returns true on failure. */
bool huge_boot(void);

/* usize is a huge size class; alignment a power of two (any, CHUNK is
 * implied). NULL when memory is short. */
void *huge_malloc(arena_t *arena, size_t usize, size_t alignment, bool zero);

/* The extent of the huge allocation starting at ptr, or NULL. */
extent_t *huge_lookup(const void *ptr);

/* Enters a live huge allocation another process made in a shared heap
 * (heap.c) into this process's radix tree; true on failure. */
bool huge_adopt(extent_t *e);

/* Frees every huge allocation of the arena at once (arena.<i>.reset, before
 * arena_reset): their spans go back to the arena's chunk cache. */
void huge_reset(arena_t *arena);

/* Frees a huge allocation and returns its usable size; aborts with a
 * message if ptr is not one. `purge` (or opt.oversize_threshold): purge its pages at once (when the
 * arena purges at all) instead of leaving them dirty for decay, for the old
 * block of a copying reallocation. */
size_t huge_dalloc(void *ptr, bool purge);

/* Resizes a huge allocation in place to the huge class new_usize; returns
 * false (nothing changed) when the following memory is not available. A
 * shrink gives the tail back purged (see huge_dalloc). */
bool huge_ralloc_in_place(extent_t *extent, size_t new_usize, bool zero);

/* Grows a huge allocation to the huge class new_usize (> its size) by
 * extending its mapping where it is (memory of the default chunk hooks
 * only; the address space after it must be free). PAGES_GREW when it did,
 * with the grown bytes zeroed; otherwise nothing changed, and
 * PAGES_MOVABLE says huge_ralloc_remap could still move it. */
pages_grow_t huge_ralloc_extend(extent_t *e, size_t new_usize);

/* Grows a huge allocation to the huge class new_usize (> its size) without
 * copying: extends its mapping where it is, or moves its pages with mremap
 * to a new span aligned to `alignment` (a power of two; CHUNK implied).
 * Only for memory of the default chunk hooks. Returns the (possibly new)
 * address, with the grown bytes zeroed; NULL when it cannot (the
 * allocation is then unchanged: copy it). */
void *huge_ralloc_remap(extent_t *extent, size_t new_usize, size_t alignment);

void huge_prefork(void);
void huge_postfork_parent(void);
void huge_postfork_child(void);

#endif
