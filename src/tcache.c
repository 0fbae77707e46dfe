/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Thread caches (see tcache.h): capacities, fill, flush, garbage
 * collection, and the list of live caches used for stats.
 */
#include "alloc/internal/tcache.h"

#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/assert.h"
#include "alloc/internal/base.h"
#include "alloc/internal/mutex.h"

bool opt_tcache = true;
size_t opt_lg_tcache_max = 15;
unsigned tcache_nhbins;
size_t tcache_maxclass;
uint16_t tcache_size2off_tab[SZ_LOOKUP_NENTRIES];

_Static_assert(TCACHE_NBINS_MAX * sizeof(tcache_bin_t) <= UINT16_MAX, "bin offsets must fit");

/* Capacity per class, and the sum (slots in one cache's stack block). */
static uint32_t tcache_cap[SZ_NPAGED];
static size_t tcache_total_slots;

/* Capacity bounds: a small bin holds twice a run's regions, within these
 * bounds; a large bin a fixed number. */
#define TCACHE_NSLOTS_SMALL_MIN 20
#define TCACHE_NSLOTS_SMALL_MAX 200
#define TCACHE_NSLOTS_LARGE     20

/* Protects the list of live caches. Lock order: after init_lock, before
 * any arena lock (see mutex.h). */
static mutex_t tcaches_lock = MUTEX_INITIALIZER;
static tcache_t *tcaches_head;

void
tcache_boot(void) {
	size_t max =
	    opt_lg_tcache_max >= sizeof(size_t) * 8 - 1 ? SIZE_MAX : (size_t)1 << opt_lg_tcache_max;
	if (max < SZ_SMALL_MAXCLASS) {
		max = SZ_SMALL_MAXCLASS;
	}
	if (max > SZ_LARGE_MAXCLASS) {
		max = SZ_LARGE_MAXCLASS;
	}
	/* The largest class not above max. */
	szind_t last = sz_size2index(max);
	if (sz_index2size(last) > max) {
		last--;
	}
	tcache_maxclass = sz_index2size(last);
	tcache_nhbins = last + 1;
	for (size_t i = 0; i < SZ_LOOKUP_NENTRIES; i++) {
		tcache_size2off_tab[i] =
		    (uint16_t)((sz_size2index_tab[i] + 1) * sizeof(tcache_bin_t));
	}
	tcache_total_slots = 0;
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		uint32_t cap = 0;
		if (i < SZ_NSMALL) {
			cap = 2 * bin_infos[i].nregs;
			if (cap < TCACHE_NSLOTS_SMALL_MIN) {
				cap = TCACHE_NSLOTS_SMALL_MIN;
			}
			if (cap > TCACHE_NSLOTS_SMALL_MAX) {
				cap = TCACHE_NSLOTS_SMALL_MAX;
			}
		} else if (i < tcache_nhbins) {
			cap = TCACHE_NSLOTS_LARGE;
		}
		tcache_cap[i] = cap;
		tcache_total_slots += cap;
	}
}

/* Stack block bytes, rounded to a large size class. */
static szind_t
tcache_stacks_szind(void) {
	size_t bytes = tcache_total_slots * sizeof(void *);
	if (bytes < SZ_LARGE_MINCLASS) {
		bytes = SZ_LARGE_MINCLASS;
	}
	return sz_size2index(bytes);
}

bool
tcache_init(tcache_t *t, arena_t *arena) {
	/* opt.tcache decides only whether threads get a cache by default
	 * (tsd_setup); thread.tcache.enabled and tcache.create work anyway. */
	if (!config_tcache || tcache_total_slots == 0) {
		return false;
	}
	void **stacks = arena_malloc_large(arena, tcache_stacks_szind(), PAGE, false);
	if (stacks == NULL) {
		return true;
	}
	t->stacks = stacks;
	t->arena = arena;
	size_t off = 0;
	memset(&t->bins[0], 0, sizeof(t->bins[0]));
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		tcache_bin_t *bin = tcache_bin(t, i);
		if (tcache_cap[i] == 0) {
			/* Never cached: every field NULL, so both tests miss. */
			memset(bin, 0, sizeof(*bin));
			continue;
		}
		bin->full = stacks + off;
		bin->empty = stacks + off + tcache_cap[i];
		bin->head = bin->empty;
		bin->low_water = bin->empty;
		bin->usize = sz_index2size(i);
		bin->nrequests = 0;
		bin->lg_fill_div = 1;
		bin->ncached_max = (uint16_t)tcache_cap[i];
		off += tcache_cap[i];
	}
	t->gc_ticker = TCACHE_GC_INTERVAL;
	t->gc_bin = 0;
	mutex_lock(&tcaches_lock);
	t->prev = NULL;
	t->next = tcaches_head;
	if (t->next != NULL) {
		t->next->prev = t;
	}
	tcaches_head = t;
	mutex_unlock(&tcaches_lock);
	return false;
}

