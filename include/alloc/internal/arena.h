/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Arenas: independent heaps, each with its own locks, chunks and stats.
 *
 * An arena carves 2 MiB chunks into page runs. A small size class (< 4
 * pages) is served by a bin: runs of equal-sized regions, each run with a
 * bitmap of the regions in use. A large size class (4 pages up to 1.75 MiB)
 * is one page run. Huge requests (>= CHUNK) bypass the page map (huge.c).
 *
 * Finding a pointer's metadata takes a mask and a load: the chunk header
 * sits at `ptr & ~CHUNK_MASK`, and its page map `pmap` holds, per page,
 * the size class of the object living there plus one (arena_pclass_get).
 * Pages that start no object (chunk header, free pages, the inner pages of
 * a large run) hold PCLASS_NONE, which is 0: memory that merely reads as
 * zeros (a fresh or purged page, the inside of a huge block) never looks
 * like an object, so freeing such an address goes to the slow path and is
 * caught there.
 *
 * Chunk header layout (arena_chunk_t, at the start of every arena chunk):
 *   pmap[page]    size class + 1 per page and the page's bias
 *                 (arena_page_t; free's hit path reads only these)
 *   map[page]     page-run bookkeeping, valid at the first and last page of
 *                 every run: FREE/LARGE/SMALL flags, DIRTY for free runs,
 *                 and the run length in pages
 *   misc[page]    small-run pages: the run descriptor; first page of a
 *                 free run: links in the arena's free-run lists
 * The header takes CHUNK_HEADER_PAGES pages; runs use the rest.
 *
 * Locking: each bin has a lock for its runs and counters; arena->lock
 * protects chunks, page runs, the free-run lists, the chunk cache and large
 * and huge counters. A bin lock may be held while taking arena->lock,
 * never the reverse (see mutex.h).
 */
#ifndef ALLOC_INTERNAL_ARENA_H
#define ALLOC_INTERNAL_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc/internal/bitmap.h"
#include "alloc/internal/chunk.h"
#include "alloc/internal/config.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/util.h"

#define CHUNK_NPAGES (CHUNK >> LG_PAGE)

/* pclass byte of pages that begin no object. */
#define PCLASS_NONE 0
/* pclass byte of the first page of a sampled object (--enable-prof, prof.h):
 * its real class is in prof's table. */
#define PCLASS_SAMPLED (SZ_NPAGED + 1)

/* map[] bits. */
#define MAP_FREE   0x1u
#define MAP_DIRTY  0x2u
#define MAP_LARGE  0x4u
#define MAP_SMALL  0x8u
#define MAP_HEADER 0x10u
/* Free run whose pages hold no data (purged) but need not read as zeros
 * (MADV_FREE, or a chunk hook that does not zero): not dirty for purging,
 * but calloc must still clear it. */
#define MAP_UNZEROED 0x20u
/* Free run purged lazily by the dirty decay (MADV_FREE, with MAP_UNZEROED):
 * muzzy, counted in nmuzzy until the muzzy decay purges it for good or it
 * is allocated again. Free runs merge only with runs of the same
 * MAP_DIRTY | MAP_MUZZY state, so the counts stay exact. */
#define MAP_MUZZY 0x40u
/* Dirty free run that a large object of its length left (arena_large.c,
 * "Reuse by resident length" in doc/design.md): kept apart from its free
 * neighbours, not merged, so that the next request of its size class takes
 * it whole; page_misc_t.resident of its second page says how much of it
 * may be resident. Runs merge again when a request finds no dirty run long
 * enough (arena_keep_release). */
#define MAP_KEEP 0x80u
/* The state bits a free run carries, and those that decide merging. */
#define MAP_STATE        (MAP_DIRTY | MAP_UNZEROED | MAP_MUZZY)
#define MAP_MERGE_STATE  (MAP_DIRTY | MAP_MUZZY)
#define MAP_NPAGES_SHIFT 8

/* Length in pages of the run whose first or last page has map[] bits `bits`
 * (arena_run.c and the walker, arena_validate.c). */
ALWAYS_INLINE size_t
map_npages(uint32_t bits) {
	return bits >> MAP_NPAGES_SHIFT;
}

/* Page-count classes of the free-run lists: four per doubling, like size
 * classes, so a best-fit search looks at few lists. */
#define PSZ_MAX (4 * (LG_CHUNK - LG_PAGE) + 4)

typedef struct run_s run_t;
typedef struct page_misc_s page_misc_t;
typedef struct bin_s bin_t;

struct page_misc_s {
	union {
		/* Pages of a small run: its descriptor. */
		run_t *run;
		/* First page of a free run: links in arena->avail[dirty][class]. */
		struct {
			page_misc_t *prev;
			page_misc_t *next;
		} link;
		/* Second page of a large run, allocated or kept (MAP_KEEP):
		 * how many pages from the run's start may be resident (the
		 * rest was never touched since it was fresh or purged). */
		size_t resident;
	};
};

/*
 * Per page of a small run, what the hit path of free adds to a pointer to
 * get its offset in the run: minus the run's base, modulo 2^16 (2^32 when
 * runs can exceed 64 KiB, i.e. pages above 4 KiB). Written when the run is
 * set up, before its pages' class; left as it is on other pages, where it
 * is still a multiple of the page size, which is all the test needs for a
 * large class (arena_region_offset). With 4 KiB pages the bias is a multiple
 * of 4 KiB below 2^16, so its second byte is all of it: one byte a page
 * (ARENA_PBIAS_SHIFT), which free adds to the second byte of the pointer's
 * low half, and which sits at the same index as the page's class byte. See
 * arena_region_offset and doc/design.md, "Bad frees on the hit path".
 */
#if LG_PAGE <= 12
typedef uint8_t arena_pbias_t;
#define ARENA_PBIAS_SHIFT 8
_Static_assert(LG_PAGE >= ARENA_PBIAS_SHIFT, "a run base's low byte is zero");
#else
typedef uint32_t arena_pbias_t;
#define ARENA_PBIAS_SHIFT 0
#endif

/*
 * A page's entry in the chunk header's page map: the size class + 1 of the
 * object starting on the page (PCLASS_NONE: none) and its bias, side by
 * side, so that free's hit path finds both in one cache line (two bytes a
 * page with 4 KiB pages; when they were two arrays 512 bytes apart, a free
 * whose header line was not cached missed twice). Written through
 * arena_pclass_set, arena_pclass_fill, arena_pclass_clear and
 * arena_pbias_set.
 */
typedef struct {
	uint8_t cls;
	arena_pbias_t bias;
} arena_page_t;

typedef struct arena_chunk_s arena_chunk_t;
struct arena_chunk_s {
	arena_t *arena;
	/* Free pages in this chunk (stats and sanity checks). */
	size_t nfree_pages;
	/* The arena's list of its chunks (arena->lock). */
	arena_chunk_t *prev;
	arena_chunk_t *next;
	/* Dirty free pages in this chunk; while non-zero the chunk is in the
	 * arena's dirty list, least recently dirtied first. */
	size_t ndirty;
	/* Muzzy free pages in this chunk (MAP_MUZZY runs). */
	size_t nmuzzy;
	arena_chunk_t *dirty_prev;
	arena_chunk_t *dirty_next;
	/* Per page: class + 1 and free's interior-pointer bias
	 * (arena_region_offset). */
	arena_page_t pmap[CHUNK_NPAGES];
	uint32_t map[CHUNK_NPAGES];
	page_misc_t misc[CHUNK_NPAGES];
};

#define CHUNK_HEADER_PAGES  ((sizeof(arena_chunk_t) + PAGE_MASK) >> LG_PAGE)
#define CHUNK_RUN_MAX_PAGES (CHUNK_NPAGES - CHUNK_HEADER_PAGES)

/* Class + 1 of the object starting on page pi of c (PCLASS_NONE: none). */
ALWAYS_INLINE unsigned
arena_pclass_get(const arena_chunk_t *c, size_t pi) {
	return c->pmap[pi].cls;
}

ALWAYS_INLINE void
arena_pclass_set(arena_chunk_t *c, size_t pi, unsigned pclass) {
	c->pmap[pi].cls = (uint8_t)pclass;
}

/* Sets the class of the npages pages at pi (their biases stay). */
ALWAYS_INLINE void
arena_pclass_fill(arena_chunk_t *c, size_t pi, unsigned pclass, size_t npages) {
	for (size_t i = 0; i < npages; i++) {
		c->pmap[pi + i].cls = (uint8_t)pclass;
	}
}

/* No object starts on the npages pages at pi any more: class PCLASS_NONE
 * and bias 0, which is a multiple of the page size as every bias is, all a
 * large class's region-start test needs (a small run sets its pages' bias
 * when it is set up). One memset, where a loop over the classes alone
 * cost 4 M instructions in `mixed --quick`. */
ALWAYS_INLINE void
arena_pclass_clear(arena_chunk_t *c, size_t pi, size_t npages) {
	_Static_assert(PCLASS_NONE == 0, "a zeroed entry has no class");
	memset(&c->pmap[pi], 0, npages * sizeof(arena_page_t));
}

/* Shape of every run of one small size class, computed at start-up. */
typedef struct {
	size_t reg_size;
	/* Run length in bytes: a multiple of both PAGE and reg_size, so
	 * regions tile the run exactly and every region of a size that is a
	 * multiple of an alignment is aligned to it. */
	size_t run_size;
	uint32_t nregs;
	/* ceil(2^32 / reg_size): region index = (offset * magic) >> 32,
	 * exact for offsets that are multiples of reg_size below 2^32. */
	uint32_t div_magic;
	size_t bitmap_ngroups;
	/* sizeof(run_t) plus the bitmap. */
	size_t run_desc_size;
} bin_info_t;

extern bin_info_t bin_infos[SZ_NSMALL];

/* Computes bin_infos (arena_bin.c); called by arena_boot. */
void arena_bin_boot(void);

/* A small run's descriptor (from base memory, recycled per bin). */
struct run_s {
	/* First region; the run's first page. */
	char *base;
	/* Bin's list of runs with free regions (not linked while runcur or
	 * full). */
	run_t *prev;
	run_t *next;
	szind_t binind;
	uint32_t nfree;
	/* Lowest bitmap group that may hold a free region. */
	size_t hint;
	/* Region bitmap: bit set = region in use. */
	bitmap_t bitmap[];
};

typedef struct {
	/* Allocation requests served (including from thread caches), regions
	 * handed out and returned, run counts. */
	uint64_t nrequests;
	uint64_t nmalloc;
	uint64_t ndalloc;
	uint64_t nfills;
	uint64_t nflushes;
	uint64_t nruns;
	uint64_t reruns;
	size_t curregs;
	size_t curruns;
	/* Runs with free regions (runcur and the nonfull list), counted by
	 * arena_stats_read only. */
	size_t nonfull_runs;
} bin_stats_t;

struct bin_s {
	/* Protects everything in this bin. */
	mutex_t lock;
	/* Run allocations come from; NULL or has nfree > 0. */
	run_t *runcur;
	/* Other runs with free regions, most recently freed-into first. */
	run_t *nonfull;
	/* Recycled run descriptors for this size class. */
	run_t *desc_free;
	bin_stats_t stats;
	/*
	 * Regions freed while the lock was taken: a flush that finds the lock
	 * busy does not wait for it but pushes its regions here, lock-free,
	 * and whoever holds the lock next frees them into their runs
	 * (arena_bin.c, "Remote frees"). Invariants:
	 *   - every region on the list is a region of this bin's class in
	 *     one of this arena's runs, still marked in use in its run's
	 *     bitmap and still counted in stats.curregs: to every reader of
	 *     the bin it is allocated until drained;
	 *   - the list is linked through each region's second word (the
	 *     first in the 8-byte class), so the owner of the region gave it
	 *     up (free) before it was linked, and the thread-cache key in
	 *     the first word stays (tcache.h);
	 *   - pushes (a whole chain with one release CAS) need no lock;
	 *     the only other operation is taking the whole list (acquire
	 *     exchange), so no region is popped alone and there is no ABA
	 *     problem; it is taken under the lock, or by a fill just before
	 *     it takes the lock (arena_bin_remote_take), whose regions stay
	 *     allocated, as on the list, until it frees them under the lock
	 *     or hands them to the filling cache as they are (the first
	 *     ones, up to what the fill asked for: a cached region is
	 *     allocated to the bin too);
	 *   - whoever takes a chain walks it once, overwriting each region's
	 *     link with a mark as it reads it (bin_remote_walk): a region
	 *     pushed twice makes the chain come back to a marked link, which
	 *     is reported as a double free before the walk loops or a region
	 *     goes to a cache twice;
	 *   - regions of the thread's own arena come here only when the lock
	 *     is busy; a thread cache hands other arenas' regions over here
	 *     whether it is busy or not (arena_bin_hand_over), so a thread
	 *     never takes another CPU's arena's bin lock to free;
	 *   - the bin's paths that hold the lock drain it (fill, flush, the
	 *     one-region paths, stats reads), and so do the decay sweep, the
	 *     background threads, arena.<i>.decay and .purge and malloc_trim
	 *     (arena_bins_remote_drain), so regions wait there at most until
	 *     the bin is used again or the next sweep (100 ms) of any
	 *     thread's slow path; arena_reset discards it.
	 * remote_nflushes and remote_nrequests carry those flushes' counters
	 * to stats the same way (atomic adds, folded in at the drain).
	 */
	void *remote;
	uint64_t remote_nflushes;
	uint64_t remote_nrequests;
	/* A run was given back to the arena under the lock: the arena
	 * purges once the lock is free (bin_unlock, arena_bin.c). */
	bool purge_due;
} CACHE_ALIGNED;

typedef struct {
	uint64_t nmalloc;
	uint64_t ndalloc;
	uint64_t nrequests;
	size_t curruns;
	/* Thread-cache flushes that returned objects of the class. */
	uint64_t nflushes;
} large_stats_t;

typedef struct {
	/* Chunks used for page runs (not counting the chunk cache). */
	size_t mapped_chunks;
	/* The dirty decay's purge sweeps (npurge, below), madvise calls and
	 * pages purged (jemalloc 5's dirty_*; pages it made muzzy count). */
	uint64_t nmadvise;
	uint64_t purged_pages;
	/* The same for the muzzy decay (muzzy_*). */
	uint64_t muzzy_npurge;
	uint64_t muzzy_nmadvise;
	uint64_t muzzy_purged;
	/* Bytes of base (metadata) memory made for this arena: the arena
	 * itself, run descriptors, extent nodes. Updated atomically (run
	 * descriptors are made under a bin lock only). */
	size_t metadata_allocated;
	size_t allocated_large;
	size_t allocated_huge;
	uint64_t npurge;
	large_stats_t lstats[SZ_NLARGE];
	large_stats_t hstats[SZ_NHUGE];
} arena_stats_t;

/*
 * A fixed region of the caller's memory that an arena lives in (a private
 * heap, heap.h): the arena takes its chunks only from the region (its chunk
 * cache is seeded with them and never maps more), and the run descriptors
 * of its small runs sit at fixed places in the region rather than coming
 * from base memory, so every byte of the arena's state is in the region.
 * Pointers in it are addresses of the region's one mapping, which must
 * therefore be at the same address in every process that uses it.
 *
 * Descriptor slots: the run starting at page pi of chunk i has its
 * descriptor at desc_block(i) + pi * desc_slot, where desc_slot is at least
 * the largest run_desc_size / run pages of any bin, so a run's descriptor
 * never reaches the slot of the next run. Blocks of chunks below
 * ndesc_head are at desc_head, the others at desc_tail.
 */
typedef struct {
	/* First chunk (chunk-aligned) and how many follow it. */
	char *chunks;
	size_t nchunks;
	char *desc_head;
	size_t ndesc_head;
	char *desc_tail;
	size_t desc_slot;
	/* Shared between processes (robust, process-shared locks; no fork
	 * handling: a fork does not copy the region). */
	bool shared;
} arena_region_t;

/* Bytes of the descriptor block of one chunk. */
ALWAYS_INLINE size_t
arena_region_desc_block(const arena_region_t *r) {
	return CHUNK_NPAGES * r->desc_slot;
}

struct arena_s {
	unsigned ind;
	/* NULL, or the caller's region the arena lives in (see above). */
	arena_region_t *region;
	/* Threads bound to this arena (for stats and arena choice). */
	unsigned nthreads;
	/* A thread moved away from this arena to its new CPU's arena, and no
	 * thread has allocated from it since (atomic; see arena_abandon).
	 * While set, the arena keeps at most an eighth of its active pages
	 * dirty, whatever its decay curve allows: nobody is left to reuse
	 * them. */
	bool abandoned;
	/* The thread that allocated from this arena last (its
	 * arena_thread_self; atomic, relaxed): arena_abandon leaves an arena
	 * that another thread allocated from since alone. */
	const void *last_thread;
	/*
	 * Large objects of this arena that thread caches of other arenas'
	 * threads handed over (arena_large_hand_over) instead of taking
	 * `lock`; whoever holds `lock` next for a large allocation or flush,
	 * a decay sweep, a purge or a stats read frees them into their runs
	 * (arena_large_remote_drain). Invariants, as for bin_t.remote:
	 *   - every object on the list is a large run of this arena, still
	 *     allocated to every reader (its page class set, counted in
	 *     stats.allocated_large and its class's curruns) until drained;
	 *   - the list is linked through each object's second word, so the
	 *     thread-cache key in the first stays; the third word of the
	 *     first object of each flush carries that flush's counters
	 *     (nrequests << 1 | 1; 0 in the others), folded into lstats at
	 *     the drain, so stats stay exact after a read;
	 *   - pushes (a whole chain, one release CAS) take no lock; the list
	 *     is only ever taken whole (acquire exchange) under `lock`, so
	 *     there is no ABA problem; an object pushed twice (a double free)
	 *     is caught by the drain's page-class check the second time,
	 *     before the list could loop;
	 *   - arena_reset discards it with the runs.
	 */
	void *large_remote;

	bin_t bins[SZ_NSMALL];

	/* Protects everything below. */
	mutex_t lock;
	/* A fully free chunk kept back from the cache, so a program that
	 * repeatedly fills and empties one chunk does not churn. */
	arena_chunk_t *spare;
	/* Free page runs, clean ([0]) and dirty ([1]) apart, by floor
	 * page-count class; bit c of avail_mask[d] is set when avail[d][c] is
	 * non-empty. Allocation takes dirty runs first: their pages are
	 * already faulted in, so reusing them costs no page faults and no new
	 * RSS. */
	page_misc_t *avail[2][PSZ_MAX];
	bitmap_t avail_mask[2][BITMAP_NGROUPS(PSZ_MAX)];
	/* Dirty pages in free runs (spare chunk included). */
	size_t ndirty;
	/* Of those, the pages of dirty free runs shorter than
	 * ARENA_HOLE_MAX_PAGES: holes among the memory in use, which the
	 * high-water bound leaves alone up to a sixteenth of the active
	 * pages (arena_purge.c). */
	size_t ndirty_holes;
	/* Muzzy pages in free runs (MAP_MUZZY). */
	size_t nmuzzy;
	/* Free runs kept apart for reuse by their size class (MAP_KEEP). */
	size_t nkeep;
	/* Upper bound on the wholly free chunks other than the spare that
	 * the arena keeps (for their kept runs; arena_release_empty). */
	size_t nempty;
	/* Pages in allocated page runs (small runs and large objects). */
	size_t nactive;
	/* Pages of live huge allocations (huge.c), kept with or without
	 * statistics: arena_grow_bound weighs dirty pages against them. */
	size_t nactive_huge;
	/* Chunks with dirty free pages, least recently dirtied first. */
	arena_chunk_t *dirty_head;
	arena_chunk_t *dirty_tail;
	/* Purging policy state (see decay.h): the dirty and the muzzy
	 * stage. */
	decay_t decay;
	decay_t decay_muzzy;
	/* When the arena was made (decay_now_ns clock): stats uptime. */
	uint64_t created_ns;
	ssize_t lg_dirty_mult;
	/* The high-water bound (arena_grow_bound): the highest footprint
	 * (active + dirty pages) that growth could not trade for purged dirty
	 * pages. */
	size_t footprint_max;
	/* A purge is in progress (the lock is dropped around madvise): others
	 * do not start another one. */
	bool purging;
	/* Chunks carved into page runs. */
	arena_chunk_t *chunks_head;
	chunk_cache_t chunks;
	/* Live huge allocations of this arena (for reset and stats). */
	extent_t *huge_list;
	arena_stats_t stats;
};

/* stats.cactive: bytes in active pages of every arena (page runs in use and
 * huge allocations), kept live with atomic adds on the paths that change
 * them (all slow paths). A program may read it through the pointer the
 * mallctl hands out. */
extern size_t arena_cactive_bytes;

/* Moves stats.cactive by `bytes` (whole pages) as they become active or
 * stop being active. */
ALWAYS_INLINE void
arena_cactive_add(size_t bytes) {
	if (config_stats) {
		__atomic_fetch_add(&arena_cactive_bytes, bytes, __ATOMIC_RELAXED);
	}
}

ALWAYS_INLINE void
arena_cactive_sub(size_t bytes) {
	if (config_stats) {
		__atomic_fetch_sub(&arena_cactive_bytes, bytes, __ATOMIC_RELAXED);
	}
}

/* Arenas by index; arenas[i] is NULL until first used. */
#define ARENAS_MAX 4096
extern arena_t *arenas[ARENAS_MAX];
/* Arenas created so far (indices below it may be in use). */
extern unsigned narenas_total;
/* Arenas that automatic thread assignment spreads threads over. */
extern unsigned narenas_auto;

/*
 * Per-CPU arenas on demand. With opt.percpu_arena percpu or phycpu, every
 * thread allocates from arena 0 until the allocation paths' arena locks (a
 * bin's lock on a fill or an uncached small request, the arena's lock for a
 * large run) are found busy opt.percpu_arena_waits times within one window
 * of ARENA_SPREAD_WINDOW acquisitions: then arena_spread is set, for good,
 * and each thread follows its CPU to that CPU's arena (tsd_arena). A
 * program whose few threads seldom meet in those locks keeps one arena's
 * runs and dirty pages instead of one set per CPU; threads that do meet
 * (by default one acquisition in 8 waits) are spread within a window.
 * 0 spreads from the start. Frees do not count: a thread that frees into
 * another thread's bin meets its owner there whatever the arenas.
 *
 * Acquisitions are counted per thread (arena_thread_acqs, no shared write)
 * and added to the window ARENA_ACQS_FOLD at a time; waits go to the window
 * at once. Both are heuristics: a count lost to a race only moves the
 * moment of spreading.
 */
#define ARENA_SPREAD_WINDOW 65536u
#define ARENA_ACQS_FOLD     16u
extern unsigned opt_percpu_arena_waits;
/* Set once threads are spread over the per-CPU arenas (atomic, relaxed). */
extern bool arena_spread;
/* Waits counted in the current window; no longer counted once spread. */
extern unsigned arena_lock_waits;
#if ALLOC_CONFIG_INITIAL_EXEC_TLS
extern __thread unsigned arena_thread_acqs __attribute__((tls_model("initial-exec")));
#else
extern __thread unsigned arena_thread_acqs;
#endif
/* Counts one wait; sets arena_spread at the threshold. */
void arena_note_wait(void);
/* Adds ARENA_ACQS_FOLD acquisitions to the window, starting a new window
 * when it is full. */
void arena_note_acqs(void);

ALWAYS_INLINE bool
arena_spread_now(void) {
	return __atomic_load_n(&arena_spread, __ATOMIC_RELAXED);
}

/* Takes m, a lock of an arena, on a path that allocates from it, counting
 * the acquisition and, when m is busy, the wait (above). */
ALWAYS_INLINE void
arena_lock_for_alloc(mutex_t *m) {
	if (unlikely(++arena_thread_acqs % ARENA_ACQS_FOLD == 0)) {
		arena_note_acqs();
	}
	if (unlikely(!mutex_trylock(m))) {
		arena_note_wait();
		mutex_lock(m);
	}
}

/* Computes bin shapes and page-class tables; call once at start-up. */
void arena_boot(void);

/* Per slot: the slot belongs to an arena in a caller's region (a private
 * heap), now or before. Process-wide sweeps (decay, background threads,
 * releasing cached memory) skip such slots without reading the arena: its
 * region may be unmapped as soon as the heap is destroyed. */
extern bool arena_slot_region[ARENAS_MAX];

/* Sets up the arena at `a` (zeroed memory, e.g. in a caller's region) for
 * slot ind; returns true when a lock cannot be initialised. */
bool arena_init(arena_t *a, unsigned ind);
/* Puts the region arena `a` into a free slot of arenas[] past the automatic
 * ones (a slot a destroyed heap left, or a new one) and returns it, or
 * returns ARENAS_MAX when every slot is taken. */
unsigned arena_install_region(arena_t *a);
/* Empties slot ind (the heap is destroyed or detached). */
void arena_uninstall_region(unsigned ind);
/* Whether arena slot i may be swept by process-wide loops (see
 * arena_slot_region); reads the arena pointer only if so. */
ALWAYS_INLINE arena_t *
arena_sweepable(unsigned i) {
	if (__atomic_load_n(&arena_slot_region[i], __ATOMIC_ACQUIRE)) {
		return NULL;
	}
	return __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE);
}

