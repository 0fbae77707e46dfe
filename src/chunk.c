/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The chunk cache (see chunk.h): free chunk-aligned spans kept mapped for
 * reuse, in address order with neighbours merged.
 *
 * The cache is a sorted doubly linked list. It holds few entries in practice
 * (spans merge, and arenas keep a spare chunk of their own), and it is only
 * walked on paths that would otherwise call mmap, so a list beats a tree here.
 */
#include "alloc/internal/chunk.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/base.h"
#include "alloc/internal/config.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/extent_hooks.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/prof.h"
#include "alloc/internal/util.h"

bool opt_retain = true;

static uint64_t
chunk_now(void) {
	return decay_now_ns();
}

/* ---------------------------------------------------------------------- */
/* Default hooks. */

static void *
chunk_alloc_default(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit,
                    unsigned arena_ind) {
	(void)arena_ind;
	if (chunk != NULL) {
		/* liballoc never asks for a particular address, and the default
		 * allocator cannot promise one. */
		return NULL;
	}
	void *ret = pages_map_aligned(size, alignment);
	if (ret == NULL) {
		return NULL;
	}
	pages_set_thp(ret, size);
	*zero = true;
	*commit = true;
	return ret;
}

static bool
chunk_dalloc_default(void *chunk, size_t size, bool committed, unsigned arena_ind) {
	(void)committed, (void)arena_ind;
	pages_unmap(chunk, size);
	return false;
}

static bool
chunk_commit_default(void *chunk, size_t size, size_t offset, size_t length, unsigned arena_ind) {
	/* Anonymous mappings are committed from the start. */
	(void)chunk, (void)size, (void)offset, (void)length, (void)arena_ind;
	return false;
}

static bool
chunk_decommit_default(void *chunk, size_t size, size_t offset, size_t length, unsigned arena_ind) {
	/* Not supported: the pages stay committed; purge handles RSS. */
	(void)chunk, (void)size, (void)offset, (void)length, (void)arena_ind;
	return true;
}

static bool
chunk_purge_default(void *chunk, size_t size, size_t offset, size_t length, unsigned arena_ind) {
	(void)size, (void)arena_ind;
	return !pages_purge((char *)chunk + offset, length);
}

static bool
chunk_split_default(void *chunk, size_t size, size_t size_a, size_t size_b, bool committed,
                    unsigned arena_ind) {
	(void)chunk, (void)size, (void)size_a, (void)size_b, (void)committed, (void)arena_ind;
	return false;
}

static bool
chunk_merge_default(void *chunk_a, size_t size_a, void *chunk_b, size_t size_b, bool committed,
                    unsigned arena_ind) {
	(void)chunk_a, (void)size_a, (void)chunk_b, (void)size_b, (void)committed, (void)arena_ind;
	return false;
}

const chunk_hooks_t chunk_hooks_default = {
    chunk_alloc_default, chunk_dalloc_default, chunk_commit_default, chunk_decommit_default,
    chunk_purge_default, chunk_split_default,  chunk_merge_default,
};

/* Region hooks (chunk.h). */

static void *
chunk_alloc_region(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit,
                   unsigned arena_ind) {
	(void)chunk, (void)size, (void)alignment, (void)zero, (void)commit, (void)arena_ind;
	return NULL;
}

static bool
chunk_dalloc_region(void *chunk, size_t size, bool committed, unsigned arena_ind) {
	(void)chunk, (void)size, (void)committed, (void)arena_ind;
	return true;
}

static bool
chunk_decommit_region(void *chunk, size_t size, size_t offset, size_t length, unsigned arena_ind) {
	(void)chunk, (void)size, (void)offset, (void)length, (void)arena_ind;
	return true;
}

static bool
chunk_purge_region(void *chunk, size_t size, size_t offset, size_t length, unsigned arena_ind) {
	(void)size, (void)arena_ind;
	char *addr = (char *)chunk + offset;
	if (madvise(addr, length, MADV_REMOVE) == 0) {
		return false;
	}
	/* A private mapping: its pages go, but a file behind it would show
	 * through, so the range is not counted as zeros. */
	madvise(addr, length, MADV_DONTNEED);
	return true;
}

