/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Thread caches (see tcache.h): capacities, fill, flush, garbage
 * collection, and the list of live caches used for stats.
 */
#include "alloc/internal/tcache.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/assert.h"
#include "alloc/internal/base.h"
#include "alloc/internal/message.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/prof.h"
#include "alloc/internal/timeline.h"
#include "alloc/internal/tsd.h"

bool opt_tcache = true;
size_t opt_lg_tcache_max = 15;
unsigned tcache_nhbins;
size_t tcache_maxclass;
uint8_t tcache_size2pc_tab[SZ_LOOKUP_MAXCLASS + 1];
uint8_t tcache_big2pc_tab[TCACHE_BIG_TAB ? TCACHE_BIG_NENTRIES : 1];
uintptr_t tcache_key;

_Static_assert(TCACHE_NBINS_MAX <= UINT8_MAX + 1, "bin indexes must fit a byte");

/* Full capacity per class, and the slots of one cache's stack block:
 * every stack a bin can have in its life (tcache_bin_grow), each with the
 * NULL slot after it. */
static uint32_t tcache_cap[SZ_NPAGED];
static size_t tcache_total_slots;
/* Slots at the start of the block that hold the first stacks of every
 * bin; the rest of the block is handed out as bins grow. */
static size_t tcache_start_slots;

/* Capacity bounds: a small bin holds twice a run's regions, within these
 * bounds; a large bin a fixed number. */
#define TCACHE_NSLOTS_SMALL_MIN 20
#define TCACHE_NSLOTS_SMALL_MAX 200
#define TCACHE_NSLOTS_LARGE     20
/* Capacity of a bin's first stack (or its full capacity, if smaller), for
 * every class. Smaller first stacks for the classes above 2 KiB (a first
 * fill within 8 KiB) were tried and dropped: growing strings (bench
 * realloc) then sent every freed 4-32 KiB block back to the arena and
 * peaked 11 MiB (55 %) higher, for nothing measurable elsewhere. */
#define TCACHE_NSLOTS_START 8
/*
 * Small classes from this size up (4-14 KiB with 4 KiB pages) are filled
 * one object at a time while the thread allocates them now and then: fewer
 * than TCACHE_FILL_ONE_BUSY requests between two GC looks at the bin
 * (one look every tcache_nhbins GC steps, some ten thousand allocations).
 * A fill of several took most of a run (these runs hold four regions,
 * arena_bin_boot), and every object taken ahead is several KiB a cache
 * holds: in a producer/consumer pair those objects were a good part of the
 * resident memory beyond the program's (doc/design.md, "Fixed
 * footprint"). A thread that allocates one of these classes often (about
 * one in 160 of its allocations or more) fills it in batches as the other
 * classes: fills of one always cost a program doing that (bench/xfree) a
 * quarter more instructions. GC looks at a bin only once per rotation, so
 * a thread that has just started (mstress: short-lived threads that
 * allocate these classes one time in eight) would fill one object per
 * request all its life: so a bin also goes to batch fills once it made
 * TCACHE_FILL_ONE_RUN fills of one in a row, each after the first in the
 * same GC step as the fill before it (tcache_fill; the constants are in
 * tcache.h). lg_fill_div holds TCACHE_LG_FILL_ONE plus that count while the
 * bin fills one object at a time (a stack holds under 256 objects, so any
 * shift of 8 or more makes the fill 1).
 */
#define TCACHE_FILL_ONE_MIN PAGE
/* A refill grows the bin's stack when it comes within this many GC steps
 * (about TCACHE_GC_INTERVAL of the thread's cached allocations each) of
 * the bin's previous fill. */
#define TCACHE_GROW_STEPS 2

/* Whether class ind is filled one object at a time while it is not busy
 * (TCACHE_FILL_ONE_MIN). */
static bool
tcache_fills_one(szind_t ind) {
	return ind < SZ_NSMALL && sz_index2size(ind) >= TCACHE_FILL_ONE_MIN;
}

/* The capacity bin ind has after `cap`: double, up to the full one. */
static uint32_t
tcache_cap_next(szind_t ind, uint32_t cap) {
	return 2 * cap < tcache_cap[ind] ? 2 * cap : tcache_cap[ind];
}

/* The capacity of bin ind's first stack. */
static uint32_t
tcache_cap_start(szind_t ind) {
	return tcache_cap[ind] < TCACHE_NSLOTS_START ? tcache_cap[ind] : TCACHE_NSLOTS_START;
}

/* Protects the list of live caches. Lock order: after init_lock, before
 * any arena lock (see mutex.h). */
static mutex_t tcaches_lock = MUTEX_INITIALIZER;
static tcache_t *tcaches_head;

