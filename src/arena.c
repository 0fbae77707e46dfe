/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Arenas (see arena.h): chunks carved into page runs; small size classes
 * served from runs of regions by bins; large classes as single page runs.
 *
 * Page runs. Free runs are maximal (a free run never touches another free
 * run in the same state) and sit in arena->avail[dirty][c], where c is the
 * largest page-count class
 * not above the run's length; a request for n pages searches the lists from
 * the smallest class >= n upwards, so any run it finds is long enough.
 * A free run is DIRTY when some of its pages may hold data; clean runs read
 * as zeros (fresh from the kernel or purged), which lets calloc skip memset.
 * Merging a clean run with a dirty one gives a dirty run.
 *
 * Chunks. An arena maps a chunk when no free run is long enough. When a
 * chunk becomes entirely free it stays as the arena's spare if there is
 * none; otherwise it goes back to the arena's chunk cache.
 */
#include "alloc/internal/arena.h"

#include <stdatomic.h>
#include <sched.h>
#include <string.h>

#include "alloc/internal/arena_validate.h"
#include "alloc/internal/assert.h"
#include "alloc/internal/base.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/message.h"
#include "alloc/internal/pages.h"

bin_info_t bin_infos[SZ_NSMALL];
size_t arena_cactive_bytes;
arena_t *arenas[ARENAS_MAX];
unsigned narenas_total;
unsigned narenas_auto;

/* Protects arena creation (arenas[], narenas_total). Lock order: after
 * init_lock, before any bin lock. */
static mutex_t arenas_lock = MUTEX_INITIALIZER;
/* Defaults for arenas created later (arenas.decay_time and
 * arenas.lg_dirty_mult); under arenas_lock. */
static ssize_t arenas_decay_time;
static ssize_t arenas_lg_dirty_mult;

/* Debug builds walk an arena (arena_validate) every ARENA_VALIDATE_INTERVAL
 * calls of the slow paths that enter it holding no lock (small and large
 * allocation, large free, fills and flushes), and after every purge_all and
 * reset (`always`), aborting on the first broken invariant. The interval
 * keeps the --enable-debug test suite within a few times its normal time
 * while every test still runs the walker many times. */
#define ARENA_VALIDATE_INTERVAL 1024
static unsigned arena_validate_ticker;
static void arena_debug_validate(arena_t *a, bool always);

/* Page-count classes: psz_floor[n] / psz_ceil[n] is the largest class of at
 * most n pages / the smallest of at least n pages, for 1 <= n <= CHUNK_NPAGES.
 * psz_floor and psz_count are also read by the walker (arena_validate.h). */
uint8_t psz_floor[CHUNK_NPAGES + 1];
static uint8_t psz_ceil[CHUNK_NPAGES + 1];
unsigned psz_count;

_Static_assert(PSZ_MAX <= 255, "page classes must fit in a byte");
_Static_assert(SZ_NPAGED + 1 <= 255, "size classes + 1 in the page map must fit in a byte");

static void
psz_boot(void) {
	/* Classes 1, 2, 3, 4, then four per doubling: 5 6 7 8, 10 12 14 16, ... */
	size_t values[PSZ_MAX];
	unsigned n = 0;
	for (size_t v = 1; v <= 4 && v <= CHUNK_NPAGES; v++) {
		values[n++] = v;
	}
	for (size_t base = 4; base < CHUNK_NPAGES; base *= 2) {
		for (size_t j = 1; j <= 4; j++) {
			values[n++] = base + j * (base / 4);
		}
	}
	psz_count = n;
	unsigned c = 0;
	for (size_t pages = 1; pages <= CHUNK_NPAGES; pages++) {
		while (c + 1 < n && values[c + 1] <= pages) {
			c++;
		}
		psz_floor[pages] = (uint8_t)c;
		psz_ceil[pages] = (uint8_t)(values[c] == pages ? c : c + 1);
	}
}