const chunk_hooks_t chunk_hooks_region = {
    chunk_alloc_region, chunk_dalloc_region, chunk_commit_default, chunk_decommit_region,
    chunk_purge_region, chunk_split_default, chunk_merge_default,
};

void
chunk_hooks_set(chunk_cache_t *cache, const chunk_hooks_t *hooks) {
	if (extent_hooks_is_chunk_face(hooks)) {
		/* The translation of the extent hooks, read back: they stay. */
		return;
	}
	cache->extent_hooks = NULL;
	cache->hooks = *hooks;
	cache->hooks_are_default = memcmp(hooks, &chunk_hooks_default, sizeof(*hooks)) == 0;
}

bool
chunk_purge_range(const chunk_hooks_t *hooks, unsigned arena_ind, void *chunk, size_t size,
                  size_t offset, size_t length) {
	return !hooks->purge(chunk, size, offset, length, arena_ind);
}

bool
chunk_may_merge(chunk_cache_t *cache, void *a, size_t size_a, void *b, size_t size_b) {
	return cache->hooks_are_default ||
	       !chunk_cache_hooks(cache)->merge(a, size_a, b, size_b, true, cache->arena_ind);
}

bool
chunk_may_split(chunk_cache_t *cache, void *a, size_t size, size_t size_a, size_t size_b) {
	return cache->hooks_are_default ||
	       !chunk_cache_hooks(cache)->split(a, size, size_a, size_b, true, cache->arena_ind);
}

/* Returns a span to whoever provided it; false if the hooks keep it
 * mapped (the caller must then keep it). */
static bool
cache_unmap(chunk_cache_t *cache, void *addr, size_t size) {
	if (chunk_cache_hooks(cache)->dalloc(addr, size, true, cache->arena_ind)) {
		return false;
	}
	cache->mapped_bytes -= size;
	prof_gdump_mapped(size, false);
	return true;
}

/* ---------------------------------------------------------------------- */
/* The cache. */

void
chunk_cache_init(chunk_cache_t *cache, unsigned arena_ind) {
	cache->arena_ind = arena_ind;
	cache->extent_hooks = NULL;
	memset(&cache->face_hooks, 0, sizeof(cache->face_hooks));
	chunk_hooks_set(cache, &chunk_hooks_default);
	cache->head = NULL;
	cache->node_free = NULL;
	cache->cached_bytes = 0;
	cache->dirty_bytes = 0;
	cache->mapped_bytes = 0;
	cache->nodes_made = 0;
	cache->region = false;
}

static void cache_insert(chunk_cache_t *cache, extent_t *node);

void
chunk_cache_init_region(chunk_cache_t *cache, void *addr, size_t size, extent_t *nodes,
                        size_t nnodes) {
	cache->region = true;
	cache->hooks_are_default = false;
	memset(&cache->hooks, 0, sizeof(cache->hooks));
	for (size_t i = nnodes; i-- > 0;) {
		chunk_node_free(cache, &nodes[i]);
	}
	cache->nodes_made = nnodes;
	cache->mapped_bytes = size;
	extent_t *node = chunk_node_alloc(cache);
	node->addr = addr;
	node->size = size;
	/* Neither known zeros nor dirty: calloc clears it, purging leaves
	 * it alone until the arena used it. */
	node->zeroed = false;
	node->dirty = false;
	node->runs = false;
	node->dirty_since = chunk_now();
	cache_insert(cache, node);
}

extent_t *
chunk_node_alloc(chunk_cache_t *cache) {
	extent_t *node = cache->node_free;
	if (node != NULL) {
		cache->node_free = node->next;
		return node;
	}
	if (cache->region) {
		return NULL;
	}
	node = base_alloc(sizeof(extent_t));
	if (node != NULL) {
		cache->nodes_made++;
	}
	return node;
}

void
chunk_node_free(chunk_cache_t *cache, extent_t *node) {
	node->next = cache->node_free;
	cache->node_free = node;
}

static void
cache_unlink(chunk_cache_t *cache, extent_t *e) {
	if (e->prev != NULL) {
		e->prev->next = e->next;
	} else {
		cache->head = e->next;
	}
	if (e->next != NULL) {
		e->next->prev = e->prev;
	}
	cache->cached_bytes -= e->size;
	if (e->dirty) {
		cache->dirty_bytes -= e->size;
	}
}

