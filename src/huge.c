/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Huge allocations (see huge.h).
 */
#include "alloc/internal/huge.h"

#include <string.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/base.h"
#include "alloc/internal/message.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/rtree.h"

size_t opt_oversize_threshold = 0;

/* Start address of each live huge allocation -> its extent. */
static rtree_t huge_rtree;

static void *
huge_rtree_node_alloc(size_t size) {
	return base_alloc(size);
}

bool
huge_boot(void) {
	rtree_init(&huge_rtree, huge_rtree_node_alloc);
	return false;
}

static void
huge_stats_add(arena_t *a, size_t usize, bool add) {
	if (add) {
		a->nactive_huge += usize >> LG_PAGE;
	} else {
		a->nactive_huge -= usize >> LG_PAGE;
	}
	if (!config_stats) {
		return;
	}
	large_stats_t *hs = &a->stats.hstats[sz_size2index(usize) - SZ_NPAGED];
	if (add) {
		hs->nmalloc++;
		hs->nrequests++;
		hs->curruns++;
		a->stats.allocated_huge += usize;
		arena_cactive_add(usize);
	} else {
		hs->ndalloc++;
		hs->curruns--;
		a->stats.allocated_huge -= usize;
		arena_cactive_sub(usize);
	}
}

static void
huge_list_remove(arena_t *a, extent_t *e) {
	if (e->prev != NULL) {
		e->prev->next = e->next;
	} else {
		a->huge_list = e->next;
	}
	if (e->next != NULL) {
		e->next->prev = e->prev;
	}
}

/* Under a->lock: e's allocation now has the usable size new_usize. */
static void
huge_resize_locked(arena_t *a, extent_t *e, size_t new_usize) {
	huge_stats_add(a, e->usize, false);
	huge_stats_add(a, new_usize, true);
	e->size = new_usize;
	e->usize = new_usize;
}

/*
 * Gives back [addr, addr+size), which a reallocation no longer needs, to
 * a's cache, using `node` (an extent the caller owns) for it. When the arena
 * purges at all (decay_time >= 0, or lg_dirty_mult >= 0 under purge:ratio)
 * the pages are purged at once rather than left dirty for decay: the
 * program said it is done with them, and a growing or shrinking block would
 * otherwise keep its old copies resident (see doc/design.md, "Huge
 * reallocation"). Takes a->lock.
 */
static void
huge_release(arena_t *a, extent_t *node, void *addr, size_t size) {
	mutex_lock(&a->lock);
	if (!arena_purges(a)) {
		chunk_node_free(&a->chunks, node);
		chunk_dalloc(&a->chunks, addr, size, false);
		mutex_unlock(&a->lock);
		return;
	}
	chunk_hooks_t hooks = *chunk_cache_hooks(&a->chunks);
	mutex_unlock(&a->lock);
	bool zeroed = chunk_purge_range(&hooks, a->chunks.arena_ind, addr, size, 0, size);
	mutex_lock(&a->lock);
	node->addr = addr;
	node->size = size;
	chunk_cache_put_purged(&a->chunks, node, zeroed);
	arena_count_purge(a, size >> LG_PAGE);
	mutex_unlock(&a->lock);
}

/* The most dirty spans one huge allocation is made of (huge_alloc_from_dirty). */
#define HUGE_DIRTY_PIECES_MAX 16

/*
 * A chunk-aligned span of `usize` bytes made of dirty cached spans when
 * none holds usize bytes alone: their pages are resident already, and the
 * program is about to fault in usize fresh bytes while they sit beside the
 * new block until decay. So the pieces (the largest first, each at least a
 * chunk; the last one the first part of a span that holds the rest) are
 * moved with mremap onto a destination from the cache or the kernel, one
 * after the other: the kernel moves page tables, nothing is copied or
 * faulted in, and the resident set grows only by what the pieces do not
 * cover. Each piece's old range becomes a hole (not mapped, not cached), as
 * after a moving realloc. See doc/design.md, "Reuse before purge".
 *
 * Default hooks only (the memory is liballoc's own mappings), for callers
 * that want no zeroed memory, and only on kernels that move a range made
 * of several mappings (Linux 6.17 on, pages_can_move_parts): the block is
 * several mappings, which a growing realloc must move that way. When the
 * kernel will not move a piece, it and the pieces after it go back to the
 * cache, and their part of the destination stays fresh. Returns NULL, the
 * cache as before, when there is nothing to move or no destination; the
 * caller then takes the usual path. Takes a->lock.
 */
