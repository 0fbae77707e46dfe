/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The arena walker (see arena_validate.h): checks an arena's page maps,
 * runs, bins, free-run lists, counters, chunk cache and huge extents against
 * each other, and names the first check that fails. It only reads; the
 * arena's metadata it reads is laid out in arena.h.
 */
#include "alloc/internal/arena_validate.h"

#include <string.h>

#include "alloc/internal/arena_run.h"
#include "alloc/internal/bitmap.h"
#include "alloc/internal/chunk.h"
#include "alloc/internal/config.h"
#include "alloc/internal/message.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/prof.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/util.h"

/* Totals the page walk gathers, compared with the arena's counters. */
typedef struct {
	size_t nactive;
	size_t ndirty;
	size_t ndirty_holes;
	size_t nmuzzy;
	size_t nkeep;
	size_t nempty;
	size_t nfree_runs;
	size_t ndirty_chunks;
	size_t allocated_large;
	size_t large_runs[SZ_NLARGE];
	size_t small_runs[SZ_NSMALL];
	size_t small_regs[SZ_NSMALL];
	/* Runs with free regions other than runcur, per bin. */
	size_t nonfull_runs[SZ_NSMALL];
} arena_walk_t;

/* One small run starting at page pi of c, npages long. */
static const char *
arena_validate_small_run(const arena_t *a, const arena_chunk_t *c, size_t pi, size_t npages,
                         arena_walk_t *w) {
	unsigned pclass = arena_pclass_get(c, pi);
	VALIDATE_CHECK(pclass != PCLASS_NONE && pclass - 1 < SZ_NSMALL);
	szind_t binind = pclass - 1;
	const bin_info_t *info = &bin_infos[binind];
	const run_t *run = c->misc[pi].run;
	VALIDATE_CHECK(run != NULL);
	VALIDATE_CHECK(run->binind == binind);
	VALIDATE_CHECK(run->base == (const char *)c + (pi << LG_PAGE));
	VALIDATE_CHECK(npages == info->run_size >> LG_PAGE);
	for (size_t i = 0; i < npages; i++) {
		VALIDATE_CHECK(arena_pclass_get(c, pi + i) == pclass);
		VALIDATE_CHECK(c->misc[pi + i].run == run);
	}
	/* nfree matches the bitmap; padding bits stay set; every group
	 * below the hint is full. */
	size_t used = 0;
	for (size_t g = 0; g < info->bitmap_ngroups; g++) {
		used += (size_t)__builtin_popcountll(run->bitmap[g]);
		VALIDATE_CHECK(g >= run->hint || run->bitmap[g] == BITMAP_GROUP_FULL);
	}
	size_t padding = info->bitmap_ngroups * BITMAP_GROUP_NBITS - info->nregs;
	VALIDATE_CHECK(used >= padding);
	used -= padding;
	for (size_t i = info->nregs; i < info->bitmap_ngroups * BITMAP_GROUP_NBITS; i++) {
		VALIDATE_CHECK(bitmap_get(run->bitmap, i));
	}
	VALIDATE_CHECK(run->hint <= info->bitmap_ngroups);
	VALIDATE_CHECK(used + run->nfree == info->nregs);
	/* An empty run is given back at once. */
	VALIDATE_CHECK(run->nfree < info->nregs);
	const bin_t *bin = &a->bins[binind];
	if (run->nfree != 0 && run != bin->runcur) {
		w->nonfull_runs[binind]++;
	}
	w->small_runs[binind]++;
	w->small_regs[binind] += used;
	return NULL;
}