/* Returns arena ind, creating it if needed; NULL if ind >= ARENAS_MAX or
 * memory is short. */
arena_t *arena_get(unsigned ind);
/* Creates a new arena at the next free index past the automatic ones
 * (arenas.extend). */
arena_t *arena_extend(void);

ALWAYS_INLINE arena_chunk_t *
arena_chunk_of(const void *ptr) {
	return (arena_chunk_t *)((uintptr_t)ptr & ~(uintptr_t)CHUNK_MASK);
}

ALWAYS_INLINE size_t
arena_pageind(const void *ptr) {
	return ((uintptr_t)ptr & CHUNK_MASK) >> LG_PAGE;
}

/*
 * The chunk registry: one byte per chunk-sized slot of the address space
 * below 2^LG_VADDR, non-zero while the slot is an arena chunk. free()
 * tests it before reading a chunk header, so a pointer liballoc never
 * returned, whose chunk may not even be mapped, is reported instead of
 * faulting. It is a static array: its address is a link-time constant and
 * it needs no set-up before the first free. Only the pages covering used
 * chunks are ever touched (one 4 KiB page per 8 GiB of address space).
 * Huge allocations are not registered: free finds them in the rtree.
 */
#define ARENA_REGISTRY_LG_SLOTS (LG_VADDR - LG_CHUNK)
/* Registry values: a chunk of an ordinary arena, whose objects free()'s
 * hit path may cache; a chunk of an arena in a caller's region (a private
 * heap), whose objects bypass thread caches. */
