/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Thread caches: per size class, a stack of free objects owned by one
 * thread, in front of the arenas.
 *
 * malloc pops from the stack of its class and free pushes onto it; neither
 * takes a lock or an atomic instruction. An empty stack is filled with a
 * batch from the thread's arena (one bin lock for the batch); a full one is
 * flushed, half of it, oldest objects first, each to the arena that owns it.
 *
 * A bin whose ncached_max is 0 always misses: that is the state of a fresh
 * (zeroed) thread, of classes above opt.lg_tcache_max, of the
 * PCLASS_NONE slot, and of every class when caching is off. So "not set up" and
 * "disabled" cost the hit path nothing.
 *
 * Garbage collection: every TCACHE_GC_INTERVAL allocations a bin serves
 * (and every TCACHE_GC_INTERVAL uncached allocations on the slow path), one
 * bin, the next in turn, is examined; objects that stayed unused since its last examination (its
 * low-water mark) are flushed, three quarters of them, and the bin fills
 * fewer next time. A bin that ran empty fills more. So a thread that stops
 * using a class hands its objects back, and idle threads hoard little.
 *
 * Stacks sized to use. A bin starts with a stack of TCACHE_NSLOTS_START
 * slots (its first fill takes half of that), all bins' first stacks packed
 * at the start of the cache's stack block. A bin that is filled again soon
 * after its last fill (within TCACHE_GROW_STEPS GC steps: the thread
 * allocates in this class often), or that a free finds at its limit, grows:
 * its objects move to a stack twice as large, up to its full capacity
 * (tcache_cap_max), taken from further blocks in the order bins grow,
 * each twice the size of the one before (tcache.c). A class the thread
 * allocates now and then keeps a small stack and fills of a few objects.
 * Only the slots written are ever touched, and blocks are taken as bins
 * grow, so a thread that uses a class a few times costs a few cached
 * objects and a few bytes of stack, not a batch of a hundred and a page
 * of slots; the stacks of the bins a thread does use are packed together.
 * ncached_max is the current capacity.
 */
#ifndef ALLOC_INTERNAL_TCACHE_H
#define ALLOC_INTERNAL_TCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/internal/config.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/util.h"

typedef struct arena_s arena_t;

/* Bins are indexed by page-map class (size class + 1, see arena.h), so
 * free indexes them with the byte it reads. Slot 0 (PCLASS_NONE) is never
 * cached: freeing an address where no object starts falls to the slow
 * path. Classes above opt.lg_tcache_max are never cached either. */
#define TCACHE_NBINS_MAX (SZ_NPAGED + 1 + ALLOC_CONFIG_PROF)
/* In --enable-prof builds one more slot, PCLASS_SAMPLED (arena.h): the
 * page-map class of sampled objects, whose bin is never set up, so their
 * frees miss the hit path (prof.h). */

/* Cached allocations of one class between two GC steps. */
#define TCACHE_GC_INTERVAL 256

/* The small classes of a page and more fill one object at a time while
 * they are not busy (tcache.c): busy is TCACHE_FILL_ONE_BUSY requests
 * between two GC looks at the bin, or TCACHE_FILL_ONE_RUN fills of one in a
 * row, each after the first in the same GC step as the one before (a
 * thread that just started and uses the class often). lg_fill_div is
 * TCACHE_LG_FILL_ONE or more while the bin fills one object at a time. */
#define TCACHE_FILL_ONE_BUSY 64
#define TCACHE_FILL_ONE_RUN  16
#define TCACHE_LG_FILL_ONE   15

/* A bin that only frees (a consumer's, tcache.c: tcache_full) goes down to
 * an eighth of its full capacity, except in the classes from this size up
 * (with 4 KiB pages the 4-14 KiB small classes and the cached large ones,
 * whose full capacity is 20, an eighth 2): there it goes down to one
 * object. What such a bin holds is memory only the allocating thread can
 * use, several KiB an object (doc/design.md, "Fixed footprint"). */
#define TCACHE_FREE_ONLY_MIN PAGE

