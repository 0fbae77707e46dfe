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
 * Garbage collection: every TCACHE_GC_INTERVAL allocations, one bin is
 * examined; objects that stayed unused since its last examination (its
 * low-water mark) are flushed, three quarters of them, and the bin fills
 * fewer next time. A bin that ran empty fills more. So a thread that stops
 * using a class hands its objects back, and idle threads hoard little.
 */
#ifndef ALLOC_INTERNAL_TCACHE_H
#define ALLOC_INTERNAL_TCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/internal/sz.h"
#include "alloc/internal/util.h"

typedef struct arena_s arena_t;

/*
 * One size class's stack. The stack lives in [full, empty); the cached
 * objects are [head, empty), *head being the next one handed out; free
 * pushes at --head. low_water is the highest position head has reached
 * since GC last looked, i.e. the fewest objects the bin held since then.
 *
 * Because head never passes low_water without going through the slow path,
 * malloc's one test `head == low_water` catches both an empty stack
 * (head == empty implies head == low_water) and a new low-water mark: the
 * mark costs the hit path nothing. A zeroed bin (all NULL) has
 * head == low_water == full, so it misses on both malloc and free.
 */
typedef struct {
	void **head;
	void **low_water;
	void **full;
	void **empty;
	/* Usable size of the class, for the per-thread byte counters. */
	size_t usize;
	/* Objects handed out from this bin since the last merge into the
	 * arena's stats (stats.arenas.<i>.bins.<j>.nrequests). */
	uint64_t nrequests;
	/* A fill takes ncached_max >> lg_fill_div objects. */
	uint16_t lg_fill_div;
	uint16_t ncached_max;
	/* Pads the bin to 64 bytes: the hit path scales the class index by
	 * a shift, and a bin never straddles two cache lines. */
	uint8_t pad[12];
} tcache_bin_t;

_Static_assert(sizeof(tcache_bin_t) == 64, "tcache_bin_t must be 64 bytes");

ALWAYS_INLINE unsigned
tcache_bin_ncached(const tcache_bin_t *bin) {
	return (unsigned)(bin->empty - bin->head);
}

/* Bins are indexed by page-map class (size class + 1, see arena.h), so
 * free indexes them with the byte it reads. Slot 0 (PCLASS_NONE) is never
 * cached: freeing an address where no object starts falls to the slow
 * path. Classes above opt.lg_tcache_max are never cached either. */
#define TCACHE_NBINS_MAX (SZ_NPAGED + 1)

/* Allocations between two GC steps. */
#define TCACHE_GC_INTERVAL 256

typedef struct tcache_s tcache_t;
struct tcache_s {
	/* bins[ind + 1] caches size class ind; use tcache_bin(). */
	tcache_bin_t bins[TCACHE_NBINS_MAX];
	/* Counts down allocations to the next GC step. */
	int32_t gc_ticker;
	/* Next bin GC examines. */
	uint32_t gc_bin;
	/* Arena the cache was created for: its unmerged request counts are
	 * reported as that arena's. */
	arena_t *arena;
	/* Memory of all avail stacks (one block). */
	void *stacks;
	/* Position in the list of live caches (tcaches_lock). */
	tcache_t *prev;
	tcache_t *next;
};

ALWAYS_INLINE tcache_bin_t *
tcache_bin(tcache_t *t, szind_t ind) {
	return &t->bins[ind + 1];
}

/* opt.tcache and opt.lg_tcache_max. */
extern bool opt_tcache;
extern size_t opt_lg_tcache_max;
/* Classes [0, tcache_nhbins) are cached (arenas.nhbins); the largest cached
 * size is tcache_maxclass (arenas.tcache_max). */
extern unsigned tcache_nhbins;
extern size_t tcache_maxclass;

/* For sizes up to SZ_LOOKUP_MAXCLASS, indexed like sz_size2index_tab: the
 * byte offset of the size's bin in tcache_t.bins ((class index + 1) times
 * sizeof(tcache_bin_t)). It saves malloc's hit path the scaling shift. */
extern uint16_t tcache_size2off_tab[SZ_LOOKUP_NENTRIES];

/* Computes capacities from the options; call once at start-up. */
void tcache_boot(void);

/* Sets a zeroed tcache up for use, allocating its stacks from `arena`.
 * Returns true when memory is short (the cache then stays disabled). */
bool tcache_init(tcache_t *tcache, arena_t *arena);

/* Flushes everything and releases the stacks; the cache is left disabled
 * (every bin with ncached_max 0). */
void tcache_destroy(tcache_t *tcache);

/* Flushes every bin (thread.tcache.flush). */
void tcache_flush(tcache_t *tcache);

/* Slow path of a cached class's malloc: lowers the low-water mark and pops,
 * or fills the empty bin from `arena` and pops; NULL when memory is short. */
void *tcache_alloc_slow(tcache_t *tcache, arena_t *arena, szind_t szind);

/* Full path of free: flushes half the bin, then pushes ptr. */
void tcache_dalloc_flush(tcache_t *tcache, void *ptr, szind_t szind);

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
