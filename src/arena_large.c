/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Large size classes (see arena.h): each object is one page run of its
 * class's size, aligned as asked, freed alone or in a thread cache's
 * batch, resized in place when the pages after it are free. Everything
 * here runs under arena->lock, except the hand-over of another arena's
 * objects (arena_large_hand_over: one compare-and-swap).
 */
#include "alloc/internal/arena.h"

#include <string.h>

#include "alloc/internal/arena_run.h"
#include "alloc/internal/arena_validate.h"
#include "alloc/internal/fill.h"

static void
large_stats_malloc(arena_t *a, szind_t szind, size_t usize) {
	if (config_stats) {
		large_stats_t *ls = &a->stats.lstats[szind - SZ_NSMALL];
		ls->nmalloc++;
		ls->nrequests++;
		ls->curruns++;
		a->stats.allocated_large += usize;
	}
}

static void
large_stats_dalloc(arena_t *a, szind_t szind, size_t usize) {
	if (config_stats) {
		large_stats_t *ls = &a->stats.lstats[szind - SZ_NSMALL];
		ls->ndalloc++;
		ls->curruns--;
		a->stats.allocated_large -= usize;
	}
}

/*
 * Under a->lock, for a run of npages pages just taken for a request
 * covering its first `used` pages, of which the first `resident` may be
 * resident (arena_run_alloc_large): how many pages past the request to
 * purge, 0 when too few to pay for the madvise and the page faults of a
 * later reuse.
 */
static size_t
large_tail_to_purge(arena_t *a, size_t npages, size_t used, size_t resident) {
	size_t end = resident < npages ? resident : npages;
	if (end <= used || end - used < LARGE_TAIL_PURGE_MIN || !arena_purges(a)) {
		return 0;
	}
	return end - used;
}

static void *
large_alloc(arena_t *a, szind_t szind, size_t alignment, bool zero, size_t size) {
	arena_validate_maybe(a, false);
	size_t usize = sz_index2size(szind);
	size_t npages = usize >> LG_PAGE;
	size_t used = ALIGN_UP(size, PAGE) >> LG_PAGE;
	size_t extra = alignment > PAGE ? (alignment >> LG_PAGE) - 1 : 0;
	arena_chunk_t *c;
	size_t pi;
	bool zeroed;
	size_t resident;
	arena_note_alloc(a);
	arena_lock_for_alloc(&a->lock);
	/* Handed-over runs first, so that they can be reused. */
	arena_large_remote_drain(a);
	bool got = extra == 0 ? arena_run_alloc_large(a, npages, used, &c, &pi, &zeroed, &resident)
	                      : arena_run_alloc(a, npages + extra, MAP_LARGE, &c, &pi, &zeroed);
	if (!got) {
		mutex_unlock(&a->lock);
		return NULL;
	}
	if (extra != 0) {
		resident = zeroed ? 0 : npages;
		uintptr_t addr = (uintptr_t)c + (pi << LG_PAGE);
		size_t lead = (ALIGN_UP(addr, alignment) - addr) >> LG_PAGE;
		size_t trail = extra - lead;
		/* Mark the kept run before returning the ends, so merging stops
		 * at its boundaries. */
		arena_map_set_run(c, pi + lead, npages, MAP_LARGE);
		if (lead != 0) {
			arena_map_set_run(c, pi, lead, MAP_LARGE);
			arena_run_dalloc(a, c, pi, lead, !zeroed);
		}
		if (trail != 0) {
			arena_map_set_run(c, pi + lead + npages, trail, MAP_LARGE);
			arena_run_dalloc(a, c, pi + lead + npages, trail, !zeroed);
		}
		pi += lead;
	}
	arena_pclass_set(c, pi, szind + 1);
	large_stats_malloc(a, szind, usize);
	size_t tail = large_tail_to_purge(a, npages, used, resident);
	if (npages >= 2) {
		/* What a later reuse of the run will find resident: the
		 * request, and what was resident past it unless purged. */
		size_t left = resident < npages ? resident : npages;
		c->misc[pi + 1].resident = zero ? npages : tail != 0 || left < used ? used : left;
	}
	chunk_hooks_t hooks;
	if (tail != 0) {
		hooks = *chunk_cache_hooks(&a->chunks);
		arena_count_purge(a, tail);
	}
	mutex_unlock(&a->lock);
	void *ret = (char *)c + (pi << LG_PAGE);
	if (tail != 0) {
		/* The run is allocated: nobody else touches its pages. */
		chunk_purge_range(&hooks, a->chunks.arena_ind, c, CHUNK, (pi + used) << LG_PAGE,
		                  tail << LG_PAGE);
	}
	if (zero && !zeroed) {
		memset(ret, 0, usize);
	}
	return ret;
}