/*
 * A secret the program cannot guess, so its own data rarely matches it:
 * getrandom(2) (it never blocks once the kernel's pool is ready, and start-up
 * must not wait for it), else the clock and addresses that ASLR moves,
 * mixed. Never zero: popped objects hold zero.
 */
static uintptr_t
tcache_key_make(void) {
	uint64_t key = 0;
	if (getrandom(&key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		key = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)&key ^
		      ((uintptr_t)&tcache_key << 16);
		/* splitmix64's finaliser spreads the bits. */
		key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9u;
		key = (key ^ (key >> 27)) * 0x94d049bb133111ebu;
		key ^= key >> 31;
	}
	return key != 0 ? (uintptr_t)key : (uintptr_t)0x9e3779b97f4a7c15u;
}

uintptr_t
tcache_align_mask(szind_t ind) {
	if (ind >= SZ_NSMALL) {
		return PAGE_MASK;
	}
	size_t size = sz_index2size(ind);
	return is_pow2(size) ? size - 1 : UINTPTR_MAX;
}

uint32_t
tcache_region_magic(szind_t ind) {
	if (sizeof(arena_pbias_t) == 1) {
		/* 4 KiB pages: the test is free's only one (alloc.c). A
		 * large object starts on a page, and every page's bias is a
		 * multiple of the page size, stale or not (arena.h). */
		return arena_region_magic(ind >= SZ_NSMALL ? PAGE : sz_index2size(ind));
	}
	/* Where the mask is exact, what it rejects stays rejected. */
	if (tcache_align_mask(ind) != UINTPTR_MAX) {
		return 0;
	}
	return arena_region_magic(sz_index2size(ind));
}

void
tcache_boot(void) {
	/* Where free's hit path uses the thread-state offset as the key
	 * (tsd.h), so must everything else; it is never zero (the thread
	 * pointer is the end of the static TLS blocks, not one of them). */
	tcache_key = TSD_KEY_IS_OFFSET ? tsd_fs_key() : tcache_key_make();
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
	for (size_t size = 0; size <= SZ_LOOKUP_MAXCLASS; size++) {
		tcache_size2pc_tab[size] = (uint8_t)tcache_pc(sz_size2index(size));
	}
	for (size_t i = SZ_LOOKUP_MAXCLASS >> TCACHE_BIG_LG_STEP;
	     TCACHE_BIG_TAB && i < TCACHE_BIG_NENTRIES; i++) {
		/* The largest size of entry i: (i + 1) KiB. */
		size_t size = (i + 1) << TCACHE_BIG_LG_STEP;
		tcache_big2pc_tab[i] = (uint8_t)tcache_pc(sz_size2index(size));
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
	}
	/* The first stacks, then room for every stack the bins grow to. */
	tcache_start_slots = 0;
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		if (tcache_cap[i] != 0) {
			tcache_start_slots += tcache_cap_start(i) + 1;
		}
	}
	tcache_total_slots = tcache_start_slots;
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		for (uint32_t c = tcache_cap_start(i); c < tcache_cap[i];) {
			c = tcache_cap_next(i, c);
			tcache_total_slots += c + 1;
		}
	}
}

unsigned
tcache_cap_max(szind_t ind) {
	return ind < SZ_NPAGED ? tcache_cap[ind] : 0;
}

/*
 * Stack blocks. A cache starts with one block holding every bin's first
 * stack (tcache_start_slots, about 3.5 KiB: a small region), and takes more
 * as its bins grow (tcache_bin_grow): each further block is twice the size
 * of the one before, at least the stack it is taken for and at most what the
 * bins can still grow by (so a thread that grows every bin to its full
 * capacity holds at most about twice the slots it needs), and starts with
 * two header slots: the previous further block and its own size class. A
 * thread that allocates in a few classes now and then holds one small block
 * instead of a reservation of every stack every bin could go through (56
 * KiB, a large run per thread, whose pages, when laid on dirty ones, stayed
 * resident and out of the bins' reach).
 */
#define TCACHE_BLOCK_HEADER 2

/* The size class of a block of at least `slots` slots (at least a
 * pointer's worth). */
static szind_t
tcache_block_szind(size_t slots) {
	return sz_size2index((slots != 0 ? slots : 1) * sizeof(void *));
}

/* A block of size class ind from `arena`'s home (see tcache_init), not
 * zeroed; NULL when memory is short. */
static void **
tcache_block_alloc(const tcache_t *t, szind_t ind) {
	arena_t *home = t->arena->ind < narenas_auto ? t->arena : arena_get(0);
	return home != NULL ? arena_malloc_paged(home, ind) : NULL;
}