static size_t
gcd(size_t a, size_t b) {
	while (b != 0) {
		size_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void
bin_infos_boot(void) {
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		bin_info_t *info = &bin_infos[i];
		size_t reg = sz_index2size(i);
		/* The smallest run that regions tile exactly is lcm(reg, PAGE);
		 * double it until a run holds at least four regions, so a bin of
		 * big regions does not take a new run for every other malloc. */
		size_t run = reg / gcd(reg, PAGE) * PAGE;
		while (run / reg < 4 && run * 2 <= CHUNK_RUN_MAX_PAGES * PAGE / 4) {
			run *= 2;
		}
		info->reg_size = reg;
		info->run_size = run;
		info->nregs = (uint32_t)(run / reg);
		info->div_magic = (uint32_t)((((uint64_t)1 << 32) + reg - 1) / reg);
		info->bitmap_ngroups = BITMAP_NGROUPS(info->nregs);
		info->run_desc_size = sizeof(run_t) + info->bitmap_ngroups * sizeof(bitmap_t);
	}
}

void
arena_boot(void) {
	sz_boot(CHUNK_RUN_MAX_PAGES * PAGE);
	psz_boot();
	bin_infos_boot();
	arenas_decay_time = opt_decay_time;
	arenas_lg_dirty_mult = opt_lg_dirty_mult;
}

/* ---------------------------------------------------------------------- */
/* Page map and free-run lists. Everything here runs under arena->lock. */

/* Writes the bookkeeping of a run at its first and last page. */
static void
map_set_run(arena_chunk_t *c, size_t pi, size_t npages, uint32_t flags) {
	uint32_t bits = (uint32_t)(npages << MAP_NPAGES_SHIFT) | flags;
	c->map[pi] = bits;
	c->map[pi + npages - 1] = bits;
}

/* The dirty list: chunks with dirty free pages, least recently dirtied
 * first, so purging takes the memory that has been unused longest. */
static void
dirty_list_unlink(arena_t *a, arena_chunk_t *c) {
	if (c->dirty_prev != NULL) {
		c->dirty_prev->dirty_next = c->dirty_next;
	} else {
		a->dirty_head = c->dirty_next;
	}
	if (c->dirty_next != NULL) {
		c->dirty_next->dirty_prev = c->dirty_prev;
	} else {
		a->dirty_tail = c->dirty_prev;
	}
	c->dirty_prev = NULL;
	c->dirty_next = NULL;
}

static void
dirty_list_append(arena_t *a, arena_chunk_t *c) {
	c->dirty_next = NULL;
	c->dirty_prev = a->dirty_tail;
	if (a->dirty_tail != NULL) {
		a->dirty_tail->dirty_next = c;
	} else {
		a->dirty_head = c;
	}
	a->dirty_tail = c;
}

static void
avail_insert(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, uint32_t state) {
	uint32_t dirty = state & MAP_DIRTY;
	map_set_run(c, pi, npages, MAP_FREE | (state & MAP_STATE));
	unsigned cls = psz_floor[npages];
	page_misc_t *m = &c->misc[pi];
	m->link.prev = NULL;
	unsigned d = dirty != 0;
	m->link.next = a->avail[d][cls];
	if (m->link.next != NULL) {
		m->link.next->link.prev = m;
	}
	a->avail[d][cls] = m;
	bitmap_set(a->avail_mask[d], cls);
	if (dirty) {
		a->ndirty += npages;
		if (c->ndirty != 0) {
			dirty_list_unlink(a, c);
		}
		c->ndirty += npages;
		dirty_list_append(a, c);
	}
}

static void
avail_remove(arena_t *a, arena_chunk_t *c, size_t pi) {
	uint32_t bits = c->map[pi];
	size_t npages = map_npages(bits);
	unsigned cls = psz_floor[npages];
	page_misc_t *m = &c->misc[pi];
	if (m->link.prev != NULL) {
		m->link.prev->link.next = m->link.next;
	} else {
		unsigned d = (bits & MAP_DIRTY) != 0;
		a->avail[d][cls] = m->link.next;
		if (m->link.next == NULL) {
			bitmap_unset(a->avail_mask[d], cls);
		}
	}
	if (m->link.next != NULL) {
		m->link.next->link.prev = m->link.prev;
	}
	if (bits & MAP_DIRTY) {
		a->ndirty -= npages;
		c->ndirty -= npages;
		if (c->ndirty == 0) {
			dirty_list_unlink(a, c);
		}
	}
}

/* Smallest non-empty class >= cls, or psz_count if none. */
static unsigned
avail_first(const arena_t *a, unsigned d, unsigned cls) {
	size_t g = cls / 64;
	uint64_t word = a->avail_mask[d][g] & (~(uint64_t)0 << (cls % 64));
	for (;;) {
		if (word != 0) {
			return (unsigned)(g * 64 + ctz_u64(word));
		}
		if (++g >= BITMAP_NGROUPS(PSZ_MAX)) {
			return psz_count;
		}
		word = a->avail_mask[d][g];
	}
}

static page_misc_t *
misc_of(arena_chunk_t **cp, size_t *pip, page_misc_t *m) {
	arena_chunk_t *c = arena_chunk_of(m);
	*cp = c;
	*pip = (size_t)(m - c->misc);
	return m;
}

uint8_t arena_chunk_registry[(size_t)1 << ARENA_REGISTRY_LG_SLOTS];

/* Marks chunk c as an arena chunk (or not) in the registry. Relaxed: a
 * free racing with the chunk's release is a use-after-free already. */
static void
arena_chunk_register(arena_chunk_t *c, bool registered) {
	__atomic_store_n(&arena_chunk_registry[(uintptr_t)c >> LG_CHUNK], registered,
	                 __ATOMIC_RELAXED);
}

static void arena_chunk_discard(arena_t *a, arena_chunk_t *c);

/* Under a->lock: the spare chunk and the cached spans go back to the
 * kernel (or the hooks). */
static bool
arena_release_locked(arena_t *a) {
	if (a->spare != NULL) {
		arena_chunk_t *c = a->spare;
		a->spare = NULL;
		arena_chunk_discard(a, c);
	}
	return chunk_cache_release(&a->chunks) != 0;
}

bool
arena_release_cached(arena_t *a) {
	bool released = arena_release_locked(a);
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++) {
		arena_t *other = __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE);
		/* Never wait for another arena's lock while holding ours. */
		if (other != NULL && other != a && mutex_trylock(&other->lock)) {
			released |= arena_release_locked(other);
			mutex_unlock(&other->lock);
		}
	}
	return released;
}

