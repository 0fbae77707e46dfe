/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Purging (see arena.h): an arena gives its dirty free pages and cached
 * spans back to the kernel (or the chunk hooks) as its policy says: the
 * decay curve (decay.h), or the ratio rule of opt.purge:ratio, or all at
 * once (arena.<i>.purge). Also the decay ticks and the sweep that let idle
 * arenas purge, and the per-arena purging settings.
 *
 * Two stages (decay.h, doc/design.md "Muzzy pages"): the dirty decay
 * (arena->decay, or the ratio rule) purges dirty runs lazily, making them
 * muzzy (MAP_MUZZY), when the arena's muzzy decay time is not 0 and its
 * memory comes from the default chunk hooks; otherwise it purges them for
 * good at once. The muzzy decay (arena->decay_muzzy) then purges muzzy
 * runs with MADV_DONTNEED. Cached spans (whole free chunks, huge spans)
 * have no muzzy stage: the dirty decay purges them for good. Under
 * opt.purge_madvise:free (liballoc's MADV_FREE-only mode) every purge is
 * lazy and muzzy pages are left to the kernel.
 */
#include "alloc/internal/arena.h"

#include "alloc/internal/arena_run.h"
#include "alloc/internal/arena_validate.h"
#include "alloc/internal/pages.h"

/* What one purge pass works on: free page runs and cached spans taken out
 * of the arena's structures while the lock is dropped for madvise. */
#define PURGE_BATCH 64
typedef struct {
	arena_chunk_t *chunk;
	size_t pi;
	size_t npages;
	extent_t *extent;
} purge_item_t;

static size_t
arena_ndirty_total(const arena_t *a) {
	return a->ndirty + (a->chunks.dirty_bytes >> LG_PAGE);
}

/* Under a->lock: whether the dirty stage purges runs lazily (making them
 * muzzy) rather than for good. `forced`: arena.<i>.purge, which purges for
 * good whatever the muzzy decay time. */
static bool
arena_purge_lazily(const arena_t *a, bool forced) {
	if (!a->chunks.hooks_are_default) {
		return false;
	}
	return opt_purge_madvise == PURGE_MADVISE_FREE || (!forced && a->decay_muzzy.time != 0);
}

/* Under a->lock: whether the muzzy stage ever purges muzzy runs. */
static bool
arena_purges_muzzy(const arena_t *a) {
	return a->decay_muzzy.time >= 0 && opt_purge_madvise != PURGE_MADVISE_FREE;
}

/*
 * Takes the free runs of chunk c whose map bits include `state` (MAP_DIRTY
 * or MAP_MUZZY) out of the free lists into items[*n..], while fewer than
 * PURGE_BATCH items are taken and *batch (pages) is below `room`. Taken
 * runs are marked allocated meanwhile, so nobody else touches them.
 */
static void
arena_purge_collect(arena_t *a, arena_chunk_t *c, uint32_t state, purge_item_t *items, unsigned *n,
                    size_t *batch, size_t room) {
	for (size_t pi = CHUNK_HEADER_PAGES;
	     pi < CHUNK_NPAGES && *n < PURGE_BATCH && *batch < room;) {
		uint32_t bits = c->map[pi];
		size_t npages = map_npages(bits);
		if ((bits & MAP_FREE) && (bits & state)) {
			arena_avail_remove(a, c, pi);
			arena_map_set_run(c, pi, npages, MAP_LARGE);
			c->nfree_pages -= npages;
			if (c == a->spare) {
				a->spare = NULL;
			}
			items[(*n)++] = (purge_item_t){c, pi, npages, NULL};
			*batch += npages;
		}
		pi += npages;
	}
}

/*
 * Purges at least `want` dirty pages if there are that many: the oldest
 * cached spans first, then the dirty runs of the least recently dirtied
 * chunks, lazily when arena_purge_lazily says so. The lock is dropped
 * around the madvise calls; the pages being purged are out of every list
 * meanwhile (runs marked allocated), so no other thread touches them.
 * `split`: a cached span longer than what is left to purge (rounded up to
 * a chunk) is split, its rest staying cached and dirty (the high-water
 * bound's trades); otherwise spans are purged whole. Returns the pages
 * purged.
 */
static size_t
arena_purge_spans(arena_t *a, size_t want, bool forced, bool split) {
	if (a->purging || want == 0) {
		return 0;
	}
	a->purging = true;
	bool lazy = arena_purge_lazily(a, forced);
	size_t total = 0;
	while (total < want) {
		purge_item_t items[PURGE_BATCH];
		unsigned n = 0;
		size_t batch = 0;
		while (n < PURGE_BATCH && total + batch < want) {
			extent_t *e = chunk_cache_take_dirty(
			    &a->chunks,
			    split ? ALIGN_UP((want - total - batch) << LG_PAGE, CHUNK) : SIZE_MAX);
			if (e == NULL) {
				break;
			}
			items[n++] = (purge_item_t){NULL, 0, e->size >> LG_PAGE, e};
			batch += e->size >> LG_PAGE;
		}
		for (arena_chunk_t *c = a->dirty_head;
		     c != NULL && n < PURGE_BATCH && total + batch < want;) {
			arena_chunk_t *next_chunk = c->dirty_next;
			arena_purge_collect(a, c, MAP_DIRTY, items, &n, &batch, want - total);
			c = next_chunk;
		}
		if (n == 0) {
			break;
		}
		chunk_hooks_t hooks = *chunk_cache_hooks(&a->chunks);
		mutex_unlock(&a->lock);
		bool zeroed[PURGE_BATCH];
		bool muzzy[PURGE_BATCH];
		for (unsigned i = 0; i < n; i++) {
			size_t length = items[i].npages << LG_PAGE;
			muzzy[i] = false;
			if (items[i].extent != NULL) {
				zeroed[i] = chunk_purge_range(&hooks, a->ind, items[i].extent->addr,
				                              length, 0, length);
				continue;
			}
			char *addr = (char *)items[i].chunk + (items[i].pi << LG_PAGE);
			if (lazy && pages_purge_lazy(addr, length)) {
				muzzy[i] = true;
				zeroed[i] = false;
			} else {
				zeroed[i] = chunk_purge_range(&hooks, a->ind, items[i].chunk, CHUNK,
				                              items[i].pi << LG_PAGE, length);
			}
		}
		mutex_lock(&a->lock);
		for (unsigned i = 0; i < n; i++) {
			if (items[i].extent != NULL) {
				chunk_cache_put_purged(&a->chunks, items[i].extent, zeroed[i]);
			} else {
				arena_chunk_t *c = items[i].chunk;
				c->nfree_pages += items[i].npages;
				/* Purged either way; only MADV_FREE-like purges
				 * leave the contents undefined. */
				uint32_t state = muzzy[i]    ? MAP_UNZEROED | MAP_MUZZY
				                 : zeroed[i] ? 0
				                             : MAP_UNZEROED;
				arena_run_insert_free(a, c, items[i].pi, items[i].npages, state);
			}
		}
		if (config_stats) {
			a->stats.nmadvise += n;
			a->stats.purged_pages += batch;
		}
		total += batch;
	}
	if (config_stats && total != 0) {
		a->stats.npurge++;
	}
	a->purging = false;
	return total;
}

static size_t
arena_purge(arena_t *a, size_t want, bool forced) {
	return arena_purge_spans(a, want, forced, false);
}

/*
 * The muzzy stage: purges at least `want` muzzy pages for good (MADV_DONTNEED)
 * if there are that many, chunk by chunk; like arena_purge, without the lock
 * around the madvise calls. Returns the pages purged.
 */
static size_t
arena_purge_muzzy(arena_t *a, size_t want) {
	if (a->purging || want == 0) {
		return 0;
	}
	a->purging = true;
	size_t total = 0;
	while (total < want) {
		purge_item_t items[PURGE_BATCH];
		unsigned n = 0;
		size_t batch = 0;
		/* From the head each batch: putting runs back may have given
		 * an emptied chunk back to the cache. */
		for (arena_chunk_t *c = a->chunks_head;
		     c != NULL && n < PURGE_BATCH && total + batch < want; c = c->next) {
			if (c->nmuzzy != 0) {
				arena_purge_collect(a, c, MAP_MUZZY, items, &n, &batch,
				                    want - total);
			}
		}
		if (n == 0) {
			break;
		}
		mutex_unlock(&a->lock);
		bool zeroed[PURGE_BATCH];
		for (unsigned i = 0; i < n; i++) {
			zeroed[i] =
			    pages_purge_forced((char *)items[i].chunk + (items[i].pi << LG_PAGE),
			                       items[i].npages << LG_PAGE);
		}
		mutex_lock(&a->lock);
		for (unsigned i = 0; i < n; i++) {
			arena_chunk_t *ic = items[i].chunk;
			ic->nfree_pages += items[i].npages;
			arena_run_insert_free(a, ic, items[i].pi, items[i].npages,
			                      zeroed[i] ? 0 : MAP_UNZEROED);
		}
		if (config_stats) {
			a->stats.muzzy_nmadvise += n;
			a->stats.muzzy_purged += batch;
		}
		total += batch;
	}
	if (config_stats && total != 0) {
		a->stats.muzzy_npurge++;
	}
	a->purging = false;
	return total;
}

/* Under a->lock: purges the muzzy pages the muzzy decay curve no longer
 * allows. */
static void
arena_maybe_purge_muzzy(arena_t *a) {
	if (!arena_purges_muzzy(a)) {
		return;
	}
	size_t limit = decay_update(&a->decay_muzzy, decay_now_ns(), a->nmuzzy);
	if (a->nmuzzy > limit) {
		arena_purge_muzzy(a, a->nmuzzy - limit);
		decay_purged(&a->decay_muzzy, a->nmuzzy);
	}
}

/* Under a->lock: purges the dirty pages the dirty decay curve (or the
 * ratio rule) no longer allows. */
static void
arena_maybe_purge_dirty(arena_t *a) {
	size_t ndirty = arena_ndirty_total(a);
	size_t limit;
	if (opt_purge == PURGE_MODE_RATIO) {
		if (a->lg_dirty_mult < 0) {
			return;
		}
		limit = a->nactive >> a->lg_dirty_mult;
		/* Never bother for less than a chunk's worth of pages. */
		if (limit < CHUNK_NPAGES) {
			limit = CHUNK_NPAGES;
		}
	} else {
		if (a->decay.time < 0) {
			return;
		}
		limit = decay_update(&a->decay, decay_now_ns(), ndirty);
	}
	if (unlikely(__atomic_load_n(&a->abandoned, __ATOMIC_RELAXED))) {
		/* Nobody allocates here (arena_abandon): keep at most an
		 * eighth of the active pages dirty, and once over that purge
		 * down to a sixteenth, so that purges come in batches (of
		 * runs that had time to merge) instead of one per free. */
		size_t high = a->nactive >> 3;
		if (ndirty > high && (a->nactive >> 4) < limit) {
			limit = a->nactive >> 4;
		}
	}
	if (ndirty > limit) {
		/* Memory left unused that long is no next generation's: the
		 * emptied chunks kept for their kept runs go to the cache,
		 * whose spans are purged first (arena_run.c). */
		arena_release_empty(a);
		arena_purge(a, ndirty - limit, false);
		decay_purged(&a->decay, arena_ndirty_total(a));
	}
}

void
arena_maybe_purge(arena_t *a) {
	arena_maybe_purge_dirty(a);
	arena_maybe_purge_muzzy(a);
}

void
arena_decay(arena_t *a) {
	arena_bins_remote_drain(a, false);
	mutex_lock(&a->lock);
	arena_large_remote_drain(a);
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
}

#if ALLOC_CONFIG_INITIAL_EXEC_TLS
__thread char arena_thread_self __attribute__((tls_model("initial-exec")));
#else
__thread char arena_thread_self;
#endif

void
arena_abandon(arena_t *a) {
	/* Someone else allocated here after this thread: not abandoned. */
	if (__atomic_load_n(&a->last_thread, __ATOMIC_RELAXED) != &arena_thread_self) {
		return;
	}
	__atomic_store_n(&a->abandoned, true, __ATOMIC_RELAXED);
	arena_decay(a);
}

void
arena_decay_tick(arena_t *a) {
	/* Skip the lock when purging is off for this arena. The peek races
	 * with arena.<i>.decay_time writes (decay_init stores it atomically
	 * too); a stale answer costs one lock round or one skipped tick. */
	if (opt_purge == PURGE_MODE_DECAY &&
	    __atomic_load_n(&a->decay.time, __ATOMIC_RELAXED) < 0 &&
	    __atomic_load_n(&a->decay_muzzy.time, __ATOMIC_RELAXED) < 0) {
		return;
	}
	arena_decay(a);
}

uint64_t
arena_decay_background(arena_t *a) {
	arena_bins_remote_drain(a, false);
	mutex_lock(&a->lock);
	arena_large_remote_drain(a);
	arena_maybe_purge(a);
	uint64_t next = UINT64_MAX;
	uint64_t now = decay_now_ns();
	if (opt_purge == PURGE_MODE_DECAY && arena_ndirty_total(a) != 0) {
		next = decay_ns_until_next(&a->decay, now);
	}
	if (a->nmuzzy != 0 && arena_purges_muzzy(a)) {
		uint64_t m = decay_ns_until_next(&a->decay_muzzy, now);
		next = m < next ? m : next;
	}
	mutex_unlock(&a->lock);
	return next;
}

/* Next time a sweep over all arenas is due (decay_now_ns clock). */
static uint64_t decay_sweep_due_ns;
#define DECAY_SWEEP_INTERVAL_NS ((uint64_t)100 * 1000 * 1000)

void
arena_decay_sweep_if_due(void) {
	uint64_t now = decay_now_ns();
	uint64_t due = __atomic_load_n(&decay_sweep_due_ns, __ATOMIC_RELAXED);
	if (likely(now < due)) {
		return;
	}
	/* One sweeper at a time: whoever moves the deadline sweeps. */
	if (!__atomic_compare_exchange_n(&decay_sweep_due_ns, &due, now + DECAY_SWEEP_INTERVAL_NS,
	                                 false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		return;
	}
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++) {
		arena_t *a = arena_sweepable(i);
		if (a == NULL) {
			continue;
		}
		/* Regions handed over to an arena no thread allocates from
		 * any more wait for this. */
		arena_bins_remote_drain(a, false);
		/* A busy arena is being used, and so purges by itself. */
		if (mutex_trylock(&a->lock)) {
			arena_large_remote_drain(a);
			arena_maybe_purge(a);
			mutex_unlock(&a->lock);
		}
	}
}

size_t
arena_purge_all(arena_t *a) {
	arena_bins_remote_drain(a, true);
	mutex_lock(&a->lock);
	arena_large_remote_drain(a);
	/* Again while a pass leaves dirty pages: under purge_madvise:free a
	 * chunk that a lazy purge empties goes to the chunk cache as a dirty
	 * span (muzzy pages count as dirty there, arena_chunk_empty), which
	 * the next pass purges for good. */
	size_t pages = 0;
	for (size_t got = 1; got != 0 && arena_ndirty_total(a) != 0;) {
		got = arena_purge(a, arena_ndirty_total(a), true);
		pages += got;
	}
	decay_purged(&a->decay, arena_ndirty_total(a));
	if (opt_purge_madvise != PURGE_MADVISE_FREE) {
		pages += arena_purge_muzzy(a, a->nmuzzy);
		decay_purged(&a->decay_muzzy, a->nmuzzy);
	}
	mutex_unlock(&a->lock);
	arena_validate_maybe(a, true);
	return pages << LG_PAGE;
}

static decay_t *
arena_decay_of(arena_t *a, decay_stage_t stage) {
	return stage == DECAY_STAGE_DIRTY ? &a->decay : &a->decay_muzzy;
}

ssize_t
arena_decay_ms_get(arena_t *a, decay_stage_t stage) {
	mutex_lock(&a->lock);
	ssize_t ret = arena_decay_of(a, stage)->time;
	mutex_unlock(&a->lock);
	return ret;
}

bool
arena_decay_ms_set(arena_t *a, decay_stage_t stage, ssize_t ms) {
	if (!arena_decay_ms_valid(ms)) {
		return true;
	}
	mutex_lock(&a->lock);
	decay_init(arena_decay_of(a, stage), ms, decay_now_ns());
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
	return false;
}

ssize_t
arena_lg_dirty_mult_get(arena_t *a) {
	mutex_lock(&a->lock);
	ssize_t ret = a->lg_dirty_mult;
	mutex_unlock(&a->lock);
	return ret;
}

bool
arena_lg_dirty_mult_set(arena_t *a, ssize_t lg_dirty_mult) {
	if (!arena_lg_dirty_mult_valid(lg_dirty_mult)) {
		return true;
	}
	mutex_lock(&a->lock);
	a->lg_dirty_mult = lg_dirty_mult;
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
	return false;
}

/* ---------------------------------------------------------------------- */
/* The bound on dirty pages held while the arena grows (arena.h,
 * arena_grow_bound; doc/design.md, "Reuse before purge" and "The
 * high-water bound"). */

ssize_t opt_lg_dirty_bound = -1;

/* The dirty pages the high-water bound leaves alone, as shares of the
 * active ones: those in holes (arena_t.ndirty_holes) up to
 * 1 / 2^HIGH_WATER_KEEP_LG, any up to 1 / 2^HIGH_WATER_KEEP_ANY_LG, and
 * never less than a chunk's worth. See arena_grow_high_water. */
#define HIGH_WATER_KEEP_LG     4
#define HIGH_WATER_KEEP_ANY_LG 6

/* Under a->lock: the high-water bound (arena.h, arena_grow_bound). Growth
 * that cannot be traded (dirty pages within the kept share) raises the
 * mark at once; otherwise the footprint may run past the mark by less than
 * a chunk's worth before a trade, so that trades come a chunk's worth at a
 * time. */
static void
arena_grow_high_water(arena_t *a, size_t npages, bool cached) {
	size_t ndirty = arena_ndirty_total(a);
	size_t active = a->nactive + a->nactive_huge;
	size_t after = active + ndirty + npages;
	if (after <= a->footprint_max) {
		return;
	}
	/* Keep a chunk's worth, so that small programs do not trade page by
	 * page, and holes up to a sixteenth of the active pages: short dirty
	 * runs that few next to the memory in use are holes among it (a
	 * heap fragmented by frees, refilled in other sizes), which later
	 * requests fill again; purging them only makes those requests fault
	 * them in anew (doc/design.md, "What the high-water bound keeps"). */
	size_t keep = active >> HIGH_WATER_KEEP_LG;
	if (keep > a->ndirty_holes) {
		keep = a->ndirty_holes;
	}
	/* Longer free runs are what a batch of frees left (a collected
	 * generation), which growth past the mark shows to be more than
	 * the program needs: a sixty-fourth of the active pages is kept. */
	if (keep < active >> HIGH_WATER_KEEP_ANY_LG) {
		keep = active >> HIGH_WATER_KEEP_ANY_LG;
	}
	if (keep < CHUNK_NPAGES) {
		keep = CHUNK_NPAGES;
	}
	size_t can = ndirty > keep ? ndirty - keep : 0;
	if (can == 0) {
		a->footprint_max = after;
		return;
	}
	if (after < a->footprint_max + CHUNK_NPAGES) {
		return;
	}
	if (cached && chunk_cache_fits_dirty(&a->chunks, CHUNK, CHUNK, false)) {
		/* The run's chunk will be resident pages, no growth. */
		return;
	}
	size_t excess = after - a->footprint_max;
	if (arena_purge_spans(a, excess < can ? excess : can, true, true) != 0) {
		decay_purged(&a->decay, arena_ndirty_total(a));
		after = a->nactive + a->nactive_huge + arena_ndirty_total(a) + npages;
	}
	if (after > a->footprint_max) {
		a->footprint_max = after;
	}
}

void
arena_grow_bound(arena_t *a, size_t npages, bool cached) {
	ssize_t lg = opt_lg_dirty_bound;
	if (!arena_purges(a)) {
		return;
	}
	if (lg < 0) {
		arena_grow_high_water(a, npages, cached);
		return;
	}
	size_t ndirty = arena_ndirty_total(a);
	size_t active = a->nactive + a->nactive_huge;
	size_t bound = (size_t)lg < sizeof(size_t) * 8 ? active >> lg : 0;
	/* Never less than a chunk's worth: small programs do not trade page
	 * by page. */
	if (bound < CHUNK_NPAGES) {
		bound = CHUNK_NPAGES;
	}
	if (ndirty <= bound) {
		return;
	}
	size_t excess = ndirty - bound;
	/* For good: the point is to keep RSS down while the arena grows. */
	if (arena_purge(a, npages < excess ? npages : excess, true) != 0) {
		decay_purged(&a->decay, arena_ndirty_total(a));
	}
}