/* Links e after `prev` (NULL: at the head). */
static void
cache_link_after(chunk_cache_t *cache, extent_t *prev, extent_t *e) {
	e->prev = prev;
	e->next = prev != NULL ? prev->next : cache->head;
	if (e->next != NULL) {
		e->next->prev = e;
	}
	if (prev != NULL) {
		prev->next = e;
	} else {
		cache->head = e;
	}
	cache->cached_bytes += e->size;
	if (e->dirty) {
		cache->dirty_bytes += e->size;
	}
}

/*
 * Inserts a span, merging it with the spans it touches that are in the same
 * dirty state: keeping dirty and purged spans apart lets purging find the
 * dirty bytes exactly. A merged span reads as zeros only if both parts do.
 */
static void
cache_insert(chunk_cache_t *cache, extent_t *node) {
	char *addr = node->addr;
	extent_t *prev = NULL;
	extent_t *next = cache->head;
	while (next != NULL && (char *)next->addr < addr) {
		prev = next;
		next = next->next;
	}
	if (prev != NULL && (char *)prev->addr + prev->size == addr && prev->dirty == node->dirty &&
	    chunk_may_merge(cache, prev->addr, prev->size, node->addr, node->size)) {
		cache_unlink(cache, prev);
		prev->size += node->size;
		prev->zeroed = prev->zeroed && node->zeroed;
		prev->runs = prev->runs || node->runs;
		if (node->dirty_since > prev->dirty_since) {
			prev->dirty_since = node->dirty_since;
		}
		chunk_node_free(cache, node);
		node = prev;
		prev = node->prev;
	}
	if (next != NULL && (char *)node->addr + node->size == (char *)next->addr &&
	    next->dirty == node->dirty &&
	    chunk_may_merge(cache, node->addr, node->size, next->addr, next->size)) {
		cache_unlink(cache, next);
		node->size += next->size;
		node->zeroed = node->zeroed && next->zeroed;
		node->runs = node->runs || next->runs;
		if (next->dirty_since > node->dirty_since) {
			node->dirty_since = next->dirty_since;
		}
		chunk_node_free(cache, next);
	}
	cache_link_after(cache, prev, node);
}

/* Keeps [addr, addr+size) of a span just taken out of the cache, and puts
 * the lead and trail back. Returns false if a node for them is missing (the
 * span then goes back whole). */
static bool
cache_split(chunk_cache_t *cache, extent_t *e, char *addr, size_t size) {
	size_t lead = (size_t)(addr - (char *)e->addr);
	size_t trail = e->size - lead - size;
	extent_t *lead_node = NULL;
	extent_t *trail_node = NULL;
	if ((lead != 0 && !chunk_may_split(cache, e->addr, e->size, lead, e->size - lead)) ||
	    (trail != 0 && !chunk_may_split(cache, addr, size + trail, size, trail))) {
		return false;
	}
	if (lead != 0 && (lead_node = chunk_node_alloc(cache)) == NULL) {
		return false;
	}
	if (trail != 0 && (trail_node = chunk_node_alloc(cache)) == NULL) {
		if (lead_node != NULL) {
			chunk_node_free(cache, lead_node);
		}
		return false;
	}
	if (lead_node != NULL) {
		lead_node->addr = e->addr;
		lead_node->size = lead;
		lead_node->zeroed = e->zeroed;
		lead_node->dirty = e->dirty;
		lead_node->runs = e->runs;
		lead_node->dirty_since = e->dirty_since;
		cache_insert(cache, lead_node);
	}
	if (trail_node != NULL) {
		trail_node->addr = addr + size;
		trail_node->size = trail;
		trail_node->zeroed = e->zeroed;
		trail_node->dirty = e->dirty;
		trail_node->runs = e->runs;
		trail_node->dirty_since = e->dirty_since;
		cache_insert(cache, trail_node);
	}
	return true;
}