void *
arena_malloc_large(arena_t *a, szind_t szind, size_t alignment, bool zero) {
	return large_alloc(a, szind, alignment, zero, sz_index2size(szind));
}

void *
arena_malloc_large_request(arena_t *a, szind_t szind, size_t size) {
	return large_alloc(a, szind, PAGE, false, size);
}

static void
check_large_ptr(const void *ptr, arena_chunk_t *c, size_t pi) {
	if (unlikely(((uintptr_t)ptr & PAGE_MASK) != 0 || (c->map[pi] & MAP_LARGE) == 0)) {
		arena_report_bad_free(ptr, "invalid pointer");
	}
}

/* Under a->lock: frees the large run of class szind at page pi of c,
 * leaving its pages dirty. */
static void
arena_dalloc_large_locked(arena_t *a, arena_chunk_t *c, size_t pi, szind_t szind) {
	size_t usize = sz_index2size(szind);
	large_stats_dalloc(a, szind, usize);
	arena_run_dalloc_large(a, c, pi, usize >> LG_PAGE);
	arena_maybe_purge(a);
}

void
arena_dalloc_large(void *ptr, szind_t szind) {
	arena_chunk_t *c = arena_chunk_of(ptr);
	size_t pi = arena_pageind(ptr);
	arena_t *a = c->arena;
	mutex_lock(&a->lock);
	check_large_ptr(ptr, c, pi);
	arena_dalloc_large_locked(a, c, pi, szind);
	mutex_unlock(&a->lock);
}

void
arena_dalloc_large_purged(void *ptr, szind_t szind) {
	arena_chunk_t *c = arena_chunk_of(ptr);
	size_t pi = arena_pageind(ptr);
	arena_t *a = c->arena;
	size_t usize = sz_index2size(szind);
	mutex_lock(&a->lock);
	check_large_ptr(ptr, c, pi);
	if (!arena_purges(a)) {
		arena_dalloc_large_locked(a, c, pi, szind);
		mutex_unlock(&a->lock);
		return;
	}
	chunk_hooks_t hooks = *chunk_cache_hooks(&a->chunks);
	mutex_unlock(&a->lock);
	/* The run is still allocated: nobody else touches its pages. */
	bool zeroed =
	    chunk_purge_range(&hooks, a->chunks.arena_ind, c, CHUNK, pi << LG_PAGE, usize);
	mutex_lock(&a->lock);
	large_stats_dalloc(a, szind, usize);
	arena_run_release(a, c, pi, usize >> LG_PAGE, zeroed ? 0 : MAP_UNZEROED);
	arena_count_purge(a, usize >> LG_PAGE);
	mutex_unlock(&a->lock);
}

unsigned
arena_large_flush(void **ptrs, unsigned n, szind_t szind, uint64_t nrequests) {
	arena_t *a = arena_chunk_of(ptrs[0])->arena;
	arena_validate_maybe(a, false);
	size_t usize = sz_index2size(szind);
	unsigned left = 0;
	mutex_lock(&a->lock);
	for (unsigned i = 0; i < n; i++) {
		void *ptr = ptrs[i];
		arena_chunk_t *c = arena_chunk_of(ptr);
		if (c->arena != a) {
			ptrs[left++] = ptr;
			continue;
		}
		size_t pi = arena_pageind(ptr);
		check_large_ptr(ptr, c, pi);
		large_stats_dalloc(a, szind, usize);
		arena_run_dalloc_large(a, c, pi, usize >> LG_PAGE);
	}
	if (config_stats) {
		a->stats.lstats[szind - SZ_NSMALL].nrequests += nrequests;
		a->stats.lstats[szind - SZ_NSMALL].nflushes++;
	}
	arena_large_remote_drain(a);
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
	return left;
}

/* Handed-over large objects (arena_t.large_remote, whose invariants
 * arena.h states). A thread cache flushing large objects of another
 * arena (another CPU's, with per-CPU arenas) links them into a chain and
 * pushes it with one compare-and-swap instead of taking that arena's lock,
 * which its own threads take for every large allocation and for the runs
 * of their small bins; the arena frees the chain when it next holds its
 * lock anyway. Which words of a freed object hold what: */