#define ARENA_REGISTRY_ARENA 1
#define ARENA_REGISTRY_HEAP  2
_Static_assert(ARENA_REGISTRY_LG_SLOTS <= 30, "configure bounds lg-vaddr - lg-chunk");
extern uint8_t arena_chunk_registry[(size_t)1 << ARENA_REGISTRY_LG_SLOTS];

/* Whether ptr lies in an arena chunk. ptr must be below 2^LG_VADDR (the
 * registry is not bounds-checked: the hit path cannot afford it, and mmap
 * never returns addresses beyond the user half of the address space). */
ALWAYS_INLINE bool
arena_chunk_registered(const void *ptr) {
	return arena_chunk_registry[(uintptr_t)ptr >> LG_CHUNK] != 0;
}

/* Whether ptr lies in a chunk of an ordinary arena (not a private heap's):
 * free()'s hit path, which may put the object in the thread's cache. */
ALWAYS_INLINE bool
arena_chunk_cacheable(const void *ptr) {
	return arena_chunk_registry[(uintptr_t)ptr >> LG_CHUNK] == ARENA_REGISTRY_ARENA;
}

/* Whether ptr lies in a registered chunk of a private heap; ptr below
 * 2^LG_VADDR (not bounds-checked, like arena_chunk_registered). */