/* Makes room for a stack of `slots` slots (its NULL slot included) at
 * t->grow_next, taking a further block when the current one is short;
 * false when memory is short. */
static bool
tcache_block_reserve(tcache_t *t, size_t slots) {
	if (t->grow_next + slots <= t->grow_end) {
		return true;
	}
	szind_t last = t->more != NULL ? (szind_t)(uintptr_t)t->more[1]
	                               : tcache_block_szind(tcache_start_slots);
	size_t want = 2 * (sz_index2size(last) / sizeof(void *));
	size_t left = tcache_total_slots - tcache_start_slots - t->grown_slots;
	want = want < left ? want : left;
	want = want > slots ? want : slots;
	szind_t ind = tcache_block_szind(want + TCACHE_BLOCK_HEADER);
	void **block = tcache_block_alloc(t, ind);
	if (block == NULL) {
		return false;
	}
	block[0] = t->more;
	block[1] = (void *)(uintptr_t)ind;
	t->more = block;
	t->grow_next = block + TCACHE_BLOCK_HEADER;
	t->grow_end = block + sz_index2size(ind) / sizeof(void *);
	return true;
}

/* Leaves bin pc missing on both paths (every pointer NULL, capacity 0). */
static void
tcache_bin_disable(tcache_t *t, unsigned pc) {
	t->head[pc] = NULL;
	t->low_water[pc] = NULL;
	t->full[pc] = NULL;
	t->empty[pc] = NULL;
	TCACHE_COUNTER_SET(t->ticks[pc], 0);
	TCACHE_COUNTER_SET(t->period[pc], 0);
	t->gc_left[pc] = 0;
	t->sample_left[pc] = 0;
	t->usize[pc] = 0;
	t->region_magic[pc] = 0;
	t->align_mask[pc] = 0;
	TCACHE_COUNTER_SET(t->nrequests_base[pc], 0);
	TCACHE_COUNTER_SET(t->nrequests_merged[pc], 0);
	t->lg_fill_div[pc] = 0;
	TCACHE_COUNTER_SET(t->ncached_max[pc], 0);
	t->full_nrequests[pc] = UINT32_MAX;
	t->full_nflushed[pc] = 0;
}

_Static_assert(!ALLOC_CONFIG_PROF || PCLASS_SAMPLED < TCACHE_NBINS_MAX,
               "the sampled objects' page-map class needs a bin that always misses");

/* Starts bin pc's next tick period: up to its next GC step or sampled
 * allocation, whichever comes first. */
static void
tcache_period_start(tcache_t *t, unsigned pc) {
	int64_t next = t->gc_left[pc];
	if (config_prof && t->sample_left[pc] != 0 && t->sample_left[pc] < next) {
		next = t->sample_left[pc];
	}
	TCACHE_COUNTER_SET(t->period[pc], next - 1);
	TCACHE_COUNTER_SET(t->ticks[pc], next - 1);
}

/* Gives the further blocks back (their stacks must be out of use). */
static void
tcache_blocks_free_more(tcache_t *t) {
	void **more = t->more;
	t->more = NULL;
	while (more != NULL) {
		void **prev = more[0];
		arena_dalloc_paged(more, (szind_t)(uintptr_t)more[1]);
		more = prev;
	}
}

/* Puts every cached bin, empty, on its first stack in the first block
 * (one after the other, each followed by its NULL slot), and gives the
 * further blocks back: the state tcache_init leaves, which tcache_flush
 * returns to. */
static void
tcache_first_stacks(tcache_t *t) {
	void **stacks = t->stacks;
	size_t off = 0;
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		unsigned pc = tcache_pc(i);
		if (tcache_cap[i] == 0) {
			continue;
		}
		assert_internal(t->head[pc] == t->empty[pc]);
		uint32_t cap = tcache_cap_start(i);
		t->full[pc] = stacks + off;
		t->empty[pc] = stacks + off + cap;
		*t->empty[pc] = NULL;
		t->head[pc] = t->empty[pc];
		t->low_water[pc] = t->empty[pc];
		TCACHE_COUNTER_SET(t->ncached_max[pc], (uint16_t)cap);
		off += cap + 1;
	}
	assert_internal(off == tcache_start_slots);
	/* What the first block has beyond the first stacks is the first room
	 * to grow into. */
	t->grow_next = stacks + off;
	t->grow_end = stacks + sz_index2size(tcache_block_szind(off)) / sizeof(void *);
	t->grown_slots = 0;
	tcache_blocks_free_more(t);
}

