/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Chunks: chunk-aligned spans of virtual memory, and the cache of free ones.
 *
 * Arenas take single chunks (CHUNK bytes, CHUNK-aligned) to carve into page
 * runs, and huge allocations take spans that start on a chunk boundary and
 * are a whole number of pages long. Freed spans go into the owning arena's
 * chunk cache, ordered by address with neighbours merged, and are reused
 * before the kernel is asked again: mapping and faulting in memory costs far
 * more than reusing it. Dirty cached spans are purged by the arena's decay
 * (arena.c); purged spans stay mapped (opt.retain, the default) or are
 * unmapped (retain:false); under program-supplied hooks they always go to
 * the dalloc hook.
 *
 * An extent_t describes one span: a cached free span, or a live huge
 * allocation. Extent nodes come from the base allocator and are recycled on
 * the cache's own free list.
 *
 * Locking: a chunk_cache_t is protected by its arena's lock; every function
 * here expects the caller to hold it.
 */
#ifndef ALLOC_INTERNAL_CHUNK_H
#define ALLOC_INTERNAL_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* export.h first: it sets ALLOC_PREFIX, which alloc.h would default. */
#include "alloc/internal/export.h"
#include "alloc.h"

typedef struct arena_s arena_t;
typedef struct extent_s extent_t;

/*
 * Chunk hooks (arena.<i>.chunk_hooks): the functions through which an
 * arena gets, returns, purges, splits and merges chunk memory. The types
 * and the layout of chunk_hooks_t are jemalloc 4's, so a program that
 * installs its own allocator for an arena's memory works unchanged. Every
 * hook but alloc returns false on success; true means "not done" (dalloc:
 * keep the memory mapped; purge: the pages were not zeroed; split/merge:
 * the spans must stay as they are). liballoc never decommits, and commits
 * memory that alloc returned uncommitted before using it. The types are
 * defined once, in the public header.
 */

/* The hooks every arena starts with: mmap, munmap, madvise; splitting and
 * merging always allowed. */
extern const chunk_hooks_t chunk_hooks_default;

struct extent_s {
	/* Start of the span; chunk-aligned for huge allocations and cached
	 * spans that came from them, page-aligned for split-off tails. */
	void *addr;
	/* Length in bytes, a multiple of PAGE. */
	size_t size;
	/* Huge allocations: the usable size (a huge size class, <= size). */
	size_t usize;
	/* Huge allocations: the arena whose cache gets the span back. */
	arena_t *arena;
	/* The span is known to read as zeros (fresh or purged). */
	bool zeroed;
	/* Cached spans: holds data (counts as dirty for purging). A purged
	 * span is not dirty, and reads as zeros unless the purge was
	 * MADV_FREE-like. */
	bool dirty;
	/* Cached dirty spans: part of it was a chunk of page runs (arena
	 * chunks given back empty), whose dirty count may include pages
	 * never faulted in (the class tails past requests): reusing it can
	 * grow the resident set (arena_run_alloc). */
	bool runs;
	/* Cached dirty spans: when the span (its newest part) was freed, in
	 * seconds of CLOCK_MONOTONIC_COARSE. */
	uint64_t dirty_since;
	/* Cache: neighbours in address order. Huge: the arena's list of live
	 * huge allocations. Free nodes: next only. */
	extent_t *prev;
	extent_t *next;
};

typedef struct {
	/* Cached free spans in ascending address order. Adjacent spans are
	 * always merged, so no two entries touch. */
	extent_t *head;
	/* Recycled extent nodes (singly linked through next). */
	extent_t *node_free;
	/* Bytes cached, and of those bytes not known to be zero. */
	size_t cached_bytes;
	size_t dirty_bytes;
	/* Bytes ever mapped from the kernel by this cache and still mapped. */
	size_t mapped_bytes;
	/* Extent nodes made from base memory (never freed, recycled). */
	size_t nodes_made;
	/* The arena's chunk hooks and index (passed to every hook). */
	chunk_hooks_t hooks;
	unsigned arena_ind;
	/* hooks are chunk_hooks_default: no need to ask before splitting or
	 * merging. */
	bool hooks_are_default;
	/* The program's jemalloc 5 hooks when it installed some (hooks are
	 * then extent_hooks.c's translation of them), else NULL. */
	extent_hooks_t *extent_hooks;
	/* The 4.x hooks that arena.<i>.extent_hooks last read as an
	 * extent_hooks_t (extent_hooks.c); zeroed before. */
	chunk_hooks_t face_hooks;
	/* The cache's memory is a fixed region of the caller's (a private
	 * heap): seeded once, never more mapped or unmapped, extent nodes
	 * only from the region. `hooks` is then unused: the region may be
	 * shared by processes whose copies of liballoc sit at different
	 * addresses, so no function pointer is kept in it; every call goes
	 * to chunk_hooks_region of the calling process. */
	bool region;
} chunk_cache_t;

/* The hooks of region caches: alloc has nothing to give, dalloc keeps the
 * memory, split and merge are free, purge returns pages to the kernel with
 * madvise (MADV_REMOVE where the mapping allows, which frees shared memory
 * and reads back zeros, else MADV_DONTNEED, whose result is not counted on
 * to be zeros). */
extern const chunk_hooks_t chunk_hooks_region;

/* The hooks to call for the cache's memory. */
static inline const chunk_hooks_t *
chunk_cache_hooks(const chunk_cache_t *cache) {
	return cache->region ? &chunk_hooks_region : &cache->hooks;
}

/* opt.retain: keep purged spans mapped (true, the default) rather than
 * unmapping them; mappings then never get split, and the process does not
 * run into vm.max_map_count. */
extern bool opt_retain;