static void *
huge_alloc_from_dirty(arena_t *a, size_t usize, size_t alignment) {
	extent_t *piece[HUGE_DIRTY_PIECES_MAX];
	unsigned npieces = 0;
	size_t got = 0;
	mutex_lock(&a->lock);
	if (!a->chunks.hooks_are_default || a->chunks.region || alignment != CHUNK ||
	    a->chunks.dirty_bytes < CHUNK ||
	    chunk_cache_fits_dirty(&a->chunks, usize, alignment, true)) {
		mutex_unlock(&a->lock);
		return NULL;
	}
	mutex_unlock(&a->lock);
	/* The block would be several mappings, which a realloc can move only
	 * on such kernels (else it copies). */
	if (!pages_can_move_parts()) {
		return NULL;
	}
	mutex_lock(&a->lock);
	while (npieces < HUGE_DIRTY_PIECES_MAX && got < usize) {
		extent_t *p = chunk_cache_take_dirty_piece(&a->chunks, usize - got, CHUNK);
		if (p == NULL) {
			break;
		}
		piece[npieces++] = p;
		got += p->size;
	}
	bool zeroed;
	char *dest = npieces == 0 ? NULL : chunk_alloc(&a->chunks, usize, alignment, &zeroed);
	if (dest == NULL) {
		for (unsigned i = 0; i < npieces; i++) {
			void *addr = piece[i]->addr;
			size_t size = piece[i]->size;
			chunk_node_free(&a->chunks, piece[i]);
			chunk_dalloc(&a->chunks, addr, size, false);
		}
		mutex_unlock(&a->lock);
		return NULL;
	}
	mutex_unlock(&a->lock);

	/* The destination is ours alone: move without the lock. */
	size_t off = 0;
	unsigned i = 0;
	pages_move_t m = PAGES_MOVED;
	for (; i < npieces; i++) {
		m = pages_move(piece[i]->addr, piece[i]->size, dest + off, piece[i]->size);
		if (m != PAGES_MOVED) {
			/* The others would most likely fail the same way. */
			break;
		}
		off += piece[i]->size;
	}

	size_t lost = m == PAGES_DEST_LOST ? piece[i]->size : 0;
	mutex_lock(&a->lock);
	/* Moved pieces (the first i) are holes now; the others go back. */
	a->chunks.mapped_bytes -= off;
	for (unsigned j = 0; j < npieces; j++) {
		void *addr = piece[j]->addr;
		size_t size = piece[j]->size;
		chunk_node_free(&a->chunks, piece[j]);
		if (j >= i) {
			chunk_dalloc(&a->chunks, addr, size, false);
		}
	}
	if (m == PAGES_DEST_LOST) {
		/* Part of the destination may now be another mapping: give up
		 * the block, keeping what is still ours around the lost part. */
		a->chunks.mapped_bytes -= lost;
		if (off != 0) {
			chunk_dalloc(&a->chunks, dest, off, false);
		}
		if (off + lost < usize) {
			chunk_dalloc(&a->chunks, dest + off + lost, usize - off - lost, false);
		}
		mutex_unlock(&a->lock);
		return NULL;
	}
	arena_grow_bound(a, (usize - off) >> LG_PAGE, false);
	mutex_unlock(&a->lock);
	return dest;
}