static arena_chunk_t *
arena_chunk_new(arena_t *a) {
	bool zeroed;
	arena_chunk_t *c = chunk_alloc(&a->chunks, CHUNK, CHUNK, &zeroed);
	if (c == NULL && arena_release_cached(a)) {
		c = chunk_alloc(&a->chunks, CHUNK, CHUNK, &zeroed);
	}
	if (c == NULL) {
		return NULL;
	}
	if (unlikely((uintptr_t)c >> LG_VADDR != 0)) {
		/* Outside the registry's range (only a chunk hook can hand
		 * out such memory): free() could not find objects there. */
		chunk_dalloc(&a->chunks, c, CHUNK, false);
		return NULL;
	}
	arena_chunk_register(c, true);
	c->arena = a;
	c->nfree_pages = CHUNK_RUN_MAX_PAGES;
	c->ndirty = 0;
	c->dirty_prev = NULL;
	c->dirty_next = NULL;
	c->prev = NULL;
	c->next = a->chunks_head;
	if (c->next != NULL) {
		c->next->prev = c;
	}
	a->chunks_head = c;
	if (!zeroed) {
		memset(c->pclass, PCLASS_NONE, sizeof(c->pclass));
	}
	for (size_t i = 0; i < CHUNK_HEADER_PAGES; i++) {
		c->map[i] = MAP_HEADER;
	}
	avail_insert(a, c, CHUNK_HEADER_PAGES, CHUNK_RUN_MAX_PAGES, zeroed ? 0 : MAP_DIRTY);
	if (config_stats) {
		a->stats.mapped_chunks++;
	}
	return c;
}

/*
 * A free run of at least npages pages in list d (1: dirty, 0: clean), or
 * NULL: the head of the smallest non-empty class that surely fits, else the
 * first fit in the class below, whose runs may be long enough. That second
 * look matters above the largest class a chunk's run can fill: a whole
 * chunk's run (CHUNK_RUN_MAX_PAGES, 509 pages with 4 KiB pages) sits in
 * class 448, so a request for 449 to 509 pages (a large class plus the
 * slack of a big alignment) fits nowhere else.
 */
static page_misc_t *
avail_find(arena_t *a, unsigned d, size_t npages) {
	unsigned cls = avail_first(a, d, psz_ceil[npages]);
	if (cls < psz_count) {
		return a->avail[d][cls];
	}
	if (psz_floor[npages] == psz_ceil[npages]) {
		return NULL;
	}
	for (page_misc_t *m = a->avail[d][psz_floor[npages]]; m != NULL; m = m->link.next) {
		arena_chunk_t *c = arena_chunk_of(m);
		if (map_npages(c->map[m - c->misc]) >= npages) {
			return m;
		}
	}
	return NULL;
}

/*
 * Takes a free run of at least npages pages, splits off the rest, and marks
 * the run with `flags` (MAP_SMALL or MAP_LARGE). Returns false when the
 * kernel refuses a new chunk. *zeroed tells whether the run reads as zeros.
 */
static bool
arena_run_alloc(arena_t *a, size_t npages, uint32_t flags, arena_chunk_t **cp, size_t *pip,
                bool *zeroed) {
	assert_internal(npages >= 1 && npages <= CHUNK_RUN_MAX_PAGES);
	/* Dirty runs first (no page faults, no new RSS), then clean ones,
	 * then a new chunk. */
	page_misc_t *m = avail_find(a, 1, npages);
	if (m == NULL) {
		m = avail_find(a, 0, npages);
	}
	if (m == NULL) {
		if (arena_chunk_new(a) == NULL) {
			return false;
		}
		m = &a->chunks_head->misc[CHUNK_HEADER_PAGES];
	}
	arena_chunk_t *c;
	size_t pi;
	misc_of(&c, &pi, m);
	uint32_t bits = c->map[pi];
	size_t run_pages = map_npages(bits);
	assert_internal((bits & MAP_FREE) && run_pages >= npages);
	avail_remove(a, c, pi);
	if (run_pages > npages) {
		avail_insert(a, c, pi + npages, run_pages - npages, bits & MAP_STATE);
	}
	map_set_run(c, pi, npages, flags);
	c->nfree_pages -= npages;
	a->nactive += npages;
	arena_cactive_add(npages << LG_PAGE);
	if (c == a->spare) {
		a->spare = NULL;
	}
	*cp = c;
	*pip = pi;
	*zeroed = (bits & MAP_STATE) == 0;
	return true;
}

/* A chunk all of whose run pages are free (and in the avail lists, as one
 * or more runs: dirty and clean runs are kept apart). */
static void
arena_chunk_empty(arena_t *a, arena_chunk_t *c) {
	if (a->spare == NULL) {
		a->spare = c;
		return;
	}
	arena_chunk_discard(a, c);
}

/* Takes an empty chunk out of the arena and gives it to the chunk cache. */
static void
arena_chunk_discard(arena_t *a, arena_chunk_t *c) {
	/* Dirty only if some run still holds data: a chunk whose runs were
	 * all purged must not be purged again (its header pages are the only
	 * ones touched, and they are tiny). */
	bool dirty = c->ndirty != 0;
	for (size_t pi = CHUNK_HEADER_PAGES; pi < CHUNK_NPAGES;) {
		size_t n = map_npages(c->map[pi]);
		avail_remove(a, c, pi);
		pi += n;
	}
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		a->chunks_head = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	arena_chunk_register(c, false);
	/* The header was written, so the chunk as a whole is not zero. */
	chunk_dalloc_state(&a->chunks, c, CHUNK, dirty, false);
	if (config_stats) {
		a->stats.mapped_chunks--;
	}
}

/* Puts free pages [pi, pi+npages) in `state` (MAP_DIRTY, MAP_UNZEROED or
 * neither) into the free lists, merging with free neighbours that are
 * dirty or not alike; a merged run is unzeroed if any part is. */