bool
tcache_init(tcache_t *t, arena_t *arena) {
	/* opt.tcache decides only whether threads get a cache by default
	 * (tsd_setup); thread.tcache.enabled and tcache.create work anyway. */
	if (!config_tcache || tcache_total_slots == 0) {
		return false;
	}
	/* The stacks come from an automatic arena: arena.<i>.reset discards
	 * all the memory of an arena made by arenas.extend, and must not take
	 * the stacks of a cache that outlives it (a cache keeps working after
	 * its arena is reset). Not zeroed: only the NULL slot after each stack
	 * must be, and it is written when the stack is set up here or in
	 * tcache_bin_grow; zeroing the block would touch every page of it
	 * (a recycled run is not known to be zero), where a thread touches
	 * only the stacks it uses. */
	t->arena = arena;
	void **stacks = tcache_block_alloc(t, tcache_block_szind(tcache_start_slots));
	if (stacks == NULL) {
		return true;
	}
	t->stacks = stacks;
	tcache_bin_disable(t, PCLASS_NONE);
	if (config_prof) {
		tcache_bin_disable(t, PCLASS_SAMPLED);
		t->prng = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ULL;
	}
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		unsigned pc = tcache_pc(i);
		if (tcache_cap[i] == 0) {
			tcache_bin_disable(t, pc);
			continue;
		}
		t->usize[pc] = sz_index2size(i);
		t->region_magic[pc] = tcache_region_magic(i);
		t->align_mask[pc] = tcache_align_mask(i);
		t->gc_left[pc] = TCACHE_GC_INTERVAL + 1;
		t->sample_left[pc] = 0;
		if (config_prof && prof_enabled) {
			t->sample_left[pc] = prof_bin_gap(&t->prng, t->usize[pc]);
		}
		tcache_period_start(t, pc);
		TCACHE_COUNTER_SET(t->nrequests_base[pc], 0);
		TCACHE_COUNTER_SET(t->nrequests_merged[pc], 0);
		t->lg_fill_div[pc] = tcache_fills_one(i) ? TCACHE_LG_FILL_ONE : 1;
		t->gc_nrequests[pc] = 0;
		t->full_nrequests[pc] = UINT32_MAX;
		t->full_nflushed[pc] = 0;
	}
	t->more = NULL;
	tcache_first_stacks(t);
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

bool
tcache_bin_grow(tcache_t *t, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	uint32_t cap = t->ncached_max[pc];
	if (cap == 0 || cap >= tcache_cap[ind]) {
		return false;
	}
	cap = tcache_cap_next(ind, cap);
	/* Every capacity a bin goes through is counted in
	 * tcache_total_slots (tcache_boot), and a bin only grows: the
	 * blocks never need more. */
	if (!tcache_block_reserve(t, cap + 1)) {
		return false;
	}
	void **empty = t->grow_next + cap;
	t->grow_next = empty + 1;
	t->grown_slots += cap + 1;
	assert_internal(t->grown_slots <= tcache_total_slots - tcache_start_slots);
	*empty = NULL;
	/* The cached objects keep their order and their distance from the
	 * bottom of the stack, and so does the low-water mark. */
	unsigned ncached = tcache_ncached(t, ind);
	unsigned low = (unsigned)(t->empty[pc] - t->low_water[pc]);
	memcpy(empty - ncached, t->head[pc], ncached * sizeof(void *));
	t->head[pc] = empty - ncached;
	t->low_water[pc] = empty - low;
	t->empty[pc] = empty;
	t->full[pc] = empty - cap;
	TCACHE_COUNTER_SET(t->ncached_max[pc], (uint16_t)cap);
	return true;
}

/* Returns bin `ind`'s oldest objects (those nearest `empty`) to their
 * arenas, keeping the `rem` most recently freed. */
static void
tcache_bin_flush(tcache_t *t, szind_t ind, unsigned rem) {
	unsigned pc = tcache_pc(ind);
	unsigned ncached = tcache_ncached(t, ind);
	assert_internal(rem <= ncached);
	unsigned n = ncached - rem;
	if (n == 0) {
		return;
	}
	void **oldest = t->empty[pc] - n;
	unsigned left = n;
	uint64_t total = tcache_nrequests(t, ind);
	uint64_t nrequests = total - t->nrequests_merged[pc];
	TCACHE_COUNTER_SET(t->nrequests_merged[pc], total);
	/* The thread's own arena (the cache's, for a thread not set up):
	 * objects of any other are handed over without a lock
	 * (arena_bin_hand_over, arena_large_hand_over). */
	const arena_t *home = tsd_get()->arena;
	home = home != NULL ? home : t->arena;
	while (left != 0) {
		bool own = arena_chunk_of(oldest[0])->arena == home;
		if (ind < SZ_NSMALL) {
			left = own ? arena_bin_flush(oldest, left, ind, nrequests)
			           : arena_bin_hand_over(oldest, left, ind, nrequests);
		} else {
			left = own ? arena_large_flush(oldest, left, ind, nrequests)
			           : arena_large_hand_over(oldest, left, ind, nrequests);
		}
		nrequests = 0;
	}
	/* Slide the kept objects to the bottom of the stack. */
	memmove(t->empty[pc] - rem, t->head[pc], rem * sizeof(void *));
	t->head[pc] = t->empty[pc] - rem;
	if (t->low_water[pc] < t->head[pc]) {
		t->low_water[pc] = t->head[pc];
	}
}