ALWAYS_INLINE bool
arena_chunk_heap(const void *ptr) {
	return arena_chunk_registry[(uintptr_t)ptr >> LG_CHUNK] == ARENA_REGISTRY_HEAP;
}

/* Whether ptr (any value) lies in a registered chunk of a private heap. */
ALWAYS_INLINE bool
arena_chunk_in_region(const void *ptr) {
	uintptr_t slot = (uintptr_t)ptr >> LG_CHUNK;
	return slot < ((uintptr_t)1 << ARENA_REGISTRY_LG_SLOTS) &&
	       arena_chunk_registry[slot] == ARENA_REGISTRY_HEAP;
}

/* Sets chunk c's registry value (0: not an arena chunk). Relaxed: a free
 * racing with the chunk's release is a use-after-free already. */
ALWAYS_INLINE void
arena_chunk_registry_set(const void *c, uint8_t value) {
	__atomic_store_n(&arena_chunk_registry[(uintptr_t)c >> LG_CHUNK], value, __ATOMIC_RELAXED);
}

/* Like arena_chunk_registered, for any pointer value (slow paths). */
ALWAYS_INLINE bool
arena_chunk_registered_checked(const void *ptr) {
	uintptr_t slot = (uintptr_t)ptr >> LG_CHUNK;
	return slot < ((uintptr_t)1 << ARENA_REGISTRY_LG_SLOTS) && arena_chunk_registry[slot] != 0;
}