/*
 * huge_malloc, trying once more when the metadata could not be had
 * (`retry`): the span's radix-tree leaf is base memory, mapped on demand,
 * and when the address space is full (RLIMIT_AS, opt.max_bytes) of chunks
 * the caches hold, no leaf can be mapped even though a cached span fits.
 * Giving the cached chunks back makes room for the leaf; the span then
 * comes from a fresh mapping. (With 64 KiB pages every leaf, being page
 * aligned, tends to need a base block of its own: the case that showed
 * it.)
 */
static void *
huge_malloc_try(arena_t *a, size_t usize, size_t alignment, bool zero, bool retry) {
	if (alignment < CHUNK) {
		alignment = CHUNK;
	}
	bool zeroed = false;
	arena_note_alloc(a);
	mutex_lock(&a->lock);
	if (a->nempty != 0 && !chunk_cache_fits_dirty(&a->chunks, usize, alignment, true)) {
		/* Free chunks the runs keep, before fresh memory. */
		arena_release_empty(a);
	}
	mutex_unlock(&a->lock);
	void *addr = zero ? NULL : huge_alloc_from_dirty(a, usize, alignment);
	mutex_lock(&a->lock);
	extent_t *e = chunk_node_alloc(&a->chunks);
	if (e == NULL) {
		if (addr != NULL) {
			chunk_dalloc(&a->chunks, addr, usize, false);
		}
		mutex_unlock(&a->lock);
		return NULL;
	}
	if (addr == NULL) {
		size_t dirty_before = a->chunks.dirty_bytes;
		addr = chunk_alloc(&a->chunks, usize, alignment, &zeroed);
		if (addr == NULL && arena_release_cached(a)) {
			addr = chunk_alloc(&a->chunks, usize, alignment, &zeroed);
		}
		if (addr == NULL) {
			chunk_node_free(&a->chunks, e);
			mutex_unlock(&a->lock);
			return NULL;
		}
		if (a->chunks.dirty_bytes + usize > dirty_before) {
			/* Not (only) dirty cached memory: pages to fault in.
			 * The span is the caller's already, out of the
			 * purge's reach. */
			arena_grow_bound(
			    a, (a->chunks.dirty_bytes + usize - dirty_before) >> LG_PAGE, false);
		}
	}
	e->addr = addr;
	e->size = usize;
	e->usize = usize;
	e->arena = a;
	e->zeroed = false;
	e->prev = NULL;
	e->next = a->huge_list;
	if (e->next != NULL) {
		e->next->prev = e;
	}
	a->huge_list = e;
	huge_stats_add(a, usize, true);
	mutex_unlock(&a->lock);

	if (rtree_set(&huge_rtree, (uintptr_t)addr, e)) {
		mutex_lock(&a->lock);
		huge_list_remove(a, e);
		huge_stats_add(a, usize, false);
		chunk_dalloc(&a->chunks, addr, usize, zeroed);
		chunk_node_free(&a->chunks, e);
		retry = retry && arena_release_cached(a);
		mutex_unlock(&a->lock);
		return retry ? huge_malloc_try(a, usize, alignment, zero, false) : NULL;
	}
	if (zero && !zeroed) {
		memset(addr, 0, usize);
	}
	return addr;
}

void *
huge_malloc(arena_t *a, size_t usize, size_t alignment, bool zero) {
	assert_internal(usize >= CHUNK && (usize & PAGE_MASK) == 0);
	return huge_malloc_try(a, usize, alignment, zero, true);
}

extent_t *
huge_lookup(const void *ptr) {
	return rtree_get(&huge_rtree, (uintptr_t)ptr);
}

bool
huge_adopt(extent_t *e) {
	return rtree_set(&huge_rtree, (uintptr_t)e->addr, e);
}

void
huge_reset(arena_t *a) {
	mutex_lock(&a->lock);
	extent_t *e = a->huge_list;
	while (e != NULL) {
		extent_t *next = e->next;
		rtree_clear(&huge_rtree, (uintptr_t)e->addr);
		chunk_dalloc(&a->chunks, e->addr, e->size, false);
		chunk_node_free(&a->chunks, e);
		e = next;
	}
	a->huge_list = NULL;
	a->nactive_huge = 0;
	arena_cactive_sub(a->stats.allocated_huge);
	a->stats.allocated_huge = 0;
	for (szind_t i = 0; i < SZ_NHUGE; i++) {
		a->stats.hstats[i].curruns = 0;
	}
	mutex_unlock(&a->lock);
}

