/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Page runs (see arena_run.h): an arena's chunks, carved into runs of
 * pages, and the lists of its free runs.
 *
 * Free runs are maximal (a free run never touches another free run in the
 * same state, kept runs aside: below) and sit in arena->avail[dirty][c], where c is the largest
 * page-count class not above the run's length; a request for n pages
 * searches the lists from the smallest class >= n upwards, so any run it
 * finds is long enough. A free run is DIRTY when some of its pages may hold
 * data; clean runs read as zeros (fresh from the kernel or purged), which
 * lets calloc skip memset. Merging a clean run with a dirty one gives a
 * dirty run. A large object's run, when freed, may be kept apart instead
 * (MAP_KEEP: not merged with its free neighbours, nor they with it), so
 * that a request of its size class takes it whole; such runs merge again
 * when a request finds no dirty run long enough.
 *
 * Chunks. An arena maps a chunk when no free run is long enough. When a
 * chunk becomes entirely free it stays as the arena's spare if there is
 * none; otherwise it goes back to the arena's chunk cache. A chunk that
 * holds kept runs when it empties stays in the arena instead (counted in
 * arena->nempty), until a huge request needs the memory or the decay
 * purges (arena_release_empty). See doc/design.md, "Reuse by resident length".
 *
 * Everything here runs under arena->lock.
 */
#include "alloc/internal/arena_run.h"

#include <string.h>

#include "alloc/internal/assert.h"

/* Page-count classes (arena_run.h). psz_ceil[n] is the smallest class of at
 * least n pages, for 1 <= n <= CHUNK_NPAGES. */
uint8_t psz_floor[CHUNK_NPAGES + 1];
static uint8_t psz_ceil[CHUNK_NPAGES + 1];
unsigned psz_count;

_Static_assert(PSZ_MAX <= 255, "page classes must fit in a byte");
_Static_assert(SZ_NPAGED + 1 <= 255, "size classes + 1 in the page map must fit in a byte");