/* Under a->lock: whether arena a purges at all (decay_time >= 0, or
 * lg_dirty_mult >= 0 under purge:ratio). */
ALWAYS_INLINE bool
arena_purges(const arena_t *a) {
	return opt_purge == PURGE_MODE_RATIO ? a->lg_dirty_mult >= 0 : a->decay.time >= 0;
}

/* Under a->lock: counts one purge of npages pages by one madvise (or
 * purge hook call) made outside the decay sweep. */
ALWAYS_INLINE void
arena_count_purge(arena_t *a, size_t npages) {
	if (config_stats) {
		a->stats.npurge++;
		a->stats.nmadvise++;
		a->stats.purged_pages += npages;
	}
}

/*
 * For free's hit path, which has the page number ptr >> LG_PAGE and the
 * registry slot (ptr >> LG_CHUNK) at hand: the chunk's address minus
 * slot * CHUNK_NPAGES * sizeof(arena_page_t), so that the page's entry of
 * the page map is read at hdr + offsetof(arena_chunk_t, pmap) + page *
 * sizeof(arena_page_t) (x86 scales the index by it in the address), where the
 * chunk address and the page's index in the chunk would take two
 * instructions (a shift and a mask) to get from them; the multiply is one.
 */
#define ARENA_PAGE_HDR_K (CHUNK - CHUNK_NPAGES * sizeof(arena_page_t))
ALWAYS_INLINE uintptr_t
arena_page_hdr(uintptr_t slot) {
	uintptr_t hdr;
#if defined(__x86_64__)
	if (ARENA_PAGE_HDR_K <= INT32_MAX) {
		/* GCC 12 makes the multiply two shifts and a subtraction. */
		__asm__("imulq %[k], %[slot], %[hdr]"
		        : [hdr] "=r"(hdr)
		        : [slot] "r"(slot), [k] "i"(ARENA_PAGE_HDR_K));
		return hdr;
	}
#endif
	hdr = slot * ARENA_PAGE_HDR_K;
	return hdr;
}

/* The page-map class of page `page` (the page number) off arena_page_hdr's
 * hdr. */
ALWAYS_INLINE uintptr_t
arena_page_hdr_pclass(uintptr_t hdr, uintptr_t page) {
	return ((const uint8_t *)hdr)[offsetof(arena_chunk_t, pmap) + offsetof(arena_page_t, cls) +
	                              page * sizeof(arena_page_t)];
}

/* Size class + 1 of the object at ptr (a pointer into an arena chunk):
 * one load. PCLASS_NONE when no object starts on that page. */
ALWAYS_INLINE unsigned
arena_ptr_pclass(const void *ptr) {
	return arena_pclass_get(arena_chunk_of(ptr), arena_pageind(ptr));
}

/*
 * The interior-pointer test of free's hit path. The offset of ptr in its
 * small run, (ptr + (its page's bias << 8)) mod 2^16, is exact because runs are
 * at most 64 KiB when pages are 4 KiB (test/unit/region_start checks; with
 * larger pages the bias is 32 bits, and as runs then outgrow the range below,
 * free divides instead). ptr starts a region iff the offset
 * is a multiple of the class size d, which arena_region_start tests without
 * a division (Lemire, Kaser and Kurz, "Faster remainder by direct
 * computation", 2019): with M = ceil(2^32 / d), x is a multiple of d iff
 * x * M mod 2^32 < M, for every x below 2^32 / d (here below 2^16 * 4 KiB
 * / d, the run size: test/unit/region_start checks every offset of every
 * class). When d is a power of two M * d = 2^32 and the test is exact for
 * every x.
 */