size_t
huge_dalloc(void *ptr, bool purge) {
	extent_t *e = rtree_get(&huge_rtree, (uintptr_t)ptr);
	if (unlikely(e == NULL)) {
		msg_fatal(
		    "invalid pointer: %p (free, realloc or sdallocx of a pointer not returned "
		    "by malloc, or freed twice)",
		    ptr);
	}
	rtree_clear(&huge_rtree, (uintptr_t)ptr);
	arena_t *a = e->arena;
	size_t usize = e->usize;
	/* opt.oversize_threshold: blocks this big are not kept dirty. */
	if (opt_oversize_threshold != 0 && usize >= opt_oversize_threshold) {
		purge = true;
	}
	mutex_lock(&a->lock);
	huge_list_remove(a, e);
	huge_stats_add(a, e->usize, false);
	if (purge) {
		mutex_unlock(&a->lock);
		/* The extent becomes the cache's node for the span. */
		huge_release(a, e, e->addr, e->size);
		return usize;
	}
	chunk_dalloc(&a->chunks, e->addr, e->size, false);
	chunk_node_free(&a->chunks, e);
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
	return usize;
}

bool
huge_ralloc_in_place(extent_t *e, size_t new_usize, bool zero) {
	arena_t *a = e->arena;
	char *addr = e->addr;
	size_t old_size = e->size;
	if (new_usize == e->usize) {
		return true;
	}
	bool zeroed = true;
	mutex_lock(&a->lock);
	if (new_usize > old_size &&
	    (!chunk_may_merge(&a->chunks, addr, old_size, addr + old_size, new_usize - old_size) ||
	     !chunk_take_range(&a->chunks, addr + old_size, new_usize - old_size, &zeroed))) {
		mutex_unlock(&a->lock);
		return false;
	}
	if (new_usize < old_size &&
	    !chunk_may_split(&a->chunks, addr, old_size, new_usize, old_size - new_usize)) {
		mutex_unlock(&a->lock);
		return false;
	}
	huge_resize_locked(a, e, new_usize);
	extent_t *tail = NULL;
	if (new_usize < old_size && (tail = chunk_node_alloc(&a->chunks)) == NULL) {
		/* No node to spare: the tail goes back dirty (chunk_dalloc
		 * copes without one). */
		chunk_dalloc(&a->chunks, addr + new_usize, old_size - new_usize, false);
		arena_maybe_purge(a);
	}
	mutex_unlock(&a->lock);
	if (tail != NULL) {
		huge_release(a, tail, addr + new_usize, old_size - new_usize);
	}
	/* The grown tail is ours alone now; zero it without the lock. */
	if (zero && new_usize > old_size && !zeroed) {
		memset(addr + old_size, 0, new_usize - old_size);
	}
	return true;
}

pages_grow_t
huge_ralloc_extend(extent_t *e, size_t new_usize) {
	arena_t *a = e->arena;
	assert_internal(new_usize > e->size && (new_usize & PAGE_MASK) == 0);
	mutex_lock(&a->lock);
	bool ours = a->chunks.hooks_are_default;
	mutex_unlock(&a->lock);
	if (!ours) {
		return PAGES_UNMOVABLE;
	}
	pages_grow_t ret = pages_grow(e->addr, e->size, new_usize);
	if (ret == PAGES_GREW) {
		mutex_lock(&a->lock);
		a->chunks.mapped_bytes += new_usize - e->size;
		huge_resize_locked(a, e, new_usize);
		mutex_unlock(&a->lock);
	}
	return ret;
}