/* One chunk's page map, run by run. */
static const char *
arena_validate_chunk(const arena_t *a, const arena_chunk_t *c, arena_walk_t *w) {
	VALIDATE_CHECK(c->arena == a);
	VALIDATE_CHECK(arena_chunk_registered(c));
	for (size_t pi = 0; pi < CHUNK_HEADER_PAGES; pi++) {
		VALIDATE_CHECK(c->map[pi] == MAP_HEADER);
		VALIDATE_CHECK(arena_pclass_get(c, pi) == PCLASS_NONE);
	}
	size_t nfree = 0;
	size_t ndirty = 0;
	size_t nmuzzy = 0;
	uint32_t prev_bits = MAP_HEADER;
	for (size_t pi = CHUNK_HEADER_PAGES; pi < CHUNK_NPAGES;) {
		uint32_t bits = c->map[pi];
		size_t npages = map_npages(bits);
		VALIDATE_CHECK(npages >= 1 && npages <= CHUNK_NPAGES - pi);
		VALIDATE_CHECK(c->map[pi + npages - 1] == bits);
		uint32_t kind = bits & (MAP_FREE | MAP_LARGE | MAP_SMALL | MAP_HEADER);
		VALIDATE_CHECK(kind == MAP_FREE || kind == MAP_LARGE || kind == MAP_SMALL);
		if (kind == MAP_FREE) {
			/* Maximal: no free neighbour in the same dirty state
			 * (the left one; the right one is checked from there),
			 * unless one of them is kept apart (MAP_KEEP). */
			VALIDATE_CHECK(
			    !((prev_bits & MAP_FREE) && ((prev_bits | bits) & MAP_KEEP) == 0 &&
			      (prev_bits & MAP_MERGE_STATE) == (bits & MAP_MERGE_STATE)));
			VALIDATE_CHECK(!(bits & MAP_KEEP) || ((bits & MAP_DIRTY) && npages >= 2));
			/* Muzzy runs are unzeroed, never dirty. */
			VALIDATE_CHECK(!(bits & MAP_MUZZY) ||
			               (bits & MAP_STATE) == (MAP_MUZZY | MAP_UNZEROED));
			for (size_t i = 0; i < npages; i++) {
				VALIDATE_CHECK(arena_pclass_get(c, pi + i) == PCLASS_NONE);
			}
			nfree += npages;
			if (bits & MAP_DIRTY) {
				ndirty += npages;
				w->ndirty_holes += npages < ARENA_HOLE_MAX_PAGES ? npages : 0;
			}
			if (bits & MAP_MUZZY) {
				nmuzzy += npages;
			}
			w->nkeep += (bits & MAP_KEEP) != 0;
			w->nfree_runs++;
		} else {
			VALIDATE_CHECK((bits & MAP_STATE) == 0);
			w->nactive += npages;
		}
		if (kind == MAP_LARGE) {
			unsigned pclass = arena_pclass_get(c, pi);
			if (config_prof && pclass == PCLASS_SAMPLED) {
				/* A sampled object: its class is in prof's table. */
				pclass = prof_sampled_pclass((const char *)c + (pi << LG_PAGE));
			}
			VALIDATE_CHECK(pclass - 1 >= SZ_NSMALL && pclass - 1 < SZ_NPAGED);
			size_t usize = sz_index2size(pclass - 1);
			VALIDATE_CHECK(npages == usize >> LG_PAGE);
			for (size_t i = 1; i < npages; i++) {
				VALIDATE_CHECK(arena_pclass_get(c, pi + i) == PCLASS_NONE);
			}
			w->large_runs[pclass - 1 - SZ_NSMALL]++;
			w->allocated_large += usize;
		}
		if (kind == MAP_SMALL) {
			const char *why = arena_validate_small_run(a, c, pi, npages, w);
			if (why != NULL) {
				return why;
			}
		}
		prev_bits = bits;
		pi += npages;
	}
	VALIDATE_CHECK(nfree == c->nfree_pages);
	VALIDATE_CHECK(ndirty == c->ndirty);
	VALIDATE_CHECK(nmuzzy == c->nmuzzy);
	w->ndirty += ndirty;
	w->nmuzzy += nmuzzy;
	if (ndirty != 0) {
		w->ndirty_chunks++;
	}
	return NULL;
}