ALWAYS_INLINE uint32_t
arena_region_offset(const arena_chunk_t *chunk, uintptr_t pageind, const void *ptr) {
	if (sizeof(arena_pbias_t) == 1) {
		return (uint16_t)((uintptr_t)ptr +
		                  ((uint32_t)chunk->pmap[pageind].bias << ARENA_PBIAS_SHIFT));
	}
	return (arena_pbias_t)((arena_pbias_t)(uintptr_t)ptr + chunk->pmap[pageind].bias);
}

/* M of class size d (d <= 2^32 / 2, so the result fits). */
ALWAYS_INLINE uint32_t
arena_region_magic(size_t d) {
	return (uint32_t)((((uint64_t)1 << 32) + d - 1) / d);
}

/* Whether offset x is a multiple of the class whose magic is m (0: never). */
ALWAYS_INLINE bool
arena_region_start(uint32_t x, uint32_t m) {
	return x * m < m;
}

/* Sets the bias of the npages pages at pi, a small run at base. */
ALWAYS_INLINE void
arena_pbias_set(arena_chunk_t *c, size_t pi, size_t npages, const void *base) {
	arena_pbias_t bias = (arena_pbias_t)((0 - (uintptr_t)base) >> ARENA_PBIAS_SHIFT);
	for (size_t i = 0; i < npages; i++) {
		c->pmap[pi + i].bias = bias;
	}
}

/* Aborts with one line naming ptr and `what` ("invalid pointer", "double
 * free"): a free, realloc or sdallocx of a pointer the arena did not hand
 * out, or of one already freed. */
COLD NOINLINE __attribute__((noreturn)) void arena_report_bad_free(const void *ptr,
                                                                   const char *what);

/* Aborts with a report unless ptr is the start of a region of small class
 * binind (and, in debug builds, one in use). No lock in release builds:
 * the run descriptor of a page holding live regions does not change. */
void arena_check_small(const void *ptr, szind_t binind);
/* The same, in every build also that the region is in use (takes the bin
 * lock): the confirmation of a suspected double free (tcache.c). */
void arena_check_small_in_use(const void *ptr, szind_t binind);

/*
 * Migration. With per-CPU arenas, a thread that moves to another CPU for
 * good starts allocating from that CPU's arena, while the objects it
 * allocated before keep coming back, freed, to the arena it left: that
 * arena's freed pages would stay resident until decay while the new arena
 * faults in a working set of its own. arena_abandon (called by the thread
 * when it rebinds) marks the arena it leaves so that it purges its dirty
 * pages down to a sixteenth of its active ones at once, and again each time
 * the pages freed into it from then on exceed an eighth;
 * arena_note_alloc, on every path that allocates from an arena, clears the
 * mark again as soon as any thread still (or again) allocates there.
 *
 * A thread leaving an arena another thread allocated from after it (short
 * -lived threads of a pool, several threads per CPU) does not mark it: the
 * others will reuse what it frees, and purging it would only make them
 * fault the pages in again. So arena_note_alloc also records who allocated
 * last (arena->last_thread, one load on those slow paths, and a store only
 * when the thread changes), and arena_abandon marks the arena only when
 * the thread leaving it was that thread.
 */
void arena_abandon(arena_t *arena);

/* An address unique to the calling thread (a thread-local byte's): the
 * identity arena->last_thread records. */
#if ALLOC_CONFIG_INITIAL_EXEC_TLS
extern __thread char arena_thread_self __attribute__((tls_model("initial-exec")));
#else
extern __thread char arena_thread_self;
#endif

ALWAYS_INLINE void
arena_note_alloc(arena_t *arena) {
	const void *self = &arena_thread_self;
	if (unlikely(__atomic_load_n(&arena->last_thread, __ATOMIC_RELAXED) != self)) {
		__atomic_store_n(&arena->last_thread, self, __ATOMIC_RELAXED);
	}
	if (unlikely(__atomic_load_n(&arena->abandoned, __ATOMIC_RELAXED))) {
		__atomic_store_n(&arena->abandoned, false, __ATOMIC_RELAXED);
	}
}

/* Under arena->lock: gives the wholly free chunks the arena keeps for
 * their kept runs (MAP_KEEP; the spare aside) to the chunk cache, for a
 * huge request that no dirty cached span fits, the decay's purge and the
 * out-of-memory retry (arena_run.c). */
void arena_release_empty(arena_t *arena);

void *arena_malloc_small(arena_t *arena, szind_t binind, bool zero);
void *arena_malloc_large(arena_t *arena, szind_t szind, size_t alignment, bool zero);
/*
 * malloc's large run for a request of `size` bytes (class szind, page
 * alignment, not zeroed). When the run is carved from memory that was not
 * zeroed (reused dirty pages), the whole pages of its class past the request
 * that may be resident (all of them, unless the run is a kept one whose
 * resident length is known: arena_run_alloc_large) are purged once they
 * number at least LARGE_TAIL_PURGE_MIN: they would stay resident although
 * nobody asked for them (doc/design.md, "Class tails"). They stay active
 * (allocated) pages; the purge counts in stats npurge.
 */
#define LARGE_TAIL_PURGE_MIN ((size_t)8)
/* The shortest large run kept apart when freed (MAP_KEEP): classes whose
 * spacing is at least LARGE_TAIL_PURGE_MIN pages, where a tail is worth
 * purging. */
#define LARGE_KEEP_MIN_PAGES (4 * LARGE_TAIL_PURGE_MIN)
/* Dirty free runs shorter than this are holes to the high-water bound. */
#define ARENA_HOLE_MAX_PAGES LARGE_KEEP_MIN_PAGES
void *arena_malloc_large_request(arena_t *arena, szind_t szind, size_t size);

/* Fills ptrs[0..n) with regions of bin binind; returns how many it got
 * (fewer only when memory is short). Regions other threads handed over
 * (bin_t.remote) come first, as they are; then regions from the runs,
 * lowest address first. */
unsigned arena_bin_fill(arena_t *arena, szind_t binind, void **ptrs, unsigned n);

/* Frees a small region / a large run. ptr must have been checked to lie in
 * an arena chunk with the given size class. */
void arena_dalloc_small(void *ptr, szind_t binind);
/* Start of the region of small class binind that contains ptr (ptr lies in
 * a run of that class). No lock: a live region's run does not change. */
void *arena_small_region_base(const void *ptr, szind_t binind);
void arena_dalloc_large(void *ptr, szind_t szind);
/* The same for the old block of a copying reallocation: its pages are
 * purged at once (when the arena purges at all) rather than left dirty for
 * decay (see doc/design.md, "Huge reallocation"). */