static void
arena_run_insert_free(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, uint32_t state) {
	uint32_t dirty = state & MAP_DIRTY;
	uint32_t left = c->map[pi - 1];
	if ((left & MAP_FREE) && (left & MAP_DIRTY) == dirty) {
		size_t ln = map_npages(left);
		avail_remove(a, c, pi - ln);
		pi -= ln;
		npages += ln;
		state |= left & MAP_UNZEROED;
	}
	if (pi + npages < CHUNK_NPAGES) {
		uint32_t right = c->map[pi + npages];
		if ((right & MAP_FREE) && (right & MAP_DIRTY) == dirty) {
			avail_remove(a, c, pi + npages);
			npages += map_npages(right);
			state |= right & MAP_UNZEROED;
		}
	}
	avail_insert(a, c, pi, npages, state);
	if (c->nfree_pages == CHUNK_RUN_MAX_PAGES) {
		arena_chunk_empty(a, c);
	}
}

/* Returns the pages of an allocated run [pi, pi+npages) to the free
 * lists. */
static void
arena_run_dalloc(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, bool dirty) {
	memset(&c->pclass[pi], PCLASS_NONE, npages);
	c->nfree_pages += npages;
	a->nactive -= npages;
	arena_cactive_sub(npages << LG_PAGE);
	arena_run_insert_free(a, c, pi, npages, dirty ? MAP_DIRTY : 0);
}

/* ---------------------------------------------------------------------- */
/* Purging. Everything here runs under arena->lock. */

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
					avail_remove(a, c, pi);
					/* Allocated while being purged. */
					map_set_run(c, pi, npages, MAP_LARGE);
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
		chunk_hooks_t hooks = a->chunks.hooks;
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
		arena_t *a = __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE);
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
	arena_debug_validate(a, true);
	return pages << LG_PAGE;
}

/* The ranges of arena.<i>.decay_time / arenas.decay_time and of the
 * lg_dirty_mult nodes (the same as the options'). */
static bool
decay_time_valid(ssize_t decay_time) {
	return decay_time >= -1 && decay_time <= DECAY_TIME_MAX;
}

static bool
lg_dirty_mult_valid(ssize_t lg_dirty_mult) {
	return lg_dirty_mult >= -1 && lg_dirty_mult < (ssize_t)(sizeof(size_t) * 8);
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
	if (!decay_time_valid(decay_time)) {
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
	if (!lg_dirty_mult_valid(lg_dirty_mult)) {
		return true;
	}
	mutex_lock(&a->lock);
	a->lg_dirty_mult = lg_dirty_mult;
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
	return false;
}

/* ---------------------------------------------------------------------- */
/* Arena creation. */

static arena_t *
arena_new(unsigned ind) {
	arena_t *a = base_alloc(sizeof(arena_t));
	if (a == NULL) {
		return NULL;
	}
	a->ind = ind;
	a->stats.metadata_allocated = sizeof(arena_t);
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		if (mutex_init(&a->bins[i].lock)) {
			return NULL;
		}
	}
	if (mutex_init(&a->lock)) {
		return NULL;
	}
	chunk_cache_init(&a->chunks, ind);
	/* Called under arenas_lock, which guards the defaults. */
	decay_init(&a->decay, arenas_decay_time, decay_now_ns());
	a->lg_dirty_mult = arenas_lg_dirty_mult;
	return a;
}

void
arena_chunk_hooks_get(arena_t *a, chunk_hooks_t *out) {
	mutex_lock(&a->lock);
	*out = a->chunks.hooks;
	mutex_unlock(&a->lock);
}

bool
arena_chunk_hooks_set(arena_t *a, const chunk_hooks_t *hooks) {
	if (hooks->alloc == NULL || hooks->dalloc == NULL || hooks->commit == NULL ||
	    hooks->decommit == NULL || hooks->purge == NULL || hooks->split == NULL ||
	    hooks->merge == NULL) {
		return true;
	}
	mutex_lock(&a->lock);
	chunk_hooks_set(&a->chunks, hooks);
	mutex_unlock(&a->lock);
	return false;
}

ssize_t
arenas_decay_time_get(void) {
	mutex_lock(&arenas_lock);
	ssize_t ret = arenas_decay_time;
	mutex_unlock(&arenas_lock);
	return ret;
}

bool
arenas_decay_time_set(ssize_t decay_time) {
	if (!decay_time_valid(decay_time)) {
		return true;
	}
	mutex_lock(&arenas_lock);
	arenas_decay_time = decay_time;
	mutex_unlock(&arenas_lock);
	return false;
}

ssize_t
arenas_lg_dirty_mult_get(void) {
	mutex_lock(&arenas_lock);
	ssize_t ret = arenas_lg_dirty_mult;
	mutex_unlock(&arenas_lock);
	return ret;
}

bool
arenas_lg_dirty_mult_set(ssize_t lg_dirty_mult) {
	if (!lg_dirty_mult_valid(lg_dirty_mult)) {
		return true;
	}
	mutex_lock(&arenas_lock);
	arenas_lg_dirty_mult = lg_dirty_mult;
	mutex_unlock(&arenas_lock);
	return false;
}

arena_t *
arena_get(unsigned ind) {
	if (ind >= ARENAS_MAX) {
		return NULL;
	}
	arena_t *a = __atomic_load_n(&arenas[ind], __ATOMIC_ACQUIRE);
	if (likely(a != NULL)) {
		return a;
	}
	mutex_lock(&arenas_lock);
	a = arenas[ind];
	if (a == NULL) {
		a = arena_new(ind);
		if (a != NULL) {
			__atomic_store_n(&arenas[ind], a, __ATOMIC_RELEASE);
			if (ind >= narenas_total) {
				__atomic_store_n(&narenas_total, ind + 1, __ATOMIC_RELEASE);
			}
		}
	}
	mutex_unlock(&arenas_lock);
	return a;
}