void *
chunk_alloc(chunk_cache_t *cache, size_t size, size_t alignment, bool *zeroed) {
	assert_internal(size != 0 && (size & PAGE_MASK) == 0);
	assert_internal(is_pow2(alignment) && alignment >= CHUNK);

	/* Best fit: the smallest cached span holding an aligned range, dirty
	 * spans first (their pages are already faulted in, reusing them costs
	 * nothing); among equals the lowest address, which keeps the heap
	 * compact. */
	extent_t *best = NULL;
	size_t best_size = SIZE_MAX;
	bool best_dirty = false;
	for (extent_t *e = cache->head; e != NULL; e = e->next) {
		char *aligned = (char *)ALIGN_UP((uintptr_t)e->addr, alignment);
		char *end = (char *)e->addr + e->size;
		if (aligned >= end || (size_t)(end - aligned) < size) {
			continue;
		}
		bool dirty = e->dirty;
		if (best == NULL || (dirty && !best_dirty) ||
		    (dirty == best_dirty && e->size < best_size)) {
			best = e;
			best_size = e->size;
			best_dirty = dirty;
		}
	}
	if (best != NULL) {
		char *addr = (char *)ALIGN_UP((uintptr_t)best->addr, alignment);
		cache_unlink(cache, best);
		if (cache_split(cache, best, addr, size)) {
			*zeroed = best->zeroed;
			chunk_node_free(cache, best);
			return addr;
		}
		cache_insert(cache, best);
	}

	if (cache->region) {
		/* The region is all there is. */
		return NULL;
	}
	bool zero = false;
	bool commit = true;
	void *fresh = cache->hooks.alloc(NULL, size, alignment, &zero, &commit, cache->arena_ind);
	if (fresh == NULL) {
		return NULL;
	}
	if (((uintptr_t)fresh & (alignment - 1)) != 0) {
		/* A hook that ignored the alignment: refuse its memory. */
		cache->hooks.dalloc(fresh, size, commit, cache->arena_ind);
		return NULL;
	}
	if (!commit && cache->hooks.commit(fresh, size, 0, size, cache->arena_ind)) {
		cache->hooks.dalloc(fresh, size, false, cache->arena_ind);
		return NULL;
	}
	cache->mapped_bytes += size;
	prof_gdump_mapped(size, true);
	*zeroed = zero;
	return fresh;
}

void
chunk_dalloc_state(chunk_cache_t *cache, void *addr, size_t size, bool dirty, bool zeroed,
                   bool runs) {
	extent_t *node = chunk_node_alloc(cache);
	if (node == NULL) {
		/* No metadata memory: give the span back rather than lose track
		 * of it (if the hooks keep it, it is lost to this arena). */
		cache_unmap(cache, addr, size);
		return;
	}
	node->addr = addr;
	node->size = size;
	node->zeroed = zeroed;
	node->dirty = dirty;
	node->runs = dirty && runs;
	node->dirty_since = chunk_now();
	cache_insert(cache, node);
}

void
chunk_dalloc(chunk_cache_t *cache, void *addr, size_t size, bool zeroed) {
	chunk_dalloc_state(cache, addr, size, !zeroed, zeroed, false);
}

extent_t *
chunk_cache_take_dirty(chunk_cache_t *cache, size_t max_size) {
	extent_t *oldest = NULL;
	for (extent_t *e = cache->head; e != NULL; e = e->next) {
		if (e->dirty && (oldest == NULL || e->dirty_since < oldest->dirty_since)) {
			oldest = e;
		}
	}
	if (oldest == NULL) {
		return NULL;
	}
	cache_unlink(cache, oldest);
	if (oldest->size > max_size) {
		/* Its last max_size bytes (the start stays, for a best fit at
		 * the lowest address). */
		char *addr = (char *)oldest->addr + oldest->size - max_size;
		if (cache_split(cache, oldest, addr, max_size)) {
			oldest->addr = addr;
			oldest->size = max_size;
		}
	}
	return oldest;
}

bool
chunk_cache_fits_dirty(const chunk_cache_t *cache, size_t size, size_t alignment, bool runs) {
	for (const extent_t *e = cache->head; e != NULL; e = e->next) {
		char *aligned = (char *)ALIGN_UP((uintptr_t)e->addr, alignment);
		char *end = (char *)e->addr + e->size;
		if (e->dirty && (runs || !e->runs) && aligned < end &&
		    (size_t)(end - aligned) >= size) {
			return true;
		}
	}
	return false;
}