#define LARGE_REMOTE_LINK    1 /* the next object on the list */
#define LARGE_REMOTE_COUNTED 2 /* the flush's counters, or 0 */

void
arena_large_remote_drain(arena_t *a) {
	if (__atomic_load_n(&a->large_remote, __ATOMIC_RELAXED) == NULL) {
		return;
	}
	void *p = __atomic_exchange_n(&a->large_remote, NULL, __ATOMIC_ACQUIRE);
	while (p != NULL) {
		void **words = p;
		/* The link first: freeing may merge the run's pages. */
		void *next = words[LARGE_REMOTE_LINK];
		uintptr_t counted = (uintptr_t)words[LARGE_REMOTE_COUNTED];
		arena_chunk_t *c = arena_chunk_of(p);
		size_t pi = arena_pageind(p);
		check_large_ptr(p, c, pi);
		/* A run freed already (pushed twice: a double free) lost its
		 * page class; caught here before the list could loop. */
		unsigned pclass = arena_pclass_get(c, pi);
		if (unlikely(pclass <= SZ_NSMALL || pclass > SZ_NPAGED)) {
			arena_report_bad_free(p, "double free");
		}
		szind_t szind = pclass - 1;
		if (config_stats && (counted & 1) != 0) {
			a->stats.lstats[szind - SZ_NSMALL].nrequests += counted >> 1;
			a->stats.lstats[szind - SZ_NSMALL].nflushes++;
		}
		size_t usize = sz_index2size(szind);
		large_stats_dalloc(a, szind, usize);
		arena_run_dalloc_large(a, c, pi, usize >> LG_PAGE);
		p = next;
	}
}

unsigned
arena_large_hand_over(void **ptrs, unsigned n, szind_t szind, uint64_t nrequests) {
	if (config_fill && fill_slow_paths) {
		return arena_large_flush(ptrs, n, szind, nrequests);
	}
	arena_t *a = arena_chunk_of(ptrs[0])->arena;
	return arena_remote_push(&a->large_remote, ptrs, n, LARGE_REMOTE_LINK, LARGE_REMOTE_COUNTED,
	                         (uintptr_t)(nrequests << 1 | 1));
}

bool
arena_ralloc_large_in_place(void *ptr, szind_t old_szind, szind_t new_szind, bool zero) {
	if (old_szind == new_szind) {
		return true;
	}
	arena_chunk_t *c = arena_chunk_of(ptr);
	size_t pi = arena_pageind(ptr);
	arena_t *a = c->arena;
	size_t old_usize = sz_index2size(old_szind);
	size_t new_usize = sz_index2size(new_szind);
	size_t old_pages = old_usize >> LG_PAGE;
	size_t new_pages = new_usize >> LG_PAGE;
	bool zeroed = true;
	mutex_lock(&a->lock);
	if (new_pages < old_pages) {
		arena_map_set_run(c, pi, new_pages, MAP_LARGE);
		arena_map_set_run(c, pi + new_pages, old_pages - new_pages, MAP_LARGE);
		arena_run_dalloc(a, c, pi + new_pages, old_pages - new_pages, true);
		arena_maybe_purge(a);
	} else {
		size_t next = pi + old_pages;
		size_t need = new_pages - old_pages;
		if (next >= CHUNK_NPAGES || (c->map[next] & MAP_FREE) == 0 ||
		    map_npages(c->map[next]) < need) {
			mutex_unlock(&a->lock);
			return false;
		}
		uint32_t bits = c->map[next];
		size_t run_pages = map_npages(bits);
		arena_avail_remove(a, c, next);
		c->nfree_pages -= need;
		/* The grown run's map first: merging the rest looks at it. */
		arena_map_set_run(c, pi, new_pages, MAP_LARGE);
		if (run_pages > need) {
			arena_run_insert_rest(a, c, next + need, run_pages - need, bits);
		}
		a->nactive += need;
		arena_cactive_add(need << LG_PAGE);
		zeroed = (bits & MAP_STATE) == 0;
	}
	arena_pclass_set(c, pi, new_szind + 1);
	if (new_pages >= 2) {
		/* Not known any more: all of it, as the program may have
		 * written the old run's whole class. */
		c->misc[pi + 1].resident = new_pages;
	}
	large_stats_dalloc(a, old_szind, old_usize);
	large_stats_malloc(a, new_szind, new_usize);
	mutex_unlock(&a->lock);
	if (zero && new_usize > old_usize && !zeroed) {
		memset((char *)ptr + old_usize, 0, new_usize - old_usize);
	}
	return true;
}