/* Returns every cached object to its arena. */
static void
tcache_flush_bins(tcache_t *t) {
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		if (tcache_caches(t, i)) {
			tcache_bin_flush(t, i, 0);
		}
	}
}

void
tcache_flush(tcache_t *t) {
	tcache_flush_bins(t);
	/* The stacks go back to their first size, and the blocks the bins
	 * grew into to the arena: a flush gives back all the memory a cache
	 * holds beyond its first block (thread.tcache.flush, malloc_trim). */
	if (t->grown_slots != 0) {
		tcache_first_stacks(t);
	}
}

void
tcache_destroy(tcache_t *t) {
	if (t->stacks == NULL) {
		return;
	}
	/* The bins are disabled below: no need to put them back on their
	 * first stacks as tcache_flush does. */
	tcache_flush_bins(t);
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
	for (unsigned pc = 0; pc < TCACHE_NBINS_MAX; pc++) {
		tcache_bin_disable(t, pc);
	}
	tcache_blocks_free_more(t);
	t->grown_slots = 0;
	t->stacks = NULL;
	t->grow_next = NULL;
	t->grow_end = NULL;
	arena_dalloc_paged(stacks, tcache_block_szind(tcache_start_slots));
}

/* Bin events tcache_count_request reports. */
#define TCACHE_EVENT_GC     0x1u
#define TCACHE_EVENT_SAMPLE 0x2u

/* Advances bin pc's sampling countdown by the n allocations of the period
 * that ended; returns TCACHE_EVENT_SAMPLE when the last one is sampled.
 * Draws the next gap while the thread samples. */
static unsigned
tcache_sample_advance(tcache_t *t, unsigned pc, int64_t n) {
	unsigned events = 0;
	int64_t left = t->sample_left[pc];
	if (left != 0 && (left -= n) <= 0) {
		events = TCACHE_EVENT_SAMPLE;
		left = 0;
	}
	if (left == 0) {
		left = prof_bin_gap(&t->prng, t->usize[pc]);
	}
	t->sample_left[pc] = left;
	return events;
}

/* Counts a request of bin pc. Returns the events due when the bin's tick
 * period ended with it, else 0. A negative tick means the hit path counted
 * the request already (and its tick fired). */
ALWAYS_INLINE unsigned
tcache_count_request(tcache_t *t, unsigned pc) {
	int64_t ticks = t->ticks[pc];
	if (ticks >= 0 && --ticks >= 0) {
		TCACHE_COUNTER_SET(t->ticks[pc], ticks);
		return 0;
	}
	/* The period's allocations, this one included (ticks is -1). */
	int64_t n = t->period[pc] - ticks;
	TCACHE_COUNTER_SET(t->nrequests_base[pc], t->nrequests_base[pc] + (uint64_t)n);
	unsigned events = 0;
	t->gc_left[pc] -= n;
	if (t->gc_left[pc] <= 0) {
		events |= TCACHE_EVENT_GC;
		t->gc_left[pc] = TCACHE_GC_INTERVAL + 1;
	}
	if (config_prof && unlikely(prof_enabled)) {
		events |= tcache_sample_advance(t, pc, n);
	}
	tcache_period_start(t, pc);
	return events;
}

/* Pops the next object of bin pc, which must hold one. */
static void *
tcache_pop(tcache_t *t, unsigned pc) {
	if (t->head[pc] == t->low_water[pc]) {
		/* A new low-water mark. */
		t->low_water[pc]++;
	}
	void *ret = *t->head[pc]++;
	*tcache_key_slot(ret) = 0;
	return ret;
}

/* Fills empty small bin ind from `arena` and pops; NULL when the arena has
 * no memory. */