void
arena_run_boot(void) {
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

/* Writes the bookkeeping of a run at its first and last page. */
void
arena_map_set_run(arena_chunk_t *c, size_t pi, size_t npages, uint32_t flags) {
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

void
arena_avail_insert(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, uint32_t state) {
	uint32_t dirty = state & MAP_DIRTY;
	arena_map_set_run(c, pi, npages, MAP_FREE | (state & (MAP_STATE | MAP_KEEP)));
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
		if (npages < ARENA_HOLE_MAX_PAGES) {
			a->ndirty_holes += npages;
		}
		if (c->ndirty != 0) {
			dirty_list_unlink(a, c);
		}
		c->ndirty += npages;
		dirty_list_append(a, c);
	}
	if (state & MAP_MUZZY) {
		a->nmuzzy += npages;
		c->nmuzzy += npages;
	}
	if (state & MAP_KEEP) {
		a->nkeep++;
	}
}

void
arena_avail_remove(arena_t *a, arena_chunk_t *c, size_t pi) {
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
		if (npages < ARENA_HOLE_MAX_PAGES) {
			a->ndirty_holes -= npages;
		}
		c->ndirty -= npages;
		if (c->ndirty == 0) {
			dirty_list_unlink(a, c);
		}
	}
	if (bits & MAP_MUZZY) {
		a->nmuzzy -= npages;
		c->nmuzzy -= npages;
	}
	if (bits & MAP_KEEP) {
		a->nkeep--;
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
void
arena_chunk_register(arena_chunk_t *c, bool registered) {
	uint8_t value = c->arena->region != NULL ? ARENA_REGISTRY_HEAP : ARENA_REGISTRY_ARENA;
	arena_chunk_registry_set(c, registered ? value : 0);
}

static void arena_chunk_discard(arena_t *a, arena_chunk_t *c);

/* Under a->lock: the spare chunk and the cached spans go back to the
 * kernel (or the hooks). */
static bool
arena_release_locked(arena_t *a) {
	arena_release_empty(a);
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
		/* A private heap's memory is its own: nothing to take there. */
		arena_t *other = arena_sweepable(i);
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
	c->arena = a;
	arena_chunk_register(c, true);
	c->nfree_pages = CHUNK_RUN_MAX_PAGES;
	c->ndirty = 0;
	c->nmuzzy = 0;
	c->dirty_prev = NULL;
	c->dirty_next = NULL;
	c->prev = NULL;
	c->next = a->chunks_head;
	if (c->next != NULL) {
		c->next->prev = c;
	}
	a->chunks_head = c;
	if (!zeroed) {
		arena_pclass_clear(c, 0, CHUNK_NPAGES);
	}
	for (size_t i = 0; i < CHUNK_HEADER_PAGES; i++) {
		c->map[i] = MAP_HEADER;
	}
	arena_avail_insert(a, c, CHUNK_HEADER_PAGES, CHUNK_RUN_MAX_PAGES, zeroed ? 0 : MAP_DIRTY);
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
 * Under a->lock: merges the kept runs (MAP_KEEP) of chunk c with their
 * free neighbours, as ordinary free runs. Each maximal sequence of free
 * runs in the same dirty and muzzy state becomes one run, in one pass; the
 * chunk stays in the arena even when it is wholly free (it is in
 * a->nempty then), so it is still there for the caller's request.
 */
static void
arena_keep_release(arena_t *a, arena_chunk_t *c) {
	bool keeps = false;
	for (size_t pi = CHUNK_HEADER_PAGES; pi < CHUNK_NPAGES && !keeps;
	     pi += map_npages(c->map[pi])) {
		keeps = (c->map[pi] & (MAP_FREE | MAP_KEEP)) == (MAP_FREE | MAP_KEEP);
	}
	if (!keeps) {
		return;
	}
	/* The free run being gathered: [start, start + len) in `state`. */
	size_t start = 0;
	size_t len = 0;
	uint32_t state = 0;
	for (size_t pi = CHUNK_HEADER_PAGES; pi <= CHUNK_NPAGES;) {
		uint32_t bits = pi < CHUNK_NPAGES ? c->map[pi] : 0;
		size_t n = pi < CHUNK_NPAGES ? map_npages(bits) : 1;
		bool joins = (bits & MAP_FREE) && len != 0 &&
		             (bits & MAP_MERGE_STATE) == (state & MAP_MERGE_STATE);
		if (len != 0 && !joins) {
			/* Written at its first and last page, which are
			 * behind pi: nothing still to read is overwritten. */
			arena_avail_insert(a, c, start, len, state);
			len = 0;
		}
		if (bits & MAP_FREE) {
			arena_avail_remove(a, c, pi);
			if (len == 0) {
				start = pi;
				state = bits & MAP_STATE;
			}
			len += n;
			state |= bits & MAP_UNZEROED;
		}
		pi += n;
	}
}

void
arena_release_empty(arena_t *a) {
	for (arena_chunk_t *c = a->chunks_head; c != NULL && a->nempty != 0;) {
		arena_chunk_t *next = c->next;
		if (c->nfree_pages == CHUNK_RUN_MAX_PAGES && c != a->spare) {
			a->nempty--;
			arena_chunk_discard(a, c);
		}
		c = next;
	}
	a->nempty = 0;
}

/*
 * Under a->lock: a dirty free run of at least npages pages, merging kept
 * runs chunk by chunk (least recently dirtied first) until one is long
 * enough; NULL if none is even then.
 */
static page_misc_t *
avail_find_dirty(arena_t *a, size_t npages) {
	page_misc_t *m = avail_find(a, 1, npages);
	for (arena_chunk_t *c = a->dirty_head; m == NULL && c != NULL && a->nkeep != 0;) {
		/* Releasing moves c to the list's end. */
		arena_chunk_t *next = c->dirty_next;
		arena_keep_release(a, c);
		m = avail_find(a, 1, npages);
		c = next;
	}
	return m;
}

void
arena_run_insert_rest(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, uint32_t bits) {
	if (bits & MAP_KEEP) {
		/* Its free neighbours were kept apart from it. */
		arena_run_insert_free(a, c, pi, npages, bits & MAP_STATE);
	} else {
		arena_avail_insert(a, c, pi, npages, bits & MAP_STATE);
	}
}

/*
 * Under a->lock: takes npages pages from the start of the free run m (at
 * least that long), gives the rest back to the free lists, and marks the
 * run with `flags`. *resident: how many of its pages from the start may be
 * resident (0 for clean memory; for a kept run what its last object left).
 */
static void
arena_run_take(arena_t *a, page_misc_t *m, size_t npages, uint32_t flags, arena_chunk_t **cp,
               size_t *pip, bool *zeroed, size_t *resident) {
	arena_chunk_t *c;
	size_t pi;
	misc_of(&c, &pi, m);
	uint32_t bits = c->map[pi];
	size_t run_pages = map_npages(bits);
	assert_internal((bits & MAP_FREE) && run_pages >= npages);
	*resident = (bits & MAP_DIRTY) == 0 ? 0 : npages;
	if ((bits & MAP_KEEP) && c->misc[pi + 1].resident < npages) {
		*resident = c->misc[pi + 1].resident;
	}
	arena_avail_remove(a, c, pi);
	c->nfree_pages -= npages;
	/* The run's map first: merging the rest looks at its last page. */
	arena_map_set_run(c, pi, npages, flags);
	if (run_pages > npages) {
		arena_run_insert_rest(a, c, pi + npages, run_pages - npages, bits);
	}
	a->nactive += npages;
	arena_cactive_add(npages << LG_PAGE);
	if (c == a->spare) {
		a->spare = NULL;
	}
	*cp = c;
	*pip = pi;
	*zeroed = (bits & MAP_STATE) == 0;
}

static bool
arena_run_alloc_resident(arena_t *a, size_t npages, uint32_t flags, arena_chunk_t **cp, size_t *pip,
                         bool *zeroed, size_t *resident) {
	assert_internal(npages >= 1 && npages <= CHUNK_RUN_MAX_PAGES);
	/* Dirty runs first (no page faults, no new RSS), then clean ones,
	 * then a new chunk. */
	page_misc_t *m = avail_find_dirty(a, npages);
	if (m == NULL) {
		/* New resident pages: first give back as many unused dirty
		 * ones, if the arena holds too many (may drop the lock). */
		arena_grow_bound(a, npages, true);
		m = avail_find(a, 1, npages);
	}
	if (m == NULL) {
		m = avail_find(a, 0, npages);
	}
	if (m == NULL) {
		if (arena_chunk_new(a) == NULL) {
			return false;
		}
		m = &a->chunks_head->misc[CHUNK_HEADER_PAGES];
	}
	arena_run_take(a, m, npages, flags, cp, pip, zeroed, resident);
	return true;
}

/*
 * Takes a free run of at least npages pages, splits off the rest, and marks
 * the run with `flags` (MAP_SMALL or MAP_LARGE). Returns false when the
 * kernel refuses a new chunk. *zeroed tells whether the run reads as zeros.
 */
bool
arena_run_alloc(arena_t *a, size_t npages, uint32_t flags, arena_chunk_t **cp, size_t *pip,
                bool *zeroed) {
	size_t resident;
	return arena_run_alloc_resident(a, npages, flags, cp, pip, zeroed, &resident);
}

/* How many kept runs of a class arena_run_alloc_large looks at. */
#define KEEP_SCAN_MAX 16

bool
arena_run_alloc_large(arena_t *a, size_t npages, size_t used, arena_chunk_t **cp, size_t *pip,
                      bool *zeroed, size_t *resident) {
	if (a->nkeep != 0 && npages >= LARGE_KEEP_MIN_PAGES) {
		/* Runs of exactly npages pages are in the list of their class;
		 * the best one leaves the fewest pages to fault in or purge. */
		page_misc_t *best = NULL;
		size_t best_cost = SIZE_MAX;
		unsigned seen = 0;
		for (page_misc_t *m = a->avail[1][psz_floor[npages]];
		     m != NULL && seen < KEEP_SCAN_MAX && best_cost != 0;
		     m = m->link.next, seen++) {
			arena_chunk_t *c = arena_chunk_of(m);
			size_t pi = (size_t)(m - c->misc);
			uint32_t bits = c->map[pi];
			if ((bits & MAP_KEEP) == 0 || map_npages(bits) != npages) {
				continue;
			}
			size_t r = c->misc[pi + 1].resident;
			size_t cost = r >= used ? r - used : used - r;
			if (cost < best_cost) {
				best = m;
				best_cost = cost;
			}
		}
		if (best != NULL) {
			arena_run_take(a, best, npages, MAP_LARGE, cp, pip, zeroed, resident);
			return true;
		}
	}
	return arena_run_alloc_resident(a, npages, MAP_LARGE, cp, pip, zeroed, resident);
}

/* A chunk all of whose run pages are free (and in the avail lists, as one
 * or more runs: dirty and clean runs are kept apart). */
static void
arena_chunk_empty(arena_t *a, arena_chunk_t *c) {
	bool keeps = false;
	for (size_t pi = CHUNK_HEADER_PAGES; pi < CHUNK_NPAGES && !keeps;
	     pi += map_npages(c->map[pi])) {
		keeps = (c->map[pi] & MAP_KEEP) != 0;
	}
	if (keeps) {
		/* Its kept runs are there for requests of their classes;
		 * arena_release_empty gives it to the cache when huge
		 * requests need the memory. */
		a->nempty++;
		return;
	}
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
	 * ones touched, and they are tiny). Muzzy pages count as dirty here:
	 * the chunk cache has no muzzy stage, and its dirty decay is what
	 * will purge them for good. */
	bool dirty = c->ndirty != 0 || c->nmuzzy != 0;
	for (size_t pi = CHUNK_HEADER_PAGES; pi < CHUNK_NPAGES;) {
		size_t n = map_npages(c->map[pi]);
		arena_avail_remove(a, c, pi);
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
	chunk_dalloc_state(&a->chunks, c, CHUNK, dirty, false, true);
	if (config_stats) {
		a->stats.mapped_chunks--;
	}
}

/* Puts free pages [pi, pi+npages) in `state` (MAP_DIRTY, MAP_UNZEROED,
 * MAP_UNZEROED | MAP_MUZZY or neither, or MAP_DIRTY | MAP_KEEP) into the
 * free lists, merging with free neighbours in the same dirty and muzzy
 * state that are not kept apart; a merged run is unzeroed if any part is. */
void
arena_run_insert_free(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, uint32_t state) {
	/* A kept run merges with nothing; nothing merges with one. */
	uint32_t kind = state & (MAP_MERGE_STATE | MAP_KEEP);
	uint32_t left = c->map[pi - 1];
	if ((state & MAP_KEEP) == 0 && (left & MAP_FREE) &&
	    (left & (MAP_MERGE_STATE | MAP_KEEP)) == kind) {
		size_t ln = map_npages(left);
		arena_avail_remove(a, c, pi - ln);
		pi -= ln;
		npages += ln;
		state |= left & MAP_UNZEROED;
	}
	if ((state & MAP_KEEP) == 0 && pi + npages < CHUNK_NPAGES) {
		uint32_t right = c->map[pi + npages];
		if ((right & MAP_FREE) && (right & (MAP_MERGE_STATE | MAP_KEEP)) == kind) {
			arena_avail_remove(a, c, pi + npages);
			npages += map_npages(right);
			state |= right & MAP_UNZEROED;
		}
	}
	arena_avail_insert(a, c, pi, npages, state);
	if (c->nfree_pages == CHUNK_RUN_MAX_PAGES) {
		arena_chunk_empty(a, c);
	}
}

/* Returns the pages of an allocated run [pi, pi+npages) to the free
 * lists. */
void
arena_run_release(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, uint32_t state) {
	arena_pclass_clear(c, pi, npages);
	c->nfree_pages += npages;
	a->nactive -= npages;
	arena_cactive_sub(npages << LG_PAGE);
	arena_run_insert_free(a, c, pi, npages, state);
}

void
arena_run_dalloc(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages, bool dirty) {
	arena_run_release(a, c, pi, npages, dirty ? MAP_DIRTY : 0);
}

void
arena_run_dalloc_large(arena_t *a, arena_chunk_t *c, size_t pi, size_t npages) {
	if (npages < LARGE_KEEP_MIN_PAGES || !arena_purges(a)) {
		arena_run_dalloc(a, c, pi, npages, true);
		return;
	}
	arena_run_release(a, c, pi, npages, MAP_DIRTY | MAP_KEEP);
}