arena_t *
arena_extend(void) {
	mutex_lock(&arenas_lock);
	/* Past every automatic slot, even those no thread used yet: an
	 * extended arena must never be one threads get bound to. */
	unsigned ind = narenas_total > narenas_auto ? narenas_total : narenas_auto;
	arena_t *a = NULL;
	if (ind < ARENAS_MAX) {
		a = arena_new(ind);
		if (a != NULL) {
			__atomic_store_n(&arenas[ind], a, __ATOMIC_RELEASE);
			__atomic_store_n(&narenas_total, ind + 1, __ATOMIC_RELEASE);
		}
	}
	mutex_unlock(&arenas_lock);
	return a;
}

/* ---------------------------------------------------------------------- */
/* Small objects. Everything here runs under the bin's lock. */

static run_t *
bin_run_new(arena_t *a, bin_t *bin, szind_t binind) {
	const bin_info_t *info = &bin_infos[binind];
	run_t *run = bin->desc_free;
	if (run != NULL) {
		bin->desc_free = run->next;
	} else {
		run = base_alloc(info->run_desc_size);
		if (run == NULL) {
			return NULL;
		}
		if (config_stats) {
			__atomic_fetch_add(&a->stats.metadata_allocated, info->run_desc_size,
			                   __ATOMIC_RELAXED);
		}
	}
	size_t npages = info->run_size >> LG_PAGE;
	arena_chunk_t *c;
	size_t pi;
	bool zeroed;
	mutex_lock(&a->lock);
	bool ok = arena_run_alloc(a, npages, MAP_SMALL, &c, &pi, &zeroed);
	mutex_unlock(&a->lock);
	if (!ok) {
		run->next = bin->desc_free;
		bin->desc_free = run;
		return NULL;
	}
	run->base = (char *)c + (pi << LG_PAGE);
	run->prev = NULL;
	run->next = NULL;
	run->binind = binind;
	run->nfree = info->nregs;
	run->hint = 0;
	bitmap_init(run->bitmap, info->nregs);
	for (size_t i = 0; i < npages; i++) {
		c->misc[pi + i].run = run;
	}
	/* Publish the class last: a page's szind says "this run's pages". */
	memset(&c->pclass[pi], (int)binind + 1, npages);
	if (config_stats) {
		bin->stats.nruns++;
		bin->stats.curruns++;
	}
	return run;
}

static void
bin_nonfull_insert(bin_t *bin, run_t *run) {
	run->prev = NULL;
	run->next = bin->nonfull;
	if (run->next != NULL) {
		run->next->prev = run;
	}
	bin->nonfull = run;
}

static void
bin_nonfull_remove(bin_t *bin, run_t *run) {
	if (run->prev != NULL) {
		run->prev->next = run->next;
	} else {
		bin->nonfull = run->next;
	}
	if (run->next != NULL) {
		run->next->prev = run->prev;
	}
}

/* Makes runcur a run with a free region; NULL when memory is short. */
static run_t *
bin_refill_runcur(arena_t *a, bin_t *bin, szind_t binind) {
	run_t *run = bin->nonfull;
	if (run != NULL) {
		bin_nonfull_remove(bin, run);
		if (config_stats) {
			bin->stats.reruns++;
		}
	} else {
		run = bin_run_new(a, bin, binind);
		if (run == NULL) {
			return NULL;
		}
	}
	bin->runcur = run;
	return run;
}

ALWAYS_INLINE void *
run_reg_alloc(run_t *run, const bin_info_t *info) {
	size_t idx = bitmap_sfu(run->bitmap, info->bitmap_ngroups, &run->hint);
	run->nfree--;
	return run->base + idx * info->reg_size;
}

static void *
bin_malloc_locked(arena_t *a, bin_t *bin, szind_t binind) {
	run_t *run = bin->runcur;
	if (unlikely(run == NULL || run->nfree == 0)) {
		run = bin_refill_runcur(a, bin, binind);
		if (run == NULL) {
			return NULL;
		}
	}
	return run_reg_alloc(run, &bin_infos[binind]);
}

void *
arena_malloc_small(arena_t *a, szind_t binind, bool zero) {
	arena_debug_validate(a, false);
	bin_t *bin = &a->bins[binind];
	arena_note_alloc(a);
	mutex_lock(&bin->lock);
	void *ret = bin_malloc_locked(a, bin, binind);
	if (config_stats && ret != NULL) {
		bin->stats.nmalloc++;
		bin->stats.nrequests++;
		bin->stats.curregs++;
	}
	mutex_unlock(&bin->lock);
	if (zero && ret != NULL) {
		memset(ret, 0, bin_infos[binind].reg_size);
	}
	return ret;
}

unsigned
arena_bin_fill(arena_t *a, szind_t binind, void **ptrs, unsigned n) {
	arena_debug_validate(a, false);
	bin_t *bin = &a->bins[binind];
	const bin_info_t *info = &bin_infos[binind];
	unsigned got = 0;
	arena_note_alloc(a);
	mutex_lock(&bin->lock);
	while (got < n) {
		run_t *run = bin->runcur;
		if (run == NULL || run->nfree == 0) {
			run = bin_refill_runcur(a, bin, binind);
			if (run == NULL) {
				break;
			}
		}
		while (got < n && run->nfree > 0) {
			ptrs[got++] = run_reg_alloc(run, info);
		}
	}
	if (config_stats) {
		bin->stats.nmalloc += got;
		bin->stats.nfills++;
		bin->stats.curregs += got;
	}
	mutex_unlock(&bin->lock);
	return got;
}