static void *
tcache_fill(tcache_t *t, arena_t *arena, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	if (tcache_nrequests(t, ind) != 0 && t->gc_steps - t->fill_step[pc] <= TCACHE_GROW_STEPS) {
		/* The bin ran through its last fill quickly, compared with
		 * the thread's other allocations: its stack grows (a no-op at
		 * full capacity). A class the thread uses now and then keeps
		 * a small stack and small fills. */
		tcache_bin_grow(t, ind);
	}
	if (t->lg_fill_div[pc] >= TCACHE_LG_FILL_ONE) {
		/* Filled one object at a time: a bin that misses again and
		 * again within one GC step is busy now, whatever GC last saw
		 * (a thread that just started: its bins have not been
		 * looked at yet). lg_fill_div counts the bin's fills in a
		 * row within a step; the one after TCACHE_FILL_ONE_RUN of
		 * them takes a batch, and so do the next ones until GC's
		 * look finds the bin idle. */
		if (tcache_nrequests(t, ind) == 0 || t->gc_steps != t->fill_step[pc]) {
			t->lg_fill_div[pc] = TCACHE_LG_FILL_ONE;
		} else if (++t->lg_fill_div[pc] == TCACHE_LG_FILL_ONE + TCACHE_FILL_ONE_RUN) {
			t->lg_fill_div[pc] = 1;
		}
	}
	t->fill_step[pc] = t->gc_steps;
	unsigned n = t->ncached_max[pc] >> t->lg_fill_div[pc];
	if (n == 0) {
		n = 1;
	}
	/* The arena hands regions out in ascending address order; placing
	 * them so the lowest is popped first keeps consecutive allocations
	 * adjacent. */
	void **dst = t->empty[pc] - n;
	/* The thread allocates in this class again: the whole stack is the
	 * bin's (tcache_dalloc). */
	t->full[pc] = t->empty[pc] - t->ncached_max[pc];
	unsigned got = arena_bin_fill(arena, ind, dst, n);
	if (got == 0) {
		return NULL;
	}
	if (got < n) {
		memmove(t->empty[pc] - got, dst, got * sizeof(void *));
	}
	t->head[pc] = t->empty[pc] - got;
	void *ret = *t->head[pc]++;
	/* A region that was cached and flushed before still holds the key. */
	*tcache_key_slot(ret) = 0;
	/* The bin ran empty: that is its low-water mark until GC looks. */
	t->low_water[pc] = t->empty[pc];
	return ret;
}

void *
tcache_alloc(tcache_t *t, arena_t *arena, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	assert_internal(t->ncached_max[pc] != 0);
	void *ret;
	if (t->head[pc] != t->empty[pc]) {
		ret = tcache_pop(t, pc);
	} else if (ind >= SZ_NSMALL) {
		/* Large classes fill only through frees: a miss takes one
		 * object, since a batch of large runs is a lot of memory.
		 * The arena counts the request, so the cache does not. (An
		 * empty bin misses on head == low_water, before the hit
		 * path's tick, so nothing was counted yet.) While the thread
		 * samples, the miss still advances the bin's countdowns: it
		 * is counted, and taken back out of the bin's requests. */
		if (config_prof && prof_enabled && prof_sampling()) {
			TCACHE_COUNTER_SET(t->nrequests_base[pc], t->nrequests_base[pc] - 1);
			unsigned events = tcache_count_request(t, pc);
			if (events & TCACHE_EVENT_GC) {
				tcache_gc_step(t);
			}
			if (events & TCACHE_EVENT_SAMPLE) {
				return prof_alloc_sampled(arena, ind, 0, false);
			}
		}
		void *large = arena_malloc_large(arena, ind, PAGE, false);
		if (large != NULL) {
			/* A run that was cached and flushed before may still
			 * hold the key: a free must not take it for cached. */
			*tcache_key_slot(large) = 0;
		}
		return large;
	} else {
		ret = tcache_fill(t, arena, ind);
		if (ret == NULL) {
			return NULL;
		}
	}
	unsigned events = tcache_count_request(t, pc);
	if (config_prof && unlikely(events & TCACHE_EVENT_SAMPLE)) {
		/* Hand out a sampled object instead; the one popped goes
		 * back on top of the stack it came from, marked as cached
		 * again (tcache.h, "Bad frees"). */
		*tcache_key_slot(ret) = tcache_key;
		*--t->head[pc] = ret;
		ret = prof_alloc_sampled(arena, ind, 0, false);
	}
	if (events & TCACHE_EVENT_GC) {
		tcache_gc_step(t);
	}
	return ret;
}

