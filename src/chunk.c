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
#include <time.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/base.h"
#include "alloc/internal/config.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/pages.h"

bool opt_retain = true;

static uint64_t
chunk_now(void) {
	return decay_now_ns();
}

void
chunk_cache_init(chunk_cache_t *cache) {
	cache->head = NULL;
	cache->node_free = NULL;
	cache->cached_bytes = 0;
	cache->dirty_bytes = 0;
	cache->mapped_bytes = 0;
}

extent_t *
chunk_node_alloc(chunk_cache_t *cache) {
	extent_t *node = cache->node_free;
	if (node != NULL) {
		cache->node_free = node->next;
		return node;
	}
	return base_alloc(sizeof(extent_t));
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
	if (!e->zeroed) {
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
	if (!e->zeroed) {
		cache->dirty_bytes += e->size;
	}
}

/*
 * Inserts a span, merging it with the spans it touches that are in the same
 * state (dirty or zeroed): keeping the two apart lets purging find the
 * dirty bytes exactly and lets calloc rely on zeroed spans.
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
	if (prev != NULL && (char *)prev->addr + prev->size == addr &&
	    prev->zeroed == node->zeroed) {
		cache_unlink(cache, prev);
		prev->size += node->size;
		prev->zeroed = prev->zeroed && node->zeroed;
		if (node->dirty_since > prev->dirty_since) {
			prev->dirty_since = node->dirty_since;
		}
		chunk_node_free(cache, node);
		node = prev;
		prev = node->prev;
	}
	if (next != NULL && (char *)node->addr + node->size == (char *)next->addr &&
	    next->zeroed == node->zeroed) {
		cache_unlink(cache, next);
		node->size += next->size;
		node->zeroed = node->zeroed && next->zeroed;
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
		lead_node->dirty_since = e->dirty_since;
		cache_insert(cache, lead_node);
	}
	if (trail_node != NULL) {
		trail_node->addr = addr + size;
		trail_node->size = trail;
		trail_node->zeroed = e->zeroed;
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
		bool dirty = !e->zeroed;
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

	void *fresh = pages_map_aligned(size, alignment);
	if (fresh == NULL) {
		return NULL;
	}
	pages_set_thp(fresh, size);
	cache->mapped_bytes += size;
	*zeroed = true;
	return fresh;
}

void
chunk_dalloc(chunk_cache_t *cache, void *addr, size_t size, bool zeroed) {
	extent_t *node = chunk_node_alloc(cache);
	if (node == NULL) {
		/* No metadata memory: give the span back to the kernel rather
		 * than lose track of it. */
		pages_unmap(addr, size);
		cache->mapped_bytes -= size;
		return;
	}
	node->addr = addr;
	node->size = size;
	node->zeroed = zeroed;
	node->dirty_since = chunk_now();
	cache_insert(cache, node);
}

extent_t *
chunk_cache_take_dirty(chunk_cache_t *cache) {
	extent_t *oldest = NULL;
	for (extent_t *e = cache->head; e != NULL; e = e->next) {
		if (!e->zeroed && (oldest == NULL || e->dirty_since < oldest->dirty_since)) {
			oldest = e;
		}
	}
	if (oldest != NULL) {
		cache_unlink(cache, oldest);
	}
	return oldest;
}

void
chunk_cache_put_purged(chunk_cache_t *cache, extent_t *e, bool zeroed) {
	if (!opt_retain) {
		pages_unmap(e->addr, e->size);
		cache->mapped_bytes -= e->size;
		chunk_node_free(cache, e);
		return;
	}
	e->zeroed = zeroed;
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
