/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Extent hooks (see extent_hooks.h): jemalloc 5's extent_hooks_t over the
 * chunk hook layer, in both directions, and the default extent hooks.
 */
#include "alloc/internal/extent_hooks.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/pages.h"

/* The cache of arena `ind`, which exists: its hooks are being called. */
static chunk_cache_t *
cache_of(unsigned ind) {
	return &__atomic_load_n(&arenas[ind], __ATOMIC_ACQUIRE)->chunks;
}

/* ---------------------------------------------------------------------- */
/* Default extent hooks: the default chunk hooks, and destroy and the two
 * purges the 4.x set does not have. The hooks pointer is ignored. */

static void *
default_alloc(extent_hooks_t *eh, void *new_addr, size_t size, size_t alignment, bool *zero,
              bool *commit, unsigned ind) {
	(void)eh;
	return chunk_hooks_default.alloc(new_addr, size, alignment, zero, commit, ind);
}

static bool
default_dalloc(extent_hooks_t *eh, void *addr, size_t size, bool committed, unsigned ind) {
	(void)eh;
	return chunk_hooks_default.dalloc(addr, size, committed, ind);
}

static void
default_destroy(extent_hooks_t *eh, void *addr, size_t size, bool committed, unsigned ind) {
	(void)eh, (void)committed, (void)ind;
	pages_unmap(addr, size);
}

static bool
default_commit(extent_hooks_t *eh, void *addr, size_t size, size_t offset, size_t length,
               unsigned ind) {
	(void)eh;
	return chunk_hooks_default.commit(addr, size, offset, length, ind);
}

static bool
default_decommit(extent_hooks_t *eh, void *addr, size_t size, size_t offset, size_t length,
                 unsigned ind) {
	(void)eh;
	return chunk_hooks_default.decommit(addr, size, offset, length, ind);
}

/* madvise on [addr+offset, +length); false when it worked (the hooks'
 * convention). */
static bool
default_madvise(void *addr, size_t offset, size_t length, int advice) {
	int saved_errno = errno;
	bool failed = madvise((char *)addr + offset, length, advice) != 0;
	errno = saved_errno;
	return failed;
}

static bool
default_purge_lazy(extent_hooks_t *eh, void *addr, size_t size, size_t offset, size_t length,
                   unsigned ind) {
	(void)eh, (void)size, (void)ind;
	return default_madvise(addr, offset, length, MADV_FREE);
}

static bool
default_purge_forced(extent_hooks_t *eh, void *addr, size_t size, size_t offset, size_t length,
                     unsigned ind) {
	(void)eh, (void)size, (void)ind;
	return default_madvise(addr, offset, length, MADV_DONTNEED);
}

static bool
default_split(extent_hooks_t *eh, void *addr, size_t size, size_t size_a, size_t size_b,
              bool committed, unsigned ind) {
	(void)eh;
	return chunk_hooks_default.split(addr, size, size_a, size_b, committed, ind);
}

static bool
default_merge(extent_hooks_t *eh, void *addr_a, size_t size_a, void *addr_b, size_t size_b,
              bool committed, unsigned ind) {
	(void)eh;
	return chunk_hooks_default.merge(addr_a, size_a, addr_b, size_b, committed, ind);
}

const extent_hooks_t extent_hooks_default = {
    default_alloc,      default_dalloc,       default_destroy, default_commit, default_decommit,
    default_purge_lazy, default_purge_forced, default_split,   default_merge,
};

/* ---------------------------------------------------------------------- */
/* 4.x hooks seen as extent hooks (what arena.<i>.extent_hooks reads on an
 * arena with program-supplied chunk hooks). */

static void *
face_alloc(extent_hooks_t *eh, void *new_addr, size_t size, size_t alignment, bool *zero,
           bool *commit, unsigned ind) {
	(void)eh;
	return cache_of(ind)->face_hooks.alloc(new_addr, size, alignment, zero, commit, ind);
}

static bool
face_dalloc(extent_hooks_t *eh, void *addr, size_t size, bool committed, unsigned ind) {
	(void)eh;
	return cache_of(ind)->face_hooks.dalloc(addr, size, committed, ind);
}

static bool
face_commit(extent_hooks_t *eh, void *addr, size_t size, size_t offset, size_t length,
            unsigned ind) {
	(void)eh;
	return cache_of(ind)->face_hooks.commit(addr, size, offset, length, ind);
}

static bool
face_decommit(extent_hooks_t *eh, void *addr, size_t size, size_t offset, size_t length,
              unsigned ind) {
	(void)eh;
	return cache_of(ind)->face_hooks.decommit(addr, size, offset, length, ind);
}

/* jemalloc 4 has one purge hook: it serves as both. */
static bool
face_purge(extent_hooks_t *eh, void *addr, size_t size, size_t offset, size_t length,
           unsigned ind) {
	(void)eh;
	return cache_of(ind)->face_hooks.purge(addr, size, offset, length, ind);
}

static bool
face_split(extent_hooks_t *eh, void *addr, size_t size, size_t size_a, size_t size_b,
           bool committed, unsigned ind) {
	(void)eh;
	return cache_of(ind)->face_hooks.split(addr, size, size_a, size_b, committed, ind);
}