COLD NOINLINE static void
report_bad_free(const void *ptr, const char *what) {
	msg_fatal("%s: %p (free, realloc or sdallocx of a pointer not returned by malloc, "
	          "or freed twice)",
	          what, ptr);
}

/* Whether ptr is the start of a region of `run`; if so, *idx is its index
 * (one multiply by the class's reciprocal, no division). */
static inline bool
run_region_index(const run_t *run, const void *ptr, size_t *idx) {
	const bin_info_t *info = &bin_infos[run->binind];
	size_t diff = (size_t)((const char *)ptr - run->base);
	*idx = (size_t)(((uint64_t)diff * info->div_magic) >> 32);
	return diff < info->run_size && *idx * info->reg_size == diff;
}

/* Returns a region to its run, under the bin lock. */
static void
bin_dalloc_locked(arena_t *a, bin_t *bin, run_t *run, void *ptr) {
	const bin_info_t *info = &bin_infos[run->binind];
	size_t idx;
	if (unlikely(!run_region_index(run, ptr, &idx))) {
		report_bad_free(ptr, "invalid pointer");
	}
	if (unlikely(!bitmap_get(run->bitmap, idx))) {
		report_bad_free(ptr, "double free");
	}
	bitmap_unset_hint(run->bitmap, idx, &run->hint);
	run->nfree++;
	if (run->nfree == info->nregs) {
		/* Empty: give the pages back. A run other than runcur was in
		 * the nonfull list unless it held one region. */
		if (run == bin->runcur) {
			bin->runcur = NULL;
		} else if (info->nregs > 1) {
			bin_nonfull_remove(bin, run);
		}
		arena_chunk_t *c = arena_chunk_of(run->base);
		size_t pi = arena_pageind(run->base);
		mutex_lock(&a->lock);
		arena_run_dalloc(a, c, pi, info->run_size >> LG_PAGE, true);
		arena_maybe_purge(a);
		mutex_unlock(&a->lock);
		run->next = bin->desc_free;
		bin->desc_free = run;
		if (config_stats) {
			bin->stats.curruns--;
		}
	} else if (run->nfree == 1 && run != bin->runcur) {
		bin_nonfull_insert(bin, run);
	}
}

void
arena_check_small(const void *ptr, szind_t binind) {
	arena_chunk_t *c = arena_chunk_of(ptr);
	run_t *run = c->misc[arena_pageind(ptr)].run;
	size_t idx;
	if (unlikely(run->binind != binind || !run_region_index(run, ptr, &idx))) {
		report_bad_free(ptr, "invalid pointer");
	}
	if (config_debug) {
		bin_t *bin = &c->arena->bins[binind];
		mutex_lock(&bin->lock);
		bool in_use = bitmap_get(run->bitmap, idx);
		mutex_unlock(&bin->lock);
		if (unlikely(!in_use)) {
			report_bad_free(ptr, "double free");
		}
	}
}

void
arena_dalloc_small(void *ptr, szind_t binind) {
	arena_chunk_t *c = arena_chunk_of(ptr);
	run_t *run = c->misc[arena_pageind(ptr)].run;
	arena_t *a = c->arena;
	bin_t *bin = &a->bins[binind];
	mutex_lock(&bin->lock);
	bin_dalloc_locked(a, bin, run, ptr);
	if (config_stats) {
		bin->stats.ndalloc++;
		bin->stats.curregs--;
	}
	mutex_unlock(&bin->lock);
}

void *
arena_small_region_base(const void *ptr, szind_t binind) {
	const run_t *run = arena_chunk_of(ptr)->misc[arena_pageind(ptr)].run;
	const bin_info_t *info = &bin_infos[binind];
	size_t diff = (size_t)((const char *)ptr - run->base);
	size_t idx = (size_t)(((uint64_t)diff * info->div_magic) >> 32);
	/* The magic is exact at multiples of reg_size; elsewhere it may round
	 * up by one. */
	if (idx * info->reg_size > diff) {
		idx--;
	}
	return run->base + idx * info->reg_size;
}

unsigned
arena_bin_flush(void **ptrs, unsigned n, szind_t binind, uint64_t nrequests) {
	arena_t *a = arena_chunk_of(ptrs[0])->arena;
	arena_debug_validate(a, false);
	bin_t *bin = &a->bins[binind];
	unsigned left = 0;
	unsigned freed = 0;
	mutex_lock(&bin->lock);
	for (unsigned i = 0; i < n; i++) {
		void *ptr = ptrs[i];
		arena_chunk_t *c = arena_chunk_of(ptr);
		if (c->arena != a) {
			ptrs[left++] = ptr;
			continue;
		}
		bin_dalloc_locked(a, bin, c->misc[arena_pageind(ptr)].run, ptr);
		freed++;
	}
	if (config_stats) {
		bin->stats.ndalloc += freed;
		bin->stats.curregs -= freed;
		bin->stats.nflushes++;
		bin->stats.nrequests += nrequests;
	}
	mutex_unlock(&bin->lock);
	return left;
}

/* ---------------------------------------------------------------------- */
/* Large objects. */

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