/* The free-run lists, their mask, and the dirty-chunk list. */
static const char *
arena_validate_lists(const arena_t *a, const arena_walk_t *w) {
	size_t nruns = 0;
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned cls = 0; cls < PSZ_MAX; cls++) {
			const page_misc_t *prev = NULL;
			for (const page_misc_t *m = a->avail[d][cls]; m != NULL; m = m->link.next) {
				VALIDATE_CHECK(cls < psz_count);
				VALIDATE_CHECK(m->link.prev == prev);
				const arena_chunk_t *c = arena_chunk_of(m);
				size_t pi = (size_t)(m - c->misc);
				VALIDATE_CHECK(c->arena == a);
				VALIDATE_CHECK(pi >= CHUNK_HEADER_PAGES && pi < CHUNK_NPAGES);
				uint32_t bits = c->map[pi];
				VALIDATE_CHECK(bits & MAP_FREE);
				VALIDATE_CHECK(((bits & MAP_DIRTY) != 0) == (d != 0));
				VALIDATE_CHECK(psz_floor[map_npages(bits)] == cls);
				nruns++;
				prev = m;
			}
			VALIDATE_CHECK(bitmap_get(a->avail_mask[d], cls) ==
			               (a->avail[d][cls] != NULL));
		}
	}
	VALIDATE_CHECK(nruns == w->nfree_runs);

	size_t nchunks = 0;
	const arena_chunk_t *prev = NULL;
	for (const arena_chunk_t *c = a->dirty_head; c != NULL; c = c->dirty_next) {
		VALIDATE_CHECK(c->dirty_prev == prev);
		VALIDATE_CHECK(c->ndirty != 0);
		nchunks++;
		prev = c;
	}
	VALIDATE_CHECK(a->dirty_tail == prev);
	VALIDATE_CHECK(nchunks == w->ndirty_chunks);
	return NULL;
}

/* The bins against the walk: runcur, nonfull lists, counters. */
static const char *
arena_validate_bins(const arena_t *a, const arena_walk_t *w) {
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		const bin_t *bin = &a->bins[i];
		const bin_info_t *info = &bin_infos[i];
		if (bin->runcur != NULL) {
			VALIDATE_CHECK(bin->runcur->binind == i);
			VALIDATE_CHECK(bin->runcur->nfree < info->nregs);
		}
		size_t n = 0;
		const run_t *prev = NULL;
		for (const run_t *run = bin->nonfull; run != NULL; run = run->next) {
			VALIDATE_CHECK(run->prev == prev);
			VALIDATE_CHECK(run->binind == i);
			VALIDATE_CHECK(run != bin->runcur);
			VALIDATE_CHECK(run->nfree > 0 && run->nfree < info->nregs);
			const arena_chunk_t *c = arena_chunk_of(run->base);
			VALIDATE_CHECK(c->arena == a);
			VALIDATE_CHECK(c->misc[arena_pageind(run->base)].run == run);
			n++;
			prev = run;
		}
		VALIDATE_CHECK(n == w->nonfull_runs[i]);
		if (config_stats) {
			VALIDATE_CHECK(bin->stats.curruns == w->small_runs[i]);
			VALIDATE_CHECK(bin->stats.curregs == w->small_regs[i]);
		}
	}
	if (config_stats) {
		VALIDATE_CHECK(a->stats.allocated_large == w->allocated_large);
		for (szind_t i = 0; i < SZ_NLARGE; i++) {
			VALIDATE_CHECK(a->stats.lstats[i].curruns == w->large_runs[i]);
		}
	}
	return NULL;
}