static bool
face_merge(extent_hooks_t *eh, void *addr_a, size_t size_a, void *addr_b, size_t size_b,
           bool committed, unsigned ind) {
	(void)eh;
	return cache_of(ind)->face_hooks.merge(addr_a, size_a, addr_b, size_b, committed, ind);
}

/* destroy is NULL: jemalloc 4 hooks have none, and a span their dalloc
 * refuses stays with the arena. */
static const extent_hooks_t extent_hooks_of_chunk_hooks = {
    face_alloc, face_dalloc, NULL,       face_commit, face_decommit,
    face_purge, face_purge,  face_split, face_merge,
};

/* ---------------------------------------------------------------------- */
/* Extent hooks seen as chunk hooks: what the chunk layer calls on an arena
 * with program-supplied extent hooks. */

static extent_hooks_t *
ext_of(unsigned ind) {
	return __atomic_load_n(&cache_of(ind)->extent_hooks, __ATOMIC_RELAXED);
}

static void *
ext_alloc(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit, unsigned ind) {
	extent_hooks_t *eh = ext_of(ind);
	return eh->alloc(eh, chunk, size, alignment, zero, commit, ind);
}

static bool
ext_dalloc(void *chunk, size_t size, bool committed, unsigned ind) {
	extent_hooks_t *eh = ext_of(ind);
	/* No dalloc: the program opted out; the span is retained. */
	return eh->dalloc == NULL || eh->dalloc(eh, chunk, size, committed, ind);
}

static bool
ext_commit(void *chunk, size_t size, size_t offset, size_t length, unsigned ind) {
	extent_hooks_t *eh = ext_of(ind);
	return eh->commit == NULL || eh->commit(eh, chunk, size, offset, length, ind);
}

static bool
ext_decommit(void *chunk, size_t size, size_t offset, size_t length, unsigned ind) {
	extent_hooks_t *eh = ext_of(ind);
	return eh->decommit == NULL || eh->decommit(eh, chunk, size, offset, length, ind);
}

/* The chunk layer's purge returns false when the range now reads as zeros
 * (chunk.h): a forced purge; a lazy one only frees the pages (true, as for
 * a purge that did not happen: the pages are not counted dirty either way). */
static bool
ext_purge(void *chunk, size_t size, size_t offset, size_t length, unsigned ind) {
	extent_hooks_t *eh = ext_of(ind);
	if (eh->purge_forced != NULL && !eh->purge_forced(eh, chunk, size, offset, length, ind)) {
		return false;
	}
	if (eh->purge_lazy != NULL) {
		eh->purge_lazy(eh, chunk, size, offset, length, ind);
	}
	return true;
}

static bool
ext_split(void *chunk, size_t size, size_t size_a, size_t size_b, bool committed, unsigned ind) {
	extent_hooks_t *eh = ext_of(ind);
	return eh->split == NULL || eh->split(eh, chunk, size, size_a, size_b, committed, ind);
}

static bool
ext_merge(void *chunk_a, size_t size_a, void *chunk_b, size_t size_b, bool committed,
          unsigned ind) {
	extent_hooks_t *eh = ext_of(ind);
	return eh->merge == NULL || eh->merge(eh, chunk_a, size_a, chunk_b, size_b, committed, ind);
}

static const chunk_hooks_t extent_hooks_chunk_face = {
    ext_alloc, ext_dalloc, ext_commit, ext_decommit, ext_purge, ext_split, ext_merge,
};

bool
extent_hooks_is_chunk_face(const chunk_hooks_t *hooks) {
	return memcmp(hooks, &extent_hooks_chunk_face, sizeof(*hooks)) == 0;
}

extent_hooks_t *
extent_hooks_get(chunk_cache_t *cache) {
	if (cache->region) {
		/* A private heap's memory is its region: no hooks. */
		return NULL;
	}
	if (cache->extent_hooks != NULL) {
		return cache->extent_hooks;
	}
	if (cache->hooks_are_default) {
		return (extent_hooks_t *)&extent_hooks_default;
	}
	cache->face_hooks = cache->hooks;
	return (extent_hooks_t *)&extent_hooks_of_chunk_hooks;
}

bool
extent_hooks_set(chunk_cache_t *cache, extent_hooks_t *hooks) {
	if (hooks == NULL || hooks->alloc == NULL || cache->region) {
		return true;
	}
	if (hooks == &extent_hooks_default) {
		chunk_hooks_set(cache, &chunk_hooks_default);
		return false;
	}
	if (hooks == &extent_hooks_of_chunk_hooks) {
		/* The 4.x hooks read as extent hooks, written back. */
		if (cache->face_hooks.alloc == NULL) {
			return true;
		}
		chunk_hooks_set(cache, &cache->face_hooks);
		return false;
	}
	__atomic_store_n(&cache->extent_hooks, hooks, __ATOMIC_RELAXED);
	cache->hooks = extent_hooks_chunk_face;
	cache->hooks_are_default = false;
	return false;
}