void chunk_cache_init(chunk_cache_t *cache, unsigned arena_ind);

/* Turns an empty cache into a region cache holding [addr, addr+size) (whole
 * chunks, contents unknown) whose extent nodes come from nodes[0..nnodes)
 * and nowhere else. */
void chunk_cache_init_region(chunk_cache_t *cache, void *addr, size_t size, extent_t *nodes,
                             size_t nnodes);

/* Replaces the hooks (arena.<i>.chunk_hooks write); every member must be
 * non-NULL. Extent hooks installed before are forgotten, unless `hooks`
 * are their translation read back (extent_hooks_is_chunk_face), which
 * changes nothing: the caller refuses that translation for a cache without
 * extent hooks. */
void chunk_hooks_set(chunk_cache_t *cache, const chunk_hooks_t *hooks);

/* Purges [chunk+offset, +length) of the span [chunk, chunk+size) through
 * the hooks; returns true when the range now reads as zeros. May be called
 * without the arena lock with a copy of the hooks. */
bool chunk_purge_range(const chunk_hooks_t *hooks, unsigned arena_ind, void *chunk, size_t size,
                       size_t offset, size_t length);

/* Asks the hooks whether [a, a+size_a) and the adjacent [b, b+size_b) may
 * become one span (true) — for growing a huge allocation in place. */
bool chunk_may_merge(chunk_cache_t *cache, void *a, size_t size_a, void *b, size_t size_b);

/* Asks the hooks whether [a, a+size) may be cut into size_a + size_b
 * (true) — for shrinking a huge allocation in place. */
bool chunk_may_split(chunk_cache_t *cache, void *a, size_t size, size_t size_a, size_t size_b);

/* Returns an extent node (from the free list or base), or NULL. */
extent_t *chunk_node_alloc(chunk_cache_t *cache);
void chunk_node_free(chunk_cache_t *cache, extent_t *node);

/*
 * Returns `size` bytes (a multiple of PAGE) starting at a multiple of
 * `alignment` (a power of two >= CHUNK): a cached span when one fits,
 * else new memory from the kernel. *zeroed tells whether the memory is known
 * to read as zeros. NULL when the kernel refuses.
 */
void *chunk_alloc(chunk_cache_t *cache, size_t size, size_t alignment, bool *zeroed);

/* Gives [addr, addr+size) back to the cache; `zeroed` when it is known to
 * read as zeros (it is dirty otherwise). */
void chunk_dalloc(chunk_cache_t *cache, void *addr, size_t size, bool zeroed);

/* The same with the state spelled out: `dirty` (holds data, counts for
 * purging) and `zeroed` apart, for a span whose pages were purged but are
 * not known to read as zeros. */
void chunk_dalloc_state(chunk_cache_t *cache, void *addr, size_t size, bool dirty, bool zeroed,
                        bool runs);

/* Takes [addr, addr+size) out of the cache if all of it is cached (for
 * growing a huge allocation in place). Returns true on success and sets
 * *zeroed. */
bool chunk_take_range(chunk_cache_t *cache, void *addr, size_t size, bool *zeroed);

/* Unlinks and returns the dirty cached span that became dirty first, or
 * NULL; at most its last max_size bytes (a multiple of the chunk size) when
 * it is longer, the rest staying cached. The caller purges it (without the
 * lock) and hands it back. */
extent_t *chunk_cache_take_dirty(chunk_cache_t *cache, size_t max_size);

/* Whether a dirty cached span holds `size` bytes at a multiple of
 * `alignment` (chunk_alloc would then take it). */
bool chunk_cache_fits_dirty(const chunk_cache_t *cache, size_t size, size_t alignment, bool runs);
/* Unlinks and returns a dirty piece of at most `size` bytes: the first
 * `size` bytes of the smallest dirty span that holds them (the rest stays
 * cached), else the largest dirty span of at least min_size bytes; NULL when
 * there is none. For making a huge allocation out of resident pages
 * (huge.c, huge_alloc_from_dirty); the caller frees the node once the pages
 * are moved, or gives the piece back with chunk_dalloc. */
extent_t *chunk_cache_take_dirty_piece(chunk_cache_t *cache, size_t size, size_t min_size);
/* Returns a span taken by chunk_cache_take_dirty after purging it
 * (`zeroed`: the purge left it reading as zeros). With opt.retain off the
 * span is unmapped instead, and so it is under any hooks the program
 * installed, whatever opt.retain says: the span goes to their dalloc
 * (kept, purged, if dalloc refuses). opt.retain is about liballoc's own
 * mappings; hooks are the program's contract. */
void chunk_cache_put_purged(chunk_cache_t *cache, extent_t *e, bool zeroed);

/* Gives every cached span back to whoever provided it (munmap with the
 * default hooks), for when a new mapping has failed: under opt.max_bytes or
 * an address-space limit, retained spans too small or misplaced for the
 * request would otherwise stand in its way. Returns the bytes released
 * (spans the hooks refuse to take back stay cached). */
size_t chunk_cache_release(chunk_cache_t *cache);

/* Destroying an arena (arena.<i>.destroy): every cached span goes back
 * through the dalloc hook; a span dalloc refuses goes to the extent hooks'
 * destroy when the program installed extent hooks with one (the memory is
 * then no longer the arena's), and stays cached otherwise. Returns the
 * bytes given back or destroyed. */
size_t chunk_cache_destroy(chunk_cache_t *cache);

/* Checks the cache's invariants (sorted, disjoint, back links, the byte
 * counters); returns NULL, or the text of the first one that fails. Called
 * by arena_validate. */
const char *chunk_cache_validate(const chunk_cache_t *cache);

#endif