void arena_dalloc_large_purged(void *ptr, szind_t szind);

/* A block of size class ind (small or large: ind < SZ_NPAGED) taken
 * straight from arena, not zeroed, page-aligned when large; NULL when memory
 * is short. For the allocator's own blocks (thread-cache stacks, the
 * quarantine), which no thread cache holds. */
static inline void *
arena_malloc_paged(arena_t *arena, szind_t ind) {
	return ind < SZ_NSMALL ? arena_malloc_small(arena, ind, false)
	                       : arena_malloc_large(arena, ind, PAGE, false);
}

/* Frees a block of size class ind < SZ_NPAGED into its arena (checked as
 * arena_dalloc_small / arena_dalloc_large require). */
static inline void
arena_dalloc_paged(void *ptr, szind_t ind) {
	if (ind < SZ_NSMALL) {
		arena_dalloc_small(ptr, ind);
	} else {
		arena_dalloc_large(ptr, ind);
	}
}

/* Frees those of ptrs[0..n) (all of small class binind) that belong to the
 * arena owning ptrs[0], under one bin lock, and moves the others to the
 * front of ptrs; returns how many are left. Call until it returns 0.
 * `nrequests` (thread-cache hits) is added to that bin's stats. When the
 * bin's lock is busy, the regions go to the bin's remote list instead
 * (bin_t.remote), without waiting. */
unsigned arena_bin_flush(void **ptrs, unsigned n, szind_t binind, uint64_t nrequests);

/* The same without any lock: pushes those of ptrs[0..n) that belong to the
 * arena owning ptrs[0] onto its bin's remote list, for that arena's threads
 * to free into the runs on their next slow path (thread caches flushing
 * objects of an arena other than their thread's, tcache.c). Builds whose
 * fill options own the freed bytes (junk, write-after-free checks) take
 * the lock instead (arena_bin_flush). */
unsigned arena_bin_hand_over(void **ptrs, unsigned n, szind_t binind, uint64_t nrequests);

/* Takes the remote list of bin (of arena a) without its lock (a fill about
 * to take it): copies the first regions, at most max, to taken[] and
 * returns how many; *rest is the chain of the others (NULL when none). 0
 * when the list is empty, or another thread took it first. Each region's
 * link is marked as it is read (a region pushed twice is reported). The
 * caller hands them to a cache as they are or frees them under the lock;
 * until then they stay allocated. */
unsigned arena_bin_remote_take(const arena_t *a, bin_t *bin, void **taken, unsigned max,
                               void **rest);

/* Drains the remote lists of every bin of arena a: explicit purges and the
 * decay sweeps, so regions handed over to an arena that no thread uses any
 * more are freed (and their runs purged) all the same. With `wait` false a
 * bin whose lock is busy is skipped: its holder drains it. */
void arena_bins_remote_drain(arena_t *a, bool wait);

/* Under bin->lock: frees the regions on bin's remote list into their runs
 * (arena_bin_flush's busy path). Cheap when the list is empty. */
void arena_bin_remote_drain(arena_t *arena, bin_t *bin);

/* The same for large objects of class szind, under one arena lock. */
unsigned arena_large_flush(void **ptrs, unsigned n, szind_t szind, uint64_t nrequests);

/* The same without any lock: pushes those of ptrs[0..n) (large, class
 * szind) that belong to the arena owning ptrs[0] onto its large_remote
 * list, for the arena to free under its lock when it next takes it
 * (thread caches flushing objects of an arena other than their thread's).
 * Builds whose fill options own the freed bytes take the lock instead. */
unsigned arena_large_hand_over(void **ptrs, unsigned n, szind_t szind, uint64_t nrequests);

/* Under a->lock: frees the objects on a's large_remote list into their
 * runs. Cheap when the list is empty. */
void arena_large_remote_drain(arena_t *a);

/* The push of both kinds of remote lists (bin_t.remote, arena_t.
 * large_remote): links those of ptrs[0..n) that belong to the arena
 * owning ptrs[0] into a chain through word `link` of each, and pushes it
 * onto *list with one release compare-and-swap; moves the others to the
 * front of ptrs and returns how many are left. With tag_word non-zero,
 * that word of the first object linked (ptrs[0]) is set to `tag` and that
 * of the others to 0. */
unsigned arena_remote_push(void **list, void **ptrs, unsigned n, size_t link, size_t tag_word,
                           uintptr_t tag);

/* Resizes a large allocation in place to the large class `new_szind`;
 * returns false if it cannot (then nothing changed). Zeroes the grown tail
 * when `zero`. */
bool arena_ralloc_large_in_place(void *ptr, szind_t old_szind, szind_t new_szind, bool zero);

/* A consistent copy of an arena's counters (stats.arenas.<i>.*). */
typedef struct {
	unsigned nthreads;
	/* Pages in use by objects (small runs, large and huge objects). */
	size_t pactive;
	/* Dirty pages: free pages in runs and dirty cached chunk bytes. */
	size_t pdirty;
	/* Muzzy pages: free runs purged lazily, not yet for good. */
	size_t pmuzzy;
	/* Nanoseconds since the arena was made. */
	uint64_t uptime_ns;
	/* The arena's decay times (ms; -1 in the merged view). */
	ssize_t dirty_decay_ms;
	ssize_t muzzy_decay_ms;
	/* Purges by stage (jemalloc 5); npurge, nmadvise and purged below
	 * are their sums (jemalloc 4). */
	uint64_t dirty_npurge;
	uint64_t dirty_nmadvise;
	uint64_t dirty_purged;
	uint64_t muzzy_npurge;
	uint64_t muzzy_nmadvise;
	uint64_t muzzy_purged;
	/* Bytes mapped by this arena (chunks, huge spans, cached spans). */
	size_t mapped;
	/* Mapped bytes held in the chunk cache already purged. */
	size_t retained;
	/* Metadata: chunk-header bytes of the arena's chunks, and base
	 * memory made for the arena (stats.arenas.<i>.metadata.*). */
	size_t metadata_mapped;
	size_t metadata_allocated;
	uint64_t npurge;
	uint64_t nmadvise;
	uint64_t purged;
	size_t allocated_small;
	uint64_t nmalloc_small;
	uint64_t ndalloc_small;
	uint64_t nrequests_small;
	size_t allocated_large;
	uint64_t nmalloc_large;
	uint64_t ndalloc_large;
	uint64_t nrequests_large;
	size_t allocated_huge;
	uint64_t nmalloc_huge;
	uint64_t ndalloc_huge;
	uint64_t nrequests_huge;
	bin_stats_t bins[SZ_NSMALL];
	large_stats_t lstats[SZ_NLARGE];
	large_stats_t hstats[SZ_NHUGE];
} arena_stats_snapshot_t;