/*
 * A cache. Its bins are stored as parallel arrays (structure of arrays),
 * each indexed by page-map class `pc`, so the hit paths address a field as
 * %fs:(offset + pc * 8): x86 scales an index by 8 in the address itself,
 * where a 64-byte bin struct would cost a shift and an add per call.
 *
 * Bin pc's stack lives in [empty[pc] - ncached_max[pc], empty[pc]); the
 * cached objects are [head[pc], empty[pc]), *head being the next one
 * handed out; free pushes at --head until head reaches full[pc], the
 * bin's current limit. That is the whole stack, except in a bin that only
 * frees (see tcache_full in tcache.c), where it is lower. low_water[pc] is
 * the highest position head has reached since GC last looked, i.e. the
 * fewest objects the bin held since then.
 *
 * Because head never passes low_water without going through the slow path,
 * malloc's one test `head == low_water` catches both an empty stack
 * (head == empty implies head == low_water) and a new low-water mark: the
 * mark costs the hit path nothing. A zeroed bin (all NULL) has
 * head == low_water == full, so it misses on both malloc and free.
 *
 * Every stack is followed by one slot that stays NULL (*empty == NULL), so
 * the slow paths can read the top of the stack (*head) without testing for
 * an empty stack first.
 *
 * Bad frees (doc/design.md, "Bad frees"). Every object in any cache holds
 * tcache_key, a per-process value (tsd_fs_key), in its first word
 * (tcache_key_slot): every push writes it, every pop clears it. A free whose
 * object already holds the key is a double free unless the program's data
 * happens to match the key: the hit path sends it to the slow path, which
 * confirms it by looking through the bin (and the run's bitmap) before
 * reporting. So a double free is caught before the object can be handed out
 * twice, however many frees came in between. Interior pointers: with 4 KiB
 * pages free tests, for every class, the pointer's offset in its run (from
 * the page's bias in the chunk header's page map) for a multiple of the class size with
 * region_magic[pc], one multiply and one compare (arena_region_start,
 * tsd_fs_region_start8), so that no branch of the hit path depends on the
 * class; a cached large class's magic is the page's. With larger pages
 * align_mask[pc] decides first: an object of a class that is a power of two
 * starts at a multiple of its size (mask size - 1), a cached large object on
 * a page (mask PAGE - 1); for the other small classes the mask is all ones,
 * and free divides the offset (free_unaligned in alloc.c).
 *
 * ticks[pc] counts the bin's cached allocations down to the next bin event
 * (a GC step, or in --enable-prof builds a sampled allocation, whichever
 * comes first; the tick fires on the allocation that takes it below 0);
 * it doubles as the request counter, so the hit path pays one instruction
 * for all of them: the requests served from bin pc are
 * nrequests_base[pc] + period[pc] - ticks[pc], period[pc] being the value
 * the tick started from (TCACHE_GC_INTERVAL unless sampling came first).
 */
typedef struct tcache_s tcache_t;

/*
 * Stores to a counter that mallctl epoch reads from another thread
 * (tcache_stats_add): ticks, nrequests_base, nrequests_merged and
 * ncached_max. Only the owner writes them, so a relaxed store is enough,
 * and on x86-64 and AArch64 it is the same single mov/str as a plain store:
 * the hit path pays nothing, the readers' relaxed loads never tear, and
 * the program has no data race (ThreadSanitizer runs without suppressions).
 */
#define TCACHE_COUNTER_SET(lvalue, value) __atomic_store_n(&(lvalue), (value), __ATOMIC_RELAXED)

struct tcache_s {
	/* The fields the hit paths touch. */
	void **head[TCACHE_NBINS_MAX];
	void **low_water[TCACHE_NBINS_MAX];
	void **full[TCACHE_NBINS_MAX];
	int64_t ticks[TCACHE_NBINS_MAX];
	/* Usable size of the class, for the per-thread byte counters. */
	size_t usize[TCACHE_NBINS_MAX];
	/* Pages above 4 KiB: free's first test for interior pointers (see
	 * above): ptr & align_mask[pc] != 0 means ptr may not start an
	 * object of the class; 0 in bins that always miss. */
	uintptr_t align_mask[TCACHE_NBINS_MAX];
	/* The region-start test: arena_region_magic of the class size (of the
	 * page for a large class) in every cached bin with 4 KiB pages; with
	 * larger pages only where the mask is all ones. 0 in the other bins
	 * (no offset passes: they always miss, or their mask is exact). */
	uint32_t region_magic[TCACHE_NBINS_MAX];