void *
arena_malloc_large(arena_t *a, szind_t szind, size_t alignment, bool zero) {
	arena_debug_validate(a, false);
	size_t usize = sz_index2size(szind);
	size_t npages = usize >> LG_PAGE;
	size_t extra = alignment > PAGE ? (alignment >> LG_PAGE) - 1 : 0;
	arena_chunk_t *c;
	size_t pi;
	bool zeroed;
	arena_note_alloc(a);
	mutex_lock(&a->lock);
	if (!arena_run_alloc(a, npages + extra, MAP_LARGE, &c, &pi, &zeroed)) {
		mutex_unlock(&a->lock);
		return NULL;
	}
	if (extra != 0) {
		uintptr_t addr = (uintptr_t)c + (pi << LG_PAGE);
		size_t lead = (ALIGN_UP(addr, alignment) - addr) >> LG_PAGE;
		size_t trail = extra - lead;
		/* Mark the kept run before returning the ends, so merging stops
		 * at its boundaries. */
		map_set_run(c, pi + lead, npages, MAP_LARGE);
		if (lead != 0) {
			map_set_run(c, pi, lead, MAP_LARGE);
			arena_run_dalloc(a, c, pi, lead, !zeroed);
		}
		if (trail != 0) {
			map_set_run(c, pi + lead + npages, trail, MAP_LARGE);
			arena_run_dalloc(a, c, pi + lead + npages, trail, !zeroed);
		}
		pi += lead;
	}
	c->pclass[pi] = (uint8_t)(szind + 1);
	large_stats_malloc(a, szind, usize);
	mutex_unlock(&a->lock);
	void *ret = (char *)c + (pi << LG_PAGE);
	if (zero && !zeroed) {
		memset(ret, 0, usize);
	}
	return ret;
}

static void
check_large_ptr(const void *ptr, arena_chunk_t *c, size_t pi) {
	if (unlikely(((uintptr_t)ptr & PAGE_MASK) != 0 || (c->map[pi] & MAP_LARGE) == 0)) {
		report_bad_free(ptr, "invalid pointer");
	}
}

/* Under a->lock: frees the large run of class szind at page pi of c,
 * leaving its pages dirty. */
static void
arena_dalloc_large_locked(arena_t *a, arena_chunk_t *c, size_t pi, szind_t szind) {
	size_t usize = sz_index2size(szind);
	large_stats_dalloc(a, szind, usize);
	arena_run_dalloc(a, c, pi, usize >> LG_PAGE, true);
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
	chunk_hooks_t hooks = a->chunks.hooks;
	mutex_unlock(&a->lock);
	/* The run is still allocated: nobody else touches its pages. */
	bool zeroed =
	    chunk_purge_range(&hooks, a->chunks.arena_ind, c, CHUNK, pi << LG_PAGE, usize);
	mutex_lock(&a->lock);
	large_stats_dalloc(a, szind, usize);
	memset(&c->pclass[pi], PCLASS_NONE, usize >> LG_PAGE);
	c->nfree_pages += usize >> LG_PAGE;
	a->nactive -= usize >> LG_PAGE;
	arena_cactive_sub(usize);
	arena_run_insert_free(a, c, pi, usize >> LG_PAGE, zeroed ? 0 : MAP_UNZEROED);
	arena_count_purge(a, usize >> LG_PAGE);
	mutex_unlock(&a->lock);
}

unsigned
arena_large_flush(void **ptrs, unsigned n, szind_t szind, uint64_t nrequests) {
	arena_t *a = arena_chunk_of(ptrs[0])->arena;
	arena_debug_validate(a, false);
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
		arena_run_dalloc(a, c, pi, usize >> LG_PAGE, true);
	}
	if (config_stats) {
		a->stats.lstats[szind - SZ_NSMALL].nrequests += nrequests;
	}
	arena_maybe_purge(a);
	mutex_unlock(&a->lock);
	return left;
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
		map_set_run(c, pi, new_pages, MAP_LARGE);
		map_set_run(c, pi + new_pages, old_pages - new_pages, MAP_LARGE);
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
		avail_remove(a, c, next);
		if (run_pages > need) {
			avail_insert(a, c, next + need, run_pages - need, bits & MAP_STATE);
		}
		c->nfree_pages -= need;
		a->nactive += need;
		arena_cactive_add(need << LG_PAGE);
		zeroed = (bits & MAP_STATE) == 0;
		map_set_run(c, pi, new_pages, MAP_LARGE);
	}
	c->pclass[pi] = (uint8_t)(new_szind + 1);
	large_stats_dalloc(a, old_szind, old_usize);
	large_stats_malloc(a, new_szind, new_usize);
	mutex_unlock(&a->lock);
	if (zero && new_usize > old_usize && !zeroed) {
		memset((char *)ptr + old_usize, 0, new_usize - old_usize);
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* Stats and reset. */

static void
sum_large(const large_stats_t *ls, size_t n, uint64_t *nmalloc, uint64_t *ndalloc,
          uint64_t *nrequests) {
	for (size_t i = 0; i < n; i++) {
		*nmalloc += ls[i].nmalloc;
		*ndalloc += ls[i].ndalloc;
		*nrequests += ls[i].nrequests;
	}
}

void
arena_stats_read(arena_t *a, arena_stats_snapshot_t *out) {
	memset(out, 0, sizeof(*out));
	out->nthreads = __atomic_load_n(&a->nthreads, __ATOMIC_RELAXED);
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		bin_t *bin = &a->bins[i];
		mutex_lock(&bin->lock);
		out->bins[i] = bin->stats;
		mutex_unlock(&bin->lock);
		out->allocated_small += out->bins[i].curregs * bin_infos[i].reg_size;
		out->nmalloc_small += out->bins[i].nmalloc;
		out->ndalloc_small += out->bins[i].ndalloc;
		out->nrequests_small += out->bins[i].nrequests;
	}
	mutex_lock(&a->lock);
	size_t huge_pages = a->stats.allocated_huge >> LG_PAGE;
	out->pactive = a->nactive + huge_pages;
	out->pdirty = a->ndirty + (a->chunks.dirty_bytes >> LG_PAGE);
	out->mapped = a->chunks.mapped_bytes;
	out->retained = a->chunks.cached_bytes - a->chunks.dirty_bytes;
	out->npurge = a->stats.npurge;
	out->nmadvise = a->stats.nmadvise;
	out->purged = a->stats.purged_pages;
	out->metadata_mapped = a->stats.mapped_chunks * CHUNK_HEADER_PAGES * PAGE;
	out->metadata_allocated = __atomic_load_n(&a->stats.metadata_allocated, __ATOMIC_RELAXED) +
	                          a->chunks.nodes_made * sizeof(extent_t);
	out->allocated_large = a->stats.allocated_large;
	out->allocated_huge = a->stats.allocated_huge;
	memcpy(out->lstats, a->stats.lstats, sizeof(out->lstats));
	memcpy(out->hstats, a->stats.hstats, sizeof(out->hstats));
	mutex_unlock(&a->lock);
	sum_large(out->lstats, SZ_NLARGE, &out->nmalloc_large, &out->ndalloc_large,
	          &out->nrequests_large);
	sum_large(out->hstats, SZ_NHUGE, &out->nmalloc_huge, &out->ndalloc_huge,
	          &out->nrequests_huge);
}

