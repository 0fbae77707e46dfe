/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Purging (see arena.h): an arena gives its dirty free pages and cached
 * spans back to the kernel (or the chunk hooks) as its policy says: the
 * decay curve (decay.h), or the ratio rule of opt.purge:ratio, or all at
 * once (arena.<i>.purge). Also the decay ticks and the sweep that let idle
 * arenas purge, and the per-arena purging settings.
 */
#include "alloc/internal/arena.h"

#include "alloc/internal/arena_run.h"
#include "alloc/internal/arena_validate.h"

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

/*
 * Purges at least `want` dirty pages if there are that many: the oldest
 * cached spans first, then the dirty runs of the least recently dirtied
 * chunks. The lock is dropped around the madvise calls; the pages being
 * purged are out of every list meanwhile (runs marked allocated), so no
 * other thread touches them. Returns the pages purged.
 */
static size_t
arena_purge(arena_t *a, size_t want) {
	if (a->purging || want == 0) {
		return 0;
	}
	a->purging = true;
	size_t total = 0;
	while (total < want) {
		purge_item_t items[PURGE_BATCH];
		unsigned n = 0;
		size_t batch = 0;
		while (n < PURGE_BATCH && total + batch < want) {
			extent_t *e = chunk_cache_take_dirty(&a->chunks);
			if (e == NULL) {
				break;
			}
			items[n++] = (purge_item_t){NULL, 0, e->size >> LG_PAGE, e};
			batch += e->size >> LG_PAGE;
		}
		for (arena_chunk_t *c = a->dirty_head;
		     c != NULL && n < PURGE_BATCH && total + batch < want;) {
			arena_chunk_t *next_chunk = c->dirty_next;
			for (size_t pi = CHUNK_HEADER_PAGES;
			     pi < CHUNK_NPAGES && n < PURGE_BATCH && total + batch < want;) {
				uint32_t bits = c->map[pi];
				size_t npages = map_npages(bits);
				if ((bits & MAP_FREE) && (bits & MAP_DIRTY)) {
					arena_avail_remove(a, c, pi);
					/* Allocated while being purged. */
					arena_map_set_run(c, pi, npages, MAP_LARGE);
					c->nfree_pages -= npages;
					if (c == a->spare) {
						a->spare = NULL;
					}
					items[n++] = (purge_item_t){c, pi, npages, NULL};
					batch += npages;
				}
				pi += npages;
			}
			c = next_chunk;
		}
		if (n == 0) {
			break;
		}
		chunk_hooks_t hooks = *chunk_cache_hooks(&a->chunks);
		mutex_unlock(&a->lock);
		bool zeroed[PURGE_BATCH];
		for (unsigned i = 0; i < n; i++) {
			size_t length = items[i].npages << LG_PAGE;
			if (items[i].extent != NULL) {
				zeroed[i] = chunk_purge_range(&hooks, a->ind, items[i].extent->addr,
				                              length, 0, length);
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
				arena_run_insert_free(a, c, items[i].pi, items[i].npages,
				                      zeroed[i] ? 0 : MAP_UNZEROED);
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

void
arena_maybe_purge(arena_t *a) {
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
		arena_purge(a, ndirty - limit);
		decay_purged(&a->decay, arena_ndirty_total(a));
	}
}

void
arena_decay(arena_t *a) {
	mutex_lock(&a->lock);
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
}

void
arena_abandon(arena_t *a) {
	__atomic_store_n(&a->abandoned, true, __ATOMIC_RELAXED);
	arena_decay(a);
}

void
arena_decay_tick(arena_t *a) {
	/* Skip the lock when purging is off for this arena. The peek races
	 * with arena.<i>.decay_time writes (decay_init stores it atomically
	 * too); a stale answer costs one lock round or one skipped tick. */
	if (opt_purge == PURGE_MODE_DECAY &&
	    __atomic_load_n(&a->decay.time, __ATOMIC_RELAXED) < 0) {
		return;
	}
	arena_decay(a);
}

uint64_t
arena_decay_background(arena_t *a) {
	mutex_lock(&a->lock);
	arena_maybe_purge(a);
	uint64_t next = UINT64_MAX;
	if (opt_purge == PURGE_MODE_DECAY && arena_ndirty_total(a) != 0) {
		next = decay_ns_until_next(&a->decay, decay_now_ns());
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
		/* A busy arena is being used, and so purges by itself. */
		if (a != NULL && mutex_trylock(&a->lock)) {
			arena_maybe_purge(a);
			mutex_unlock(&a->lock);
		}
	}
}

size_t
arena_purge_all(arena_t *a) {
	mutex_lock(&a->lock);
	size_t pages = arena_purge(a, arena_ndirty_total(a));
	decay_purged(&a->decay, arena_ndirty_total(a));
	mutex_unlock(&a->lock);
	arena_validate_maybe(a, true);
	return pages << LG_PAGE;
}

ssize_t
arena_decay_time_get(arena_t *a) {
	mutex_lock(&a->lock);
	ssize_t ret = a->decay.time;
	mutex_unlock(&a->lock);
	return ret;
}

bool
arena_decay_time_set(arena_t *a, ssize_t decay_time) {
	if (!arena_decay_time_valid(decay_time)) {
		return true;
	}
	mutex_lock(&a->lock);
	decay_init(&a->decay, decay_time, decay_now_ns());
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
 * arena_grow_bound; doc/design.md, "Reuse before purge"). */

ssize_t opt_lg_dirty_bound = -1;

void
arena_grow_bound(arena_t *a, size_t npages) {
	ssize_t lg = opt_lg_dirty_bound;
	if (lg < 0 || !arena_purges(a)) {
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
	if (arena_purge(a, npages < excess ? npages : excess) != 0) {
		decay_purged(&a->decay, arena_ndirty_total(a));
	}
}