/* Returns bin `ind`'s oldest objects (those nearest `empty`) to their
 * arenas, keeping the `rem` most recently freed. */
static void
tcache_bin_flush(tcache_t *t, szind_t ind, unsigned rem) {
	tcache_bin_t *bin = tcache_bin(t, ind);
	unsigned ncached = tcache_bin_ncached(bin);
	assert_internal(rem <= ncached);
	unsigned n = ncached - rem;
	if (n == 0) {
		return;
	}
	void **oldest = bin->empty - n;
	unsigned left = n;
	uint64_t nrequests = bin->nrequests;
	while (left != 0) {
		if (ind < SZ_NSMALL) {
			left = arena_bin_flush(oldest, left, ind, nrequests);
		} else {
			left = arena_large_flush(oldest, left, ind, nrequests);
		}
		nrequests = 0;
	}
	bin->nrequests = 0;
	/* Slide the kept objects to the bottom of the stack. */
	memmove(bin->empty - rem, bin->head, rem * sizeof(void *));
	bin->head = bin->empty - rem;
	if (bin->low_water < bin->head) {
		bin->low_water = bin->head;
	}
}

void
tcache_flush(tcache_t *t) {
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		if (tcache_bin(t, i)->ncached_max != 0) {
			tcache_bin_flush(t, i, 0);
		}
	}
}

void
tcache_destroy(tcache_t *t) {
	if (t->stacks == NULL) {
		return;
	}
	tcache_flush(t);
	mutex_lock(&tcaches_lock);
	if (t->prev != NULL) {
		t->prev->next = t->next;
	} else {
		tcaches_head = t->next;
	}
	if (t->next != NULL) {
		t->next->prev = t->prev;
	}
	mutex_unlock(&tcaches_lock);
	void *stacks = t->stacks;
	memset(t->bins, 0, sizeof(t->bins));
	t->stacks = NULL;
	arena_dalloc_large(stacks, tcache_stacks_szind());
}

void *
tcache_alloc_slow(tcache_t *t, arena_t *arena, szind_t ind) {
	tcache_bin_t *bin = tcache_bin(t, ind);
	assert_internal(bin->ncached_max != 0 && bin->head == bin->low_water);
	if (bin->head != bin->empty) {
		/* Not empty: a new low-water mark. */
		bin->low_water++;
		bin->nrequests++;
		return *bin->head++;
	}
	if (ind >= SZ_NSMALL) {
		/* Large classes fill only through frees: a miss takes one
		 * object, since a batch of large runs is a lot of memory.
		 * The arena counts the request. */
		return arena_malloc_large(arena, ind, PAGE, false);
	}
	unsigned n = bin->ncached_max >> bin->lg_fill_div;
	if (n == 0) {
		n = 1;
	}
	/* The arena hands regions out in ascending address order; placing
	 * them so the lowest is popped first keeps consecutive allocations
	 * adjacent. */
	void **dst = bin->empty - n;
	unsigned got = arena_bin_fill(arena, ind, dst, n);
	if (got == 0) {
		return NULL;
	}
	if (got < n) {
		memmove(bin->empty - got, dst, got * sizeof(void *));
	}
	bin->head = bin->empty - got;
	bin->nrequests++;
	void *ret = *bin->head++;
	/* The bin ran empty: that is its low-water mark until GC looks. */
	bin->low_water = bin->empty;
	return ret;
}

void
tcache_dalloc_flush(tcache_t *t, void *ptr, szind_t ind) {
	tcache_bin_t *bin = tcache_bin(t, ind);
	assert_internal(bin->head == bin->full);
	tcache_bin_flush(t, ind, bin->ncached_max / 2);
	*--bin->head = ptr;
}

void
tcache_gc_step(tcache_t *t) {
	t->gc_ticker = TCACHE_GC_INTERVAL;
	if (t->stacks == NULL) {
		return;
	}
	/* A thread served from its cache frees no pages itself; let its
	 * arena's decay advance on its behalf. */
	if (t->gc_bin == 0) {
		arena_decay_tick(t->arena);
	}
	szind_t ind = t->gc_bin;
	t->gc_bin = ind + 1 < tcache_nhbins ? ind + 1 : 0;
	tcache_bin_t *bin = tcache_bin(t, ind);
	if (bin->ncached_max == 0) {
		return;
	}
	unsigned low = (unsigned)(bin->empty - bin->low_water);
	if (low > 0) {
		/* Objects that stayed unused since the last look: flush three
		 * quarters of them, and fill less next time. */
		unsigned ncached = tcache_bin_ncached(bin);
		tcache_bin_flush(t, ind, ncached - (low - low / 4));
		if ((bin->ncached_max >> (bin->lg_fill_div + 1)) >= 1) {
			bin->lg_fill_div++;
		}
	} else if (bin->lg_fill_div > 1) {
		/* Ran empty since the last look: fill more. */
		bin->lg_fill_div--;
	}
	bin->low_water = bin->head;
}