/* Under every lock of the arena. */
static const char *
arena_validate_locked(const arena_t *a) {
	const char *why = chunk_cache_validate(&a->chunks);
	if (why != NULL) {
		return why;
	}
	size_t huge = 0;
	const extent_t *prev = NULL;
	for (const extent_t *e = a->huge_list; e != NULL; e = e->next) {
		VALIDATE_CHECK(e->prev == prev);
		VALIDATE_CHECK(e->arena == a);
		VALIDATE_CHECK(((uintptr_t)e->addr & CHUNK_MASK) == 0);
		VALIDATE_CHECK(e->usize >= CHUNK && e->usize <= e->size);
		huge += e->usize;
		prev = e;
	}
	if (config_stats) {
		VALIDATE_CHECK(huge == a->stats.allocated_huge);
	}
	if (a->purging) {
		/* Runs being purged are out of every list and marked
		 * allocated without being active: the page walk would see a
		 * half-done state. */
		return NULL;
	}
	arena_walk_t walk;
	arena_walk_t *w = &walk;
	memset(w, 0, sizeof(*w));
	bool spare_found = a->spare == NULL;
	size_t nchunks = 0;
	const arena_chunk_t *cprev = NULL;
	for (const arena_chunk_t *c = a->chunks_head; c != NULL; c = c->next) {
		VALIDATE_CHECK(c->prev == cprev);
		if (c == a->spare) {
			spare_found = true;
			VALIDATE_CHECK(c->nfree_pages == CHUNK_RUN_MAX_PAGES);
		} else if (c->nfree_pages == CHUNK_RUN_MAX_PAGES) {
			/* Empty chunks other than the spare go to the cache,
			 * but for those kept for their kept runs (a->nempty,
			 * an upper bound). */
			w->nempty++;
		}
		why = arena_validate_chunk(a, c, w);
		if (why != NULL) {
			return why;
		}
		nchunks++;
		cprev = c;
	}
	VALIDATE_CHECK(spare_found);
	VALIDATE_CHECK(w->nactive == a->nactive);
	VALIDATE_CHECK(w->ndirty == a->ndirty);
	VALIDATE_CHECK(w->ndirty_holes == a->ndirty_holes);
	VALIDATE_CHECK(w->nmuzzy == a->nmuzzy);
	VALIDATE_CHECK(w->nkeep == a->nkeep);
	VALIDATE_CHECK(w->nempty <= a->nempty);
	if (config_stats) {
		VALIDATE_CHECK(nchunks == a->stats.mapped_chunks);
	}
	why = arena_validate_lists(a, w);
	if (why != NULL) {
		return why;
	}
	return arena_validate_bins(a, w);
}

const char *
arena_validate(arena_t *a) {
	/* Bin locks in index order, then the arena's (as arena_reset and
	 * fork do). */
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		mutex_lock(&a->bins[i].lock);
	}
	mutex_lock(&a->lock);
	const char *why = arena_validate_locked(a);
	mutex_unlock(&a->lock);
	for (szind_t i = SZ_NSMALL; i-- > 0;) {
		mutex_unlock(&a->bins[i].lock);
	}
	return why;
}

/* Debug builds walk an arena (arena_validate) every ARENA_VALIDATE_INTERVAL
 * calls of the slow paths that enter it holding no lock (small and large
 * allocation, large free, fills and flushes), and after every purge_all and
 * reset (`always`), aborting on the first broken invariant. The interval
 * keeps the --enable-debug test suite within a few times its normal time
 * while every test still runs the walker many times. */
#define ARENA_VALIDATE_INTERVAL 1024
static unsigned arena_validate_ticker;

void
arena_validate_maybe(arena_t *a, bool always) {
	if (!config_debug ||
	    (!always && __atomic_add_fetch(&arena_validate_ticker, 1, __ATOMIC_RELAXED) %
	                        ARENA_VALIDATE_INTERVAL !=
	                    0)) {
		return;
	}
	const char *why = arena_validate(a);
	if (why != NULL) {
		msg_fatal("arena %u is inconsistent: %s", a->ind, why);
	}
}