/*
 * A free found bin ind at its limit (head == full). A bin that served
 * allocations since its last time here keeps the newer half of a whole
 * stack, as jemalloc's do. So does a bin that only took frees since then
 * as long as what it flushed since its last allocation, and a stack more,
 * is no more than the requests it ever served: the thread's own objects
 * coming back in a burst (a short-lived thread frees what it allocated
 * before it exits; halving the limit flushed such a bin every few frees).
 * Past that, or with no requests at all, the bin takes back objects other
 * threads allocated (the consumer of a producer/consumer pair: every
 * object it caches is one the producer cannot reuse, so it only holds
 * memory): it gives back everything, the object being freed too once the
 * limit is below the whole stack (returns true: the caller does not cache
 * it), and halves its limit, down to an eighth of the stack
 * (TCACHE_FREE_ONLY_MIN: one object in the classes of a page and more); the
 * first fill gives the whole stack back (tcache_fill). The free hit path
 * still tests head == full only: the limit costs it nothing.
 */
static bool
tcache_full(tcache_t *t, szind_t ind, void *ptr) {
	unsigned pc = tcache_pc(ind);
	uint64_t nrequests = tcache_nrequests(t, ind);
	/* Below its full capacity the bin grows instead (stacks sized to
	 * use, tcache_bin_grow); a bin that never served an allocation (a
	 * consumer's) only up to an eighth of it, the least the limit below
	 * goes down to: what it caches is pure overhead. */
	if ((nrequests != 0 || t->ncached_max[pc] < tcache_cap[ind] / 8) &&
	    tcache_bin_grow(t, ind)) {
		return false;
	}
	unsigned max = t->ncached_max[pc];
	unsigned limit = (unsigned)(t->empty[pc] - t->full[pc]);
	bool allocated = (uint32_t)nrequests != t->full_nrequests[pc];
	if (allocated) {
		t->full_nrequests[pc] = (uint32_t)nrequests;
		t->full_nflushed[pc] = 0;
	}
	/* Only frees since then, but fewer than the allocations the bin ever
	 * served: the thread's own objects coming back, not a consumer's. */
	if (allocated || (limit == max && (uint64_t)t->full_nflushed[pc] + limit <= nrequests)) {
		t->full[pc] = t->empty[pc] - max;
		if (limit == max) {
			tcache_bin_flush(t, ind, max / 2);
			uint32_t nflushed = t->full_nflushed[pc] + (max - max / 2);
			t->full_nflushed[pc] =
			    nflushed >= t->full_nflushed[pc] ? nflushed : UINT32_MAX;
		}
		return false;
	}
	/* The object being freed goes back with the others when the stack
	 * has room for it below the limit (it has, once the limit came down):
	 * the bin is then empty, so it holds 0 to limit objects between two
	 * flushes instead of 1 to limit, and flushes once per limit + 1
	 * frees instead of once per limit. It gets the key as a push would:
	 * a second free of it then leaves the hit path for the double-free
	 * check, as for every object flushed from a cache (tcache.h). */
	bool with_ptr = t->head[pc] != t->empty[pc] - max;
	if (with_ptr) {
		*tcache_key_slot(ptr) = tcache_key;
		*--t->head[pc] = ptr;
	}
	tcache_bin_flush(t, ind, 0);
	/* An eighth of the full capacity (of the current one, if smaller);
	 * one object for the classes of a page and more (TCACHE_FREE_ONLY_MIN). */
	unsigned floor = tcache_cap[ind] / 8 < max ? tcache_cap[ind] / 8 : max;
	if (floor == 0 || sz_index2size(ind) >= TCACHE_FREE_ONLY_MIN) {
		floor = 1;
	}
	limit = limit / 2 > floor ? limit / 2 : floor;
	t->full[pc] = t->empty[pc] - limit;
	return with_ptr;
}

COLD NOINLINE static void
tcache_report_double_free(const void *ptr) {
	msg_fatal("free(): double free of %p (it is already in the thread cache)", ptr);
}

void
tcache_check_double_free(tcache_t *t, void *ptr, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	for (void **p = t->head[pc]; p < t->empty[pc]; p++) {
		if (unlikely(*p == ptr)) {
			tcache_report_double_free(ptr);
		}
	}
	/* Flushed already: the region is free in its run (reports). */
	if (ind < SZ_NSMALL) {
		arena_check_small_in_use(ptr, ind);
	}
}

void
tcache_dalloc(tcache_t *t, void *ptr, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	assert_internal(t->ncached_max[pc] != 0);
	if (unlikely(*tcache_key_slot(ptr) == tcache_key) || config_debug) {
		/* Debug builds look through the whole stack every time. */
		tcache_check_double_free(t, ptr, ind);
	}
	if (t->head[pc] == t->full[pc] && tcache_full(t, ind, ptr)) {
		return;
	}
	*tcache_key_slot(ptr) = tcache_key;
	*--t->head[pc] = ptr;
}