	/* Slow-path fields. */
	void **empty[TCACHE_NBINS_MAX];
	/* Requests counted before the current tick period. */
	uint64_t nrequests_base[TCACHE_NBINS_MAX];
	/* Requests already merged into the arena's stats
	 * (stats.arenas.<i>.bins.<j>.nrequests). */
	uint64_t nrequests_merged[TCACHE_NBINS_MAX];
	/* A fill takes ncached_max >> lg_fill_div objects (at least one). */
	uint8_t lg_fill_div[TCACHE_NBINS_MAX];
	/* The bin's request count (low 32 bits) at GC's last look, for the
	 * classes filled one object at a time unless busy (tcache.c). */
	uint32_t gc_nrequests[TCACHE_NBINS_MAX];
	/* Current capacity (tcache_bin_grow); 0 for a bin that is never used
	 * (always misses). */
	uint16_t ncached_max[TCACHE_NBINS_MAX];
	/* The bin's request count (low 32 bits) at its last flush on a full
	 * stack (UINT32_MAX before the first): unchanged at the next one
	 * means the thread only freed objects of this class in between. */
	uint32_t full_nrequests[TCACHE_NBINS_MAX];
	/* Objects the bin flushed on a full stack since its last allocation
	 * (saturating): while they and the stack are fewer than the requests
	 * the bin ever served, its frees are taken for the thread's own
	 * objects coming back, not a consumer's (tcache_full). The two
	 * 32-bit arrays take the place of one 64-bit one. */
	uint32_t full_nflushed[TCACHE_NBINS_MAX];

	/* The value ticks[pc] started its period from. */
	int64_t period[TCACHE_NBINS_MAX];
	/* Allocations from the start of the period to the next GC step. */
	int64_t gc_left[TCACHE_NBINS_MAX];
	/* Allocations from the start of the period to the next sampled one
	 * (prof.h); 0 while the bin does not sample. */
	int64_t sample_left[TCACHE_NBINS_MAX];
	/* Random state of the bins' sampling countdowns. */
	uint64_t prng;

	/* Counts down uncached slow-path allocations to the next GC step. */
	int32_t gc_ticker;
	/* GC steps so far (the thread's allocation clock), and per bin its
	 * value at the bin's last fill: a bin refilled soon after grows
	 * (tcache_fill). */
	uint32_t gc_steps;
	uint32_t fill_step[TCACHE_NBINS_MAX];
	/* Next bin GC examines. */
	uint32_t gc_bin;
	/* Arena the cache was created for: its unmerged request counts are
	 * reported as that arena's. */
	arena_t *arena;
	/* The block of the bins' first stacks; the further blocks that grown
	 * stacks are taken from, newest first (a list through their first
	 * slot, tcache.c); the unused slots [grow_next, grow_end) of the
	 * newest block (of the first, before there is another); and the
	 * slots grown stacks took so far (tcache_bin_grow). */
	void *stacks;
	void **more;
	void **grow_next;
	void **grow_end;
	size_t grown_slots;
	/* Position in the list of live caches (tcaches_lock). */
	tcache_t *prev;
	tcache_t *next;
};

/* The page-map class of size class ind: the index of its bin. */
ALWAYS_INLINE unsigned
tcache_pc(szind_t ind) {
	return ind + 1;
}

ALWAYS_INLINE unsigned
tcache_ncached(const tcache_t *t, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	return (unsigned)(t->empty[pc] - t->head[pc]);
}

/* Whether class ind is cached by t (bins of other classes always miss). */
ALWAYS_INLINE bool
tcache_caches(const tcache_t *t, szind_t ind) {
	return t->ncached_max[tcache_pc(ind)] != 0;
}

/* Requests bin ind has served since the cache was set up. */
ALWAYS_INLINE uint64_t
tcache_nrequests(const tcache_t *t, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	return t->nrequests_base[pc] + (uint64_t)(t->period[pc] - t->ticks[pc]);
}

/* The key every cached object holds in its first word (non-zero; set by
 * tcache_boot: the thread-state offset where the hit paths use it,
 * tsd_fs_key, otherwise random per process). */
extern uintptr_t tcache_key __attribute__((visibility("hidden")));

/* Where a cached object holds the key: its first word (the smallest class
 * is 8 bytes). */
ALWAYS_INLINE uintptr_t *
tcache_key_slot(void *ptr) {
	return (uintptr_t *)ptr;
}

/* The align_mask and region_magic values of cached class ind (see
 * above). */
uintptr_t tcache_align_mask(szind_t ind);
uint32_t tcache_region_magic(szind_t ind);

/* Slow-path confirmation of a double free: ptr, an object of cached class
 * ind, holds the key. Aborts with a report if ptr is in t's bin (or, for a
 * small class, free in its run); returns when the key was the program's
 * own data. */
void tcache_check_double_free(tcache_t *t, void *ptr, szind_t ind);

/* opt.tcache and opt.lg_tcache_max. */
extern bool opt_tcache;
extern size_t opt_lg_tcache_max;
/* Classes [0, tcache_nhbins) are cached (arenas.nhbins); the largest cached
 * size is tcache_maxclass (arenas.tcache_max). */
extern unsigned tcache_nhbins;
extern size_t tcache_maxclass;