void
arena_reset(arena_t *a) {
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		mutex_lock(&a->bins[i].lock);
	}
	mutex_lock(&a->lock);
	/* Huge spans: forget them and give their memory back. */
	extent_t *e = a->huge_list;
	while (e != NULL) {
		extent_t *next = e->next;
		huge_forget(e->addr);
		chunk_dalloc(&a->chunks, e->addr, e->size, false);
		chunk_node_free(&a->chunks, e);
		e = next;
	}
	a->huge_list = NULL;
	/* Chunks: recycle the descriptors of their small runs, then give
	 * every chunk back to the cache and empty the run lists. */
	arena_chunk_t *c = a->chunks_head;
	while (c != NULL) {
		arena_chunk_t *next = c->next;
		for (size_t pi = CHUNK_HEADER_PAGES; pi < CHUNK_NPAGES;) {
			uint32_t bits = c->map[pi];
			if (bits & MAP_SMALL) {
				run_t *run = c->misc[pi].run;
				bin_t *bin = &a->bins[run->binind];
				run->next = bin->desc_free;
				bin->desc_free = run;
			}
			pi += map_npages(bits);
		}
		arena_chunk_register(c, false);
		chunk_dalloc(&a->chunks, c, CHUNK, false);
		c = next;
	}
	a->chunks_head = NULL;
	a->dirty_head = NULL;
	a->dirty_tail = NULL;
	a->spare = NULL;
	memset(a->avail, 0, sizeof(a->avail));
	memset(a->avail_mask, 0, sizeof(a->avail_mask));
	a->ndirty = 0;
	arena_cactive_sub((a->nactive << LG_PAGE) + a->stats.allocated_huge);
	a->nactive = 0;
	a->stats.mapped_chunks = 0;
	a->stats.allocated_large = 0;
	a->stats.allocated_huge = 0;
	for (szind_t i = 0; i < SZ_NLARGE; i++) {
		a->stats.lstats[i].curruns = 0;
	}
	for (szind_t i = 0; i < SZ_NHUGE; i++) {
		a->stats.hstats[i].curruns = 0;
	}
	mutex_unlock(&a->lock);
	for (szind_t i = SZ_NSMALL; i-- > 0;) {
		bin_t *bin = &a->bins[i];
		bin->runcur = NULL;
		bin->nonfull = NULL;
		bin->stats.curregs = 0;
		bin->stats.curruns = 0;
		mutex_unlock(&bin->lock);
	}
	arena_debug_validate(a, true);
}

/* ---------------------------------------------------------------------- */
/* Debug checks: the walker itself is in arena_validate.c. */

static void
arena_debug_validate(arena_t *a, bool always) {
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

/* ---------------------------------------------------------------------- */
/* Fork. */

void
arena_prefork(void) {
	mutex_prefork(&arenas_lock);
	for (unsigned i = 0; i < narenas_total; i++) {
		arena_t *a = arenas[i];
		if (a == NULL) {
			continue;
		}
		for (szind_t b = 0; b < SZ_NSMALL; b++) {
			mutex_prefork(&a->bins[b].lock);
		}
		mutex_prefork(&a->lock);
		/* A purge drops the arena lock around its madvise calls, with
		 * its runs out of every list. Forking then would leave the
		 * child an arena that believes a purge is under way forever
		 * (it never purges again) and those runs lost: wait for it.
		 * The purger needs only this lock to finish. */
		while (a->purging) {
			mutex_unlock(&a->lock);
			sched_yield();
			mutex_lock(&a->lock);
		}
	}
}

void
arena_postfork_parent(void) {
	for (unsigned i = narenas_total; i-- > 0;) {
		arena_t *a = arenas[i];
		if (a == NULL) {
			continue;
		}
		mutex_postfork_parent(&a->lock);
		for (szind_t b = SZ_NSMALL; b-- > 0;) {
			mutex_postfork_parent(&a->bins[b].lock);
		}
	}
	mutex_postfork_parent(&arenas_lock);
}

void
arena_postfork_child(void) {
	for (unsigned i = 0; i < narenas_total; i++) {
		arena_t *a = arenas[i];
		if (a == NULL) {
			continue;
		}
		mutex_postfork_child(&a->lock);
		for (szind_t b = 0; b < SZ_NSMALL; b++) {
			mutex_postfork_child(&a->bins[b].lock);
		}
		a->nthreads = 0;
	}
	mutex_postfork_child(&arenas_lock);
}