void *
huge_ralloc_remap(extent_t *e, size_t new_usize, size_t alignment) {
	arena_t *a = e->arena;
	char *old = e->addr;
	size_t old_size = e->size;
	assert_internal(new_usize > old_size && (new_usize & PAGE_MASK) == 0);
	if (alignment < CHUNK) {
		alignment = CHUNK;
	}
	/* pages_grow() is also the test that the old span is one mapping,
	 * which pages_move() needs; an old span at the wrong alignment could
	 * not grow where it is anyway: copy it. */
	if (((uintptr_t)old & (alignment - 1)) != 0) {
		return NULL;
	}
	/* parts: several mappings, moved as they are (same size); the rest
	 * of the destination is then made to read as zeros here. */
	bool parts = false;
	switch (huge_ralloc_extend(e, new_usize)) {
	case PAGES_GREW:
		return old;
	case PAGES_MOVABLE:
		break;
	case PAGES_MOVABLE_PARTS:
		parts = true;
		break;
	case PAGES_UNMOVABLE:
	default:
		return NULL;
	}

	/* A chunk-aligned destination: cached address space when some fits
	 * (its pages are dropped by the move), else a fresh mapping. Both
	 * are charged to opt.max_bytes, as a copying move would be. */
	bool zeroed;
	mutex_lock(&a->lock);
	char *dest = NULL;
	if (a->chunks.hooks_are_default) {
		dest = chunk_alloc(&a->chunks, new_usize, alignment, &zeroed);
		if (dest == NULL && arena_release_cached(a)) {
			dest = chunk_alloc(&a->chunks, new_usize, alignment, &zeroed);
		}
	}
	mutex_unlock(&a->lock);
	if (dest == NULL) {
		return NULL;
	}
	/* Makes sure dest's radix-tree leaf exists, so that setting it after
	 * the move cannot fail; the key stays clear until then. */
	if (rtree_set(&huge_rtree, (uintptr_t)dest, e)) {
		mutex_lock(&a->lock);
		chunk_dalloc(&a->chunks, dest, new_usize, zeroed);
		mutex_unlock(&a->lock);
		return NULL;
	}
	rtree_clear(&huge_rtree, (uintptr_t)dest);
	/* The move leaves old a hole, which another thread's mapping may take
	 * and register at once: old's key is cleared first (and set again,
	 * its leaf being there, if the move fails). Likewise a failed move
	 * may leave dest to another thread's mapping: dest's key is never
	 * cleared after the move. */
	rtree_clear(&huge_rtree, (uintptr_t)old);
	size_t moved_size = parts ? old_size : new_usize;
	pages_move_t moved = pages_move(old, old_size, dest, moved_size);
	if (moved != PAGES_MOVED) {
		rtree_set(&huge_rtree, (uintptr_t)old, e);
		mutex_lock(&a->lock);
		if (moved == PAGES_DEST_ZEROED) {
			/* The part of dest the move was to is fresh again. */
			chunk_dalloc(&a->chunks, dest, new_usize, !parts || zeroed);
		} else {
			a->chunks.mapped_bytes -= moved_size;
			if (parts) {
				chunk_dalloc(&a->chunks, dest + old_size, new_usize - old_size,
				             zeroed);
			}
		}
		mutex_unlock(&a->lock);
		return NULL;
	}
	if (parts && !zeroed) {
		/* The grown part reads as zeros, as after a growing move. */
		char *tail = dest + old_size;
		if (!pages_purge_forced(tail, new_usize - old_size)) {
			memset(tail, 0, new_usize - old_size);
		}
	}
	mutex_lock(&a->lock);
	/* The old range is unmapped now (a hole nobody caches). */
	a->chunks.mapped_bytes -= old_size;
	e->addr = dest;
	huge_resize_locked(a, e, new_usize);
	mutex_unlock(&a->lock);
	rtree_set(&huge_rtree, (uintptr_t)dest, e);
	return dest;
}

void
huge_prefork(void) {
	rtree_prefork(&huge_rtree);
}

void
huge_postfork_parent(void) {
	rtree_postfork_parent(&huge_rtree);
}

void
huge_postfork_child(void) {
	rtree_postfork_child(&huge_rtree);
}