/* Fills *out from the arena's counters under its locks. Thread-cache hits
 * not yet merged are added by the caller (tcache_stats_add). */
void arena_stats_read(arena_t *arena, arena_stats_snapshot_t *out);

/* Discards every small and large allocation of the arena (arena.<i>.reset
 * calls huge_reset first for its huge ones): its chunks go back to its
 * chunk cache. Thread caches holding its objects must have been flushed. */
void arena_reset(arena_t *arena);

/*
 * Purging settings (arena.<i>.dirty_decay_ms / muzzy_decay_ms, their 4.x
 * view arena.<i>.decay_time, arena.<i>.lg_dirty_mult) and their defaults
 * for arenas created later (arenas.*). Setters return true for a value out
 * of range; setting an arena's decay time purges at once what the new
 * curve allows no longer.
 */
typedef enum {
	DECAY_STAGE_DIRTY = 0,
	DECAY_STAGE_MUZZY = 1,
} decay_stage_t;

ALWAYS_INLINE bool
arena_decay_time_valid(ssize_t decay_time) {
	return decay_time >= -1 && decay_time <= DECAY_TIME_MAX;
}

ALWAYS_INLINE bool
arena_decay_ms_valid(ssize_t ms) {
	return ms >= -1 && ms <= DECAY_MS_MAX;
}

ALWAYS_INLINE bool
arena_lg_dirty_mult_valid(ssize_t lg_dirty_mult) {
	return lg_dirty_mult >= -1 && lg_dirty_mult < (ssize_t)(sizeof(size_t) * 8);
}

ssize_t arena_decay_ms_get(arena_t *arena, decay_stage_t stage);
bool arena_decay_ms_set(arena_t *arena, decay_stage_t stage, ssize_t ms);
ssize_t arena_lg_dirty_mult_get(arena_t *arena);
bool arena_lg_dirty_mult_set(arena_t *arena, ssize_t lg_dirty_mult);
ssize_t arenas_decay_ms_get(decay_stage_t stage);
bool arenas_decay_ms_set(decay_stage_t stage, ssize_t ms);
ssize_t arenas_lg_dirty_mult_get(void);
bool arenas_lg_dirty_mult_set(ssize_t lg_dirty_mult);

/* arena.<i>.chunk_hooks: reads / replaces the arena's chunk hooks (see
 * chunk.h). Setting returns true if a member is NULL. */
void arena_chunk_hooks_get(arena_t *arena, chunk_hooks_t *out);
bool arena_chunk_hooks_set(arena_t *arena, const chunk_hooks_t *hooks);

/* arena.<i>.extent_hooks: the same hooks as jemalloc 5's extent_hooks_t
 * (extent_hooks.h). Setting returns true if hooks is NULL or has no alloc
 * member. */
extent_hooks_t *arena_extent_hooks_get(arena_t *arena);
bool arena_extent_hooks_set(arena_t *arena, extent_hooks_t *hooks);

/* After huge_reset and arena_reset: on an arena with program-supplied
 * hooks the freed chunks go back through the dalloc hook at once (reset);
 * `destroy` (arena.<i>.destroy) gives every cached span back, whatever the
 * hooks, and hands the spans dalloc refuses to the extent destroy hook. */
void arena_give_back(arena_t *arena, bool destroy);

/* Purges what the arena's decay curve (or ratio) says is due now
 * (arena.<i>.decay). */
void arena_decay(arena_t *arena);

/* Lets decay advance from paths that do not free pages (thread-cache GC
 * and flushes), so a program served from its caches still purges. Cheap
 * when nothing is due. */
void arena_decay_tick(arena_t *arena);

/* One background round for the arena: purges what is due and returns the
 * nanoseconds until its decay can purge again (UINT64_MAX: nothing dirty,
 * or no time-based purging). */
uint64_t arena_decay_background(arena_t *arena);

/* Called from slow paths of any thread: about every 100 ms lets the decay
 * of every arena advance. With per-CPU arenas a thread may free memory into
 * one arena and then run on another CPU; without this sweep the first
 * arena would keep its dirty pages until some thread used it again. */
void arena_decay_sweep_if_due(void);

/* With arena->lock held, as the last step of an operation that may have
 * dirtied pages: purges what the policy says is due. May drop and retake
 * the lock around madvise. (Also used by huge.c.) */
void arena_maybe_purge(arena_t *arena);

/*
 * The bound on freed memory held resident while the arena grows. With
 * arena->lock held, before the arena makes `npages` pages resident that are
 * not dirty (a clean run, a new chunk, a huge span that no dirty cached span
 * could serve); `cached`: the pages may still come from a cached chunk
 * (arena_run_alloc), which is no growth when the chunk cache holds a dirty
 * one of resident pages. Only in arenas that purge at all (arena_purges).
 * May drop and retake the lock around madvise, so the caller must look for
 * memory again afterwards.
 *
 * By default (opt.lg_dirty_bound -1) the high-water bound: the arena's
 * footprint (active pages, page runs and huge, plus dirty ones) may grow
 * past its highest value so far only while it holds at most a chunk's worth
 * of dirty pages, or at most a sixty-fourth of its active pages, or holes
 * (dirty runs shorter than ARENA_HOLE_MAX_PAGES) of at most a sixteenth of
 * them (the memory in use, which later requests fill again: doc/design.md,
 * "What the high-water bound keeps"). Growth past it is traded, in steps of a
 * chunk's worth, for purging as many of the oldest dirty pages (cached
 * spans split to what is traded, then the runs of the least recently
 * dirtied chunks): memory freed and not reused cannot add to the resident
 * set's peak, while memory that requests fit is still reused without a
 * purge, and a program that stays below its peak is left to decay.
 *
 * opt.lg_dirty_bound >= 0 replaces it with a bound relative to the active
 * pages: if the arena holds more dirty pages than its active pages >>
 * lg_dirty_bound, and more than a chunk's worth, it purges as many of its
 * oldest dirty pages as it is about to fault in, no more than the excess.
 */
extern ssize_t opt_lg_dirty_bound;
void arena_grow_bound(arena_t *arena, size_t npages, bool cached);

/* Purges every dirty free page and cached chunk; returns bytes purged. */
size_t arena_purge_all(arena_t *arena);

/* With arena->lock held, after a chunk could not be mapped: gives back the
 * spare chunk and the spans cached by this arena and, without waiting for
 * their locks, by the others (chunk_cache_release), so the caller can try
 * once more. Returns true if anything was released. */
bool arena_release_cached(arena_t *arena);

void arena_prefork(void);
void arena_postfork_parent(void);
void arena_postfork_child(void);

#endif