/* Indexed by the size itself, for sizes up to SZ_LOOKUP_MAXCLASS: the
 * size's bin (page-map class, class index + 1). Indexing by size rather
 * than (size + 7) >> 3 as sz_size2index_tab does costs 4 KiB and saves
 * malloc's hit path two instructions. */
extern uint8_t tcache_size2pc_tab[SZ_LOOKUP_MAXCLASS + 1];

/*
 * The bins of the sizes above SZ_LOOKUP_MAXCLASS, up to SZ_LARGE_MAXCLASS:
 * every class there is a multiple of 1 KiB (four classes per doubling from
 * 4 KiB up), so (size - 1) >> 10 determines it, and one load replaces
 * sz_size2index_big's five instructions (bsr, shifts) on malloc's hit path
 * for the cached large classes. 1.75 KiB with 2 MiB chunks, 7 KiB with
 * 8 MiB ones; from 16 MiB chunks up malloc computes instead.
 */
#define TCACHE_BIG_LG_STEP  10
#define TCACHE_BIG_NENTRIES (((SZ_LARGE_MAXCLASS - 1) >> TCACHE_BIG_LG_STEP) + 1)
#define TCACHE_BIG_TAB      (TCACHE_BIG_NENTRIES <= 8192)
extern uint8_t tcache_big2pc_tab[TCACHE_BIG_TAB ? TCACHE_BIG_NENTRIES : 1];
_Static_assert(SZ_LOOKUP_MAXCLASS >= (4 << TCACHE_BIG_LG_STEP),
               "classes above are 1 KiB multiples");

/* The bin of size, SZ_LOOKUP_MAXCLASS < size <= SZ_LARGE_MAXCLASS. */
ALWAYS_INLINE unsigned
tcache_big_pc(size_t size) {
	if (TCACHE_BIG_TAB) {
		return tcache_big2pc_tab[(size - 1) >> TCACHE_BIG_LG_STEP];
	}
	return tcache_pc(sz_size2index_big(size));
}

/* Computes capacities from the options; call once at start-up. */
void tcache_boot(void);

/* The full capacity of class ind's bin (0: never cached). */
unsigned tcache_cap_max(szind_t ind);

/* Grows bin ind to its next capacity (twice the current one, up to
 * tcache_cap_max), moving its objects to a new stack; false when the bin
 * is at its full capacity already or not cached. Called by the slow paths
 * on a refill and on a free that finds the bin at its limit. */
bool tcache_bin_grow(tcache_t *t, szind_t ind);

/* Sets a zeroed tcache up for use, allocating its stacks from `arena`.
 * Returns true when memory is short (the cache then stays disabled). */
bool tcache_init(tcache_t *tcache, arena_t *arena);

/* Flushes everything and releases the stacks; the cache is left disabled
 * (every bin with ncached_max 0). */
void tcache_destroy(tcache_t *tcache);

/* Flushes every bin (thread.tcache.flush). */
void tcache_flush(tcache_t *tcache);

/* Slow path of an allocation of a cached class (tcache_caches() true):
 * counts the request, pops (lowering the low-water mark) or fills the
 * empty bin from `arena` and pops, and runs a GC step when one is due.
 * NULL when memory is short. */
void *tcache_alloc(tcache_t *tcache, arena_t *arena, szind_t szind);

/* Slow path of a free of a cached class: aborts on a double free (the
 * object holds the key and is cached already), flushes half of a full bin,
 * then pushes. */
void tcache_dalloc(tcache_t *tcache, void *ptr, szind_t szind);

/* One incremental GC step. */
void tcache_gc_step(tcache_t *tcache);

/* Adds the request counts that live caches of `arena` have not merged yet
 * to nrequests[class] (for stats reads). */
void tcache_stats_add(arena_t *arena, uint64_t *nrequests);

/*
 * Explicit caches (tcache.create / MALLOCX_TCACHE(id) / tcache.flush /
 * tcache.destroy). They are not tied to a thread: the program serialises
 * their use itself. Ids are recycled after destroy.
 */
#define TCACHES_MAX 4096
/* Creates a cache whose fills come from `arena`; returns true on failure
 * (no free id or no memory). */
bool tcaches_create(arena_t *arena, unsigned *id);
/* The cache with this id, or NULL when the id is not live. */
tcache_t *tcaches_get(unsigned id);
/* Flushes / destroys cache `id`; true when the id is not live. */
bool tcaches_flush(unsigned id);
bool tcaches_destroy(unsigned id);

void tcache_prefork(void);
void tcache_postfork_parent(void);
void tcache_postfork_child(void);

#endif