void
tcache_gc_step(tcache_t *t) {
	t->gc_ticker = TCACHE_GC_INTERVAL;
	t->gc_steps++;
	/* The stats timeline hangs off this event too. */
	timeline_tick();
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
	if (!tcache_caches(t, ind)) {
		return;
	}
	unsigned pc = tcache_pc(ind);
	unsigned low = (unsigned)(t->empty[pc] - t->low_water[pc]);
	if (tcache_fills_one(ind)) {
		/* Busy since the last look: batch fills from the usual
		 * start; else back to fills of one. */
		uint32_t nrequests = (uint32_t)tcache_nrequests(t, ind);
		bool busy = nrequests - t->gc_nrequests[pc] >= TCACHE_FILL_ONE_BUSY;
		t->gc_nrequests[pc] = nrequests;
		if (!busy) {
			t->lg_fill_div[pc] = TCACHE_LG_FILL_ONE;
		} else if (t->lg_fill_div[pc] >= TCACHE_LG_FILL_ONE) {
			t->lg_fill_div[pc] = 1;
		}
	}
	if (low > 0) {
		/* Objects that stayed unused since the last look: flush three
		 * quarters of them, and fill less next time. */
		unsigned ncached = tcache_ncached(t, ind);
		tcache_bin_flush(t, ind, ncached - (low - low / 4));
		if ((t->ncached_max[pc] >> (t->lg_fill_div[pc] + 1)) >= 1) {
			t->lg_fill_div[pc]++;
		}
	} else if (t->lg_fill_div[pc] > 1 && t->lg_fill_div[pc] < TCACHE_LG_FILL_ONE) {
		/* Ran empty since the last look: fill more. */
		t->lg_fill_div[pc]--;
	}
	t->low_water[pc] = t->head[pc];
}

void
tcache_stats_add(arena_t *arena, uint64_t *nrequests) {
	mutex_lock(&tcaches_lock);
	for (tcache_t *t = tcaches_head; t != NULL; t = t->next) {
		if (t->arena != arena) {
			continue;
		}
		/* Another thread's counters, read while it runs: see
		 * TCACHE_COUNTER_SET. A count read mid-update is off by at
		 * most the requests in flight; it is never taken below what
		 * was merged. */
		for (szind_t i = 0; i < tcache_nhbins; i++) {
			unsigned pc = tcache_pc(i);
			if (__atomic_load_n(&t->ncached_max[pc], __ATOMIC_RELAXED) == 0) {
				continue;
			}
			int64_t ticks = __atomic_load_n(&t->ticks[pc], __ATOMIC_RELAXED);
			int64_t period = __atomic_load_n(&t->period[pc], __ATOMIC_RELAXED);
			uint64_t base = __atomic_load_n(&t->nrequests_base[pc], __ATOMIC_RELAXED);
			uint64_t merged =
			    __atomic_load_n(&t->nrequests_merged[pc], __ATOMIC_RELAXED);
			uint64_t total = base + (uint64_t)(period - ticks);
			if (total > merged) {
				nrequests[i] += total - merged;
			}
		}
	}
	mutex_unlock(&tcaches_lock);
}

/* Explicit caches by id, and recycled tcache_t structs; under tcaches_lock.
 * Stores to tcaches[] are atomic: tcaches_get reads it without the lock. A
 * slot holds TCACHES_RESERVED while tcaches_create sets its cache up
 * outside the lock, so two creations never take the same id. The table
 * (32 KiB) comes from base memory with the first tcache.create: a program
 * that makes none does not have it among its static data, where it would
 * push the variables every program touches onto more pages. */
static tcache_t **tcaches;
static tcache_t *tcaches_free_structs;
#define TCACHES_RESERVED ((tcache_t *)1)

bool
tcaches_create(arena_t *arena, unsigned *id) {
	mutex_lock(&tcaches_lock);
	if (tcaches == NULL) {
		tcache_t **table = base_alloc(TCACHES_MAX * sizeof(tcache_t *));
		if (table == NULL) {
			mutex_unlock(&tcaches_lock);
			return true;
		}
		/* Base memory is zeroed. */
		__atomic_store_n(&tcaches, table, __ATOMIC_RELEASE);
	}
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
	tcache_t **table = __atomic_load_n(&tcaches, __ATOMIC_ACQUIRE);
	if (id >= TCACHES_MAX || table == NULL) {
		return NULL;
	}
	tcache_t *t = __atomic_load_n(&table[id], __ATOMIC_ACQUIRE);
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
	tcache_t *t = tcaches != NULL ? tcaches[id] : NULL;
	if (t == NULL || t == TCACHES_RESERVED) {
		/* Not live, or still being created: not an id anyone was
		 * given. */
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