void
tcache_stats_add(arena_t *arena, uint64_t *nrequests) {
	mutex_lock(&tcaches_lock);
	for (tcache_t *t = tcaches_head; t != NULL; t = t->next) {
		if (t->arena != arena) {
			continue;
		}
		/* Racy read of another thread's counter: 64-bit aligned loads
		 * do not tear, and the owner only adds to it or, under a bin
		 * lock after merging, zeroes it. */
		for (szind_t i = 0; i < tcache_nhbins; i++) {
			nrequests[i] +=
			    __atomic_load_n(&tcache_bin(t, i)->nrequests, __ATOMIC_RELAXED);
		}
	}
	mutex_unlock(&tcaches_lock);
}

/* Explicit caches by id, and recycled tcache_t structs; under tcaches_lock.
 * Stores to tcaches[] are atomic: tcaches_get reads it without the lock. A
 * slot holds TCACHES_RESERVED while tcaches_create sets its cache up
 * outside the lock, so two creations never take the same id. */
static tcache_t *tcaches[TCACHES_MAX];
static tcache_t *tcaches_free_structs;
#define TCACHES_RESERVED ((tcache_t *)1)

bool
tcaches_create(arena_t *arena, unsigned *id) {
	mutex_lock(&tcaches_lock);
	unsigned ind = 0;
	while (ind < TCACHES_MAX && tcaches[ind] != NULL) {
		ind++;
	}
	tcache_t *t = NULL;
	if (ind < TCACHES_MAX) {
		__atomic_store_n(&tcaches[ind], TCACHES_RESERVED, __ATOMIC_RELAXED);
		t = tcaches_free_structs;
		if (t != NULL) {
			tcaches_free_structs = t->next;
		} else {
			t = base_alloc(sizeof(tcache_t));
		}
	}
	if (t == NULL && ind < TCACHES_MAX) {
		__atomic_store_n(&tcaches[ind], NULL, __ATOMIC_RELAXED);
	}
	mutex_unlock(&tcaches_lock);
	if (t == NULL) {
		return true;
	}
	memset(t, 0, sizeof(*t));
	/* tcache_init takes tcaches_lock itself. */
	if (tcache_init(t, arena) || t->stacks == NULL) {
		mutex_lock(&tcaches_lock);
		__atomic_store_n(&tcaches[ind], NULL, __ATOMIC_RELAXED);
		t->next = tcaches_free_structs;
		tcaches_free_structs = t;
		mutex_unlock(&tcaches_lock);
		return true;
	}
	mutex_lock(&tcaches_lock);
	__atomic_store_n(&tcaches[ind], t, __ATOMIC_RELEASE);
	mutex_unlock(&tcaches_lock);
	*id = ind;
	return false;
}

tcache_t *
tcaches_get(unsigned id) {
	if (id >= TCACHES_MAX) {
		return NULL;
	}
	tcache_t *t = __atomic_load_n(&tcaches[id], __ATOMIC_ACQUIRE);
	return t != TCACHES_RESERVED ? t : NULL;
}

bool
tcaches_flush(unsigned id) {
	tcache_t *t = tcaches_get(id);
	if (t == NULL) {
		return true;
	}
	tcache_flush(t);
	return false;
}

bool
tcaches_destroy(unsigned id) {
	if (id >= TCACHES_MAX) {
		return true;
	}
	mutex_lock(&tcaches_lock);
	tcache_t *t = tcaches[id];
	if (t == TCACHES_RESERVED) {
		/* Still being created: not an id anyone was given. */
		t = NULL;
	} else {
		__atomic_store_n(&tcaches[id], NULL, __ATOMIC_RELAXED);
	}
	mutex_unlock(&tcaches_lock);
	if (t == NULL) {
		return true;
	}
	tcache_destroy(t);
	mutex_lock(&tcaches_lock);
	t->next = tcaches_free_structs;
	tcaches_free_structs = t;
	mutex_unlock(&tcaches_lock);
	return false;
}

void
tcache_prefork(void) {
	mutex_prefork(&tcaches_lock);
}

void
tcache_postfork_parent(void) {
	mutex_postfork_parent(&tcaches_lock);
}

void
tcache_postfork_child(void) {
	mutex_postfork_child(&tcaches_lock);
}
