/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Huge allocations (see huge.h).
 */
#include "alloc/internal/huge.h"

#include <string.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/base.h"
#include "alloc/internal/message.h"
#include "alloc/internal/rtree.h"

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

void *
huge_malloc(arena_t *a, size_t usize, size_t alignment, bool zero) {
	assert_internal(usize >= CHUNK && (usize & PAGE_MASK) == 0);
	if (alignment < CHUNK) {
		alignment = CHUNK;
	}
	bool zeroed;
	arena_note_alloc(a);
	mutex_lock(&a->lock);
	extent_t *e = chunk_node_alloc(&a->chunks);
	if (e == NULL) {
		mutex_unlock(&a->lock);
		return NULL;
	}
	void *addr = chunk_alloc(&a->chunks, usize, alignment, &zeroed);
	if (addr == NULL && arena_release_cached(a)) {
		addr = chunk_alloc(&a->chunks, usize, alignment, &zeroed);
	}
	if (addr == NULL) {
		chunk_node_free(&a->chunks, e);
		mutex_unlock(&a->lock);
		return NULL;
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
		mutex_unlock(&a->lock);
		return NULL;
	}
	if (zero && !zeroed) {
		memset(addr, 0, usize);
	}
	return addr;
}

extent_t *
huge_lookup(const void *ptr) {
	return rtree_get(&huge_rtree, (uintptr_t)ptr);
}

void
huge_forget(void *ptr) {
	rtree_clear(&huge_rtree, (uintptr_t)ptr);
}

size_t
huge_dalloc(void *ptr) {
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
	mutex_lock(&a->lock);
	huge_list_remove(a, e);
	huge_stats_add(a, e->usize, false);
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
	huge_stats_add(a, e->usize, false);
	huge_stats_add(a, new_usize, true);
	e->size = new_usize;
	e->usize = new_usize;
	if (new_usize < old_size) {
		chunk_dalloc(&a->chunks, addr + new_usize, old_size - new_usize, false);
		arena_maybe_purge(a);
	}
	mutex_unlock(&a->lock);
	/* The grown tail is ours alone now; zero it without the lock. */
	if (zero && new_usize > old_size && !zeroed) {
		memset(addr + old_size, 0, new_usize - old_size);
	}
	return true;
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