extent_t *
chunk_cache_take_dirty_piece(chunk_cache_t *cache, size_t size, size_t min_size) {
	extent_t *fit = NULL;
	extent_t *largest = NULL;
	for (extent_t *e = cache->head; e != NULL; e = e->next) {
		if (!e->dirty) {
			continue;
		}
		if (e->size >= size) {
			if (fit == NULL || e->size < fit->size) {
				fit = e;
			}
		} else if (e->size >= min_size && (largest == NULL || e->size > largest->size)) {
			largest = e;
		}
	}
	if (fit != NULL) {
		cache_unlink(cache, fit);
		if (!cache_split(cache, fit, fit->addr, size)) {
			cache_insert(cache, fit);
			return NULL;
		}
		fit->size = size;
		return fit;
	}
	if (largest != NULL) {
		cache_unlink(cache, largest);
	}
	return largest;
}

void
chunk_cache_put_purged(chunk_cache_t *cache, extent_t *e, bool zeroed) {
	if ((!opt_retain || !cache->hooks_are_default) && cache_unmap(cache, e->addr, e->size)) {
		chunk_node_free(cache, e);
		return;
	}
	e->zeroed = zeroed;
	e->dirty = false;
	e->runs = false;
	cache_insert(cache, e);
}

bool
chunk_take_range(chunk_cache_t *cache, void *addr, size_t size, bool *zeroed) {
	char *want = addr;
	for (extent_t *e = cache->head; e != NULL; e = e->next) {
		char *start = e->addr;
		char *end = start + e->size;
		if (start > want) {
			return false;
		}
		if (end >= want + size) {
			cache_unlink(cache, e);
			if (!cache_split(cache, e, want, size)) {
				cache_insert(cache, e);
				return false;
			}
			*zeroed = e->zeroed;
			chunk_node_free(cache, e);
			return true;
		}
	}
	return false;
}

size_t
chunk_cache_release(chunk_cache_t *cache) {
	size_t released = 0;
	/* Spans the hooks keep go back in only at the end: inserting merges,
	 * which would change the list being walked. */
	extent_t *kept = NULL;
	extent_t *e;
	while ((e = cache->head) != NULL) {
		cache_unlink(cache, e);
		if (cache_unmap(cache, e->addr, e->size)) {
			released += e->size;
			chunk_node_free(cache, e);
		} else {
			e->next = kept;
			kept = e;
		}
	}
	while (kept != NULL) {
		e = kept;
		kept = e->next;
		cache_insert(cache, e);
	}
	return released;
}

size_t
chunk_cache_destroy(chunk_cache_t *cache) {
	size_t given = chunk_cache_release(cache);
	extent_hooks_t *ext = cache->extent_hooks;
	if (ext == NULL || ext->destroy == NULL) {
		return given;
	}
	/* What is left was refused by dalloc: retained until now. */
	extent_t *e;
	while ((e = cache->head) != NULL) {
		cache_unlink(cache, e);
		ext->destroy(ext, e->addr, e->size, true, cache->arena_ind);
		cache->mapped_bytes -= e->size;
		given += e->size;
		chunk_node_free(cache, e);
	}
	return given;
}

const char *
chunk_cache_validate(const chunk_cache_t *cache) {
	size_t cached = 0;
	size_t dirty = 0;
	const extent_t *prev = NULL;
	for (const extent_t *e = cache->head; e != NULL; e = e->next) {
		VALIDATE_CHECK(e->prev == prev);
		VALIDATE_CHECK(e->size != 0 && (e->size & PAGE_MASK) == 0);
		VALIDATE_CHECK(((uintptr_t)e->addr & PAGE_MASK) == 0);
		/* Address order, no overlap. */
		VALIDATE_CHECK(prev == NULL || (char *)prev->addr + prev->size <= (char *)e->addr);
		cached += e->size;
		if (e->dirty) {
			dirty += e->size;
		}
		prev = e;
	}
	VALIDATE_CHECK(cached == cache->cached_bytes);
	VALIDATE_CHECK(dirty == cache->dirty_bytes);
	VALIDATE_CHECK(cached <= cache->mapped_bytes);
	return NULL;
}
