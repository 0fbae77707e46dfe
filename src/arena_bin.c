/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small size classes (see arena.h): each bin serves one class from runs of
 * equal regions, a bitmap per run saying which are in use. Bins fill and
 * flush thread caches in batches under one lock round. Everything here runs
 * under the bin's lock, taking arena->lock only to get or give back a run's
 * pages.
 */
#include "alloc/internal/arena.h"

#include <string.h>

#include "alloc/internal/arena_run.h"
#include "alloc/internal/arena_validate.h"
#include "alloc/internal/base.h"
#include "alloc/internal/fill.h"

bin_info_t bin_infos[SZ_NSMALL];

static void bin_unlock(arena_t *a, bin_t *bin);
static void bin_remote_free(arena_t *a, bin_t *bin, void **taken, unsigned n, void *p);
static unsigned bin_remote_walk(const arena_t *a, const bin_t *bin, void **out, unsigned max,
                                void **p);

/* Regions a fill takes off its bin's remote list before its lock, at most:
 * a thread cache hands over up to 100 at a time. */
#define BIN_TAKE_MAX 256

static size_t
gcd(size_t a, size_t b) {
	while (b != 0) {
		size_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

void
arena_bin_boot(void) {
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
		/* Also free's interior-pointer test, whose offsets in a run
		 * are 16 bits wide: test/unit/region_start checks that every
		 * run fits. */
		info->div_magic = arena_region_magic(reg);
		info->bitmap_ngroups = BITMAP_NGROUPS(info->nregs);
		info->run_desc_size = sizeof(run_t) + info->bitmap_ngroups * sizeof(bitmap_t);
	}
}

/* Sets up the descriptor of a new small run at page pi of chunk c and
 * publishes the run in the page map. */
static run_t *
bin_run_init(bin_t *bin, run_t *run, szind_t binind, arena_chunk_t *c, size_t pi) {
	const bin_info_t *info = &bin_infos[binind];
	size_t npages = info->run_size >> LG_PAGE;
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
	arena_pbias_set(c, pi, npages, run->base);
	/* Publish the class last: a page's szind says "this run's pages". */
	arena_pclass_fill(c, pi, binind + 1, npages);
	if (config_stats) {
		bin->stats.nruns++;
		bin->stats.curruns++;
	}
	return run;
}

/* A new run in a region arena: its descriptor has a fixed slot in the
 * region (arena_region_t), so nothing is allocated and nothing recycled. */
static run_t *
bin_run_new_region(arena_t *a, szind_t binind, arena_chunk_t **cp, size_t *pip) {
	const bin_info_t *info = &bin_infos[binind];
	const arena_region_t *r = a->region;
	bool zeroed;
	mutex_lock(&a->lock);
	bool ok = arena_run_alloc(a, info->run_size >> LG_PAGE, MAP_SMALL, cp, pip, &zeroed);
	mutex_unlock(&a->lock);
	if (!ok) {
		return NULL;
	}
	size_t ci = (size_t)((char *)*cp - r->chunks) >> LG_CHUNK;
	char *block = ci < r->ndesc_head
	                  ? r->desc_head + ci * arena_region_desc_block(r)
	                  : r->desc_tail + (ci - r->ndesc_head) * arena_region_desc_block(r);
	return (run_t *)(block + *pip * r->desc_slot);
}

static run_t *
bin_run_new(arena_t *a, bin_t *bin, szind_t binind) {
	const bin_info_t *info = &bin_infos[binind];
	if (a->region != NULL) {
		arena_chunk_t *c;
		size_t pi;
		run_t *run = bin_run_new_region(a, binind, &c, &pi);
		return run == NULL ? NULL : bin_run_init(bin, run, binind, c, pi);
	}
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
	/* Large runs handed over first, so that their pages can be reused. */
	arena_large_remote_drain(a);
	bool ok = arena_run_alloc(a, npages, MAP_SMALL, &c, &pi, &zeroed);
	mutex_unlock(&a->lock);
	if (!ok) {
		run->next = bin->desc_free;
		bin->desc_free = run;
		return NULL;
	}
	return bin_run_init(bin, run, binind, c, pi);
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

/*
 * Takes up to n of run's free regions (it has at least one), lowest address
 * first, into ptrs; returns how many. A fill's batch: each bitmap group is
 * read and written once, and a region costs a find-first-set and a
 * multiply, where run_reg_alloc searches from the hint for every region.
 * The hint keeps bitmap.h's invariant (every group below it is full).
 */
static unsigned
run_regs_alloc(run_t *run, const bin_info_t *info, void **ptrs, unsigned n) {
	unsigned want = n < run->nfree ? n : run->nfree;
	unsigned got = 0;
	size_t group = run->hint;
	while (got < want) {
		group = bitmap_group_nonfull(run->bitmap, info->bitmap_ngroups, group);
		/* Clear bits are free regions; the padding past nregs is set. */
		bitmap_t free = ~run->bitmap[group];
		char *first = run->base + (group << BITMAP_LG_GROUP_NBITS) * info->reg_size;
		do {
			ptrs[got++] = first + ctz_u64(free) * info->reg_size;
			free &= free - 1;
		} while (free != 0 && got < want);
		run->bitmap[group] = ~free;
		if (free == 0) {
			group++;
		}
	}
	run->hint = group;
	run->nfree -= got;
	return got;
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
	arena_validate_maybe(a, false);
	bin_t *bin = &a->bins[binind];
	arena_note_alloc(a);
	arena_lock_for_alloc(&bin->lock);
	arena_bin_remote_drain(a, bin);
	void *ret = bin_malloc_locked(a, bin, binind);
	if (config_stats && ret != NULL) {
		bin->stats.nmalloc++;
		bin->stats.nrequests++;
		bin->stats.curregs++;
	}
	bin_unlock(a, bin);
	if (zero && ret != NULL) {
		memset(ret, 0, bin_infos[binind].reg_size);
	}
	return ret;
}

unsigned
arena_bin_fill(arena_t *a, szind_t binind, void **ptrs, unsigned n) {
	arena_validate_maybe(a, false);
	bin_t *bin = &a->bins[binind];
	const bin_info_t *info = &bin_infos[binind];
	arena_note_alloc(a);
	/* Regions handed over by other threads (bin_t.remote): the first n
	 * go to the cache as they are, still marked in use in their runs'
	 * bitmaps (which is what a cached region is), so neither the free
	 * into the run nor the allocation out of it is paid for them. The
	 * links are read (one cache miss each, in another CPU's cache)
	 * before the lock is taken, and so are those of up to BIN_TAKE_MAX
	 * more, which the lock is held only to free. */
	void *rest;
	unsigned got = arena_bin_remote_take(a, bin, ptrs, n, &rest);
	void *taken[BIN_TAKE_MAX];
	unsigned ntaken = 0;
	if (rest != NULL) {
		ntaken = bin_remote_walk(a, bin, taken, BIN_TAKE_MAX, &rest);
	}
	arena_lock_for_alloc(&bin->lock);
	if (got != 0 || ntaken != 0) {
		bin_remote_free(a, bin, taken, ntaken, rest);
	}
	if (config_stats) {
		/* A region taken as it is counts as freed and allocated again. */
		bin->stats.ndalloc += got;
		bin->stats.curregs -= got;
	}
	arena_bin_remote_drain(a, bin);
	while (got < n) {
		run_t *run = bin->runcur;
		if (run == NULL || run->nfree == 0) {
			run = bin_refill_runcur(a, bin, binind);
			if (run == NULL) {
				break;
			}
		}
		got += run_regs_alloc(run, info, ptrs + got, n - got);
	}
	if (config_stats) {
		bin->stats.nmalloc += got;
		bin->stats.nfills++;
		bin->stats.curregs += got;
	}
	bin_unlock(a, bin);
	return got;
}

/* The index of the region `diff` bytes into a run of class info (diff <
 * run_size): division by the region size as a multiply; false when diff is
 * not a region's start. */
ALWAYS_INLINE bool
bin_region_index(const bin_info_t *info, size_t diff, size_t *idx) {
	*idx = (size_t)(((uint64_t)diff * info->div_magic) >> 32);
	return *idx * info->reg_size == diff;
}

/* Whether ptr is the start of a region of `run`; if so, *idx is its index
 * (one multiply by the class's reciprocal, no division). */
static inline bool
run_region_index(const run_t *run, const void *ptr, size_t *idx) {
	const bin_info_t *info = &bin_infos[run->binind];
	size_t diff = (size_t)((const char *)ptr - run->base);
	return diff < info->run_size && bin_region_index(info, diff, idx);
}

/* Lets go of bin's lock; then, when the bin gave pages back to the arena
 * while holding it, lets the arena purge what its policy says is due. So a
 * bin's lock is never held across a purge's madvise calls, and a flush
 * that empties many runs purges once. */
static void
bin_unlock(arena_t *a, bin_t *bin) {
	bool purge = bin->purge_due;
	bin->purge_due = false;
	mutex_unlock(&bin->lock);
	if (purge) {
		mutex_lock(&a->lock);
		arena_maybe_purge(a);
		mutex_unlock(&a->lock);
	}
}

/*
 * Under the bin lock: a region of run was just freed, and that made the run
 * empty (nfree == nregs) or no longer full (nfree == 1). An empty run gives
 * its pages back; a run that was full joins the nonfull list. Invariant
 * kept (arena_validate checks it): a run other than runcur is on the
 * nonfull list exactly when 0 < nfree < nregs; an empty run is never kept.
 * Its descriptor stays readable (base memory, or a region arena's fixed
 * slot) and unused until the bin makes a new run under this lock.
 */
static void
bin_run_freed_edge(arena_t *a, bin_t *bin, const bin_info_t *info, run_t *run) {
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
		mutex_unlock(&a->lock);
		/* Purging may madvise: bin_unlock does it, once, after the
		 * bin's lock is free again. */
		bin->purge_due = true;
		if (a->region == NULL) {
			run->next = bin->desc_free;
			bin->desc_free = run;
		}
		if (config_stats) {
			bin->stats.curruns--;
		}
	} else if (run != bin->runcur) {
		bin_nonfull_insert(bin, run);
	}
}

/*
 * Under bin->lock: frees those of ptrs[0..n) (regions of class binind) that
 * belong to arena a into their runs, moves the others to the front of ptrs
 * and returns how many are left; the bin's ndalloc and curregs count the
 * freed ones. Every free path of small regions comes here (flushes, remote
 * lists, single frees).
 *
 * A region costs its region index (a multiply), the region-start check,
 * the test-and-clear of its bitmap bit (which catches a double free, also
 * of a region twice in the same batch), the run's hint and count, and one
 * compare for the two edges of the run's count (bin_run_freed_edge). The
 * page-map lookup and the arena check are made only when a region is not
 * in the previous region's run, i.e. not within run_size bytes of its base
 * (runs do not overlap, so that is the page map's answer too): consecutive
 * regions of one run, frequent in a flush since a fill hands a run's
 * regions out in address order, skip them. Before the first lookup `base`
 * is 0, and no pointer of an arena chunk is below run_size (chunks are
 * chunk-aligned and never at address 0). A run emptied by the batch keeps
 * its descriptor meanwhile (bin_run_freed_edge): a later region of it in
 * the batch finds its bit clear and is reported as a double free.
 */
static unsigned
bin_dalloc_batch(arena_t *a, bin_t *bin, szind_t binind, void **ptrs, unsigned n) {
	const bin_info_t *info = &bin_infos[binind];
	const size_t run_size = info->run_size;
	const uint32_t nregs = info->nregs;
	run_t *run = NULL;
	/* Addresses as integers: base starts at 0, no object's address. */
	uintptr_t base = 0;
	unsigned left = 0;
	for (unsigned i = 0; i < n; i++) {
		void *ptr = ptrs[i];
		size_t diff = (uintptr_t)ptr - base;
		if (unlikely(diff >= run_size)) {
			arena_chunk_t *c = arena_chunk_of(ptr);
			if (c->arena != a) {
				ptrs[left++] = ptr;
				continue;
			}
			run = c->misc[arena_pageind(ptr)].run;
			if (unlikely(run->binind != binind)) {
				arena_report_bad_free(ptr, "invalid pointer");
			}
			base = (uintptr_t)run->base;
			diff = (uintptr_t)ptr - base;
		}
		size_t idx;
		if (unlikely(!bin_region_index(info, diff, &idx))) {
			arena_report_bad_free(ptr, "invalid pointer");
		}
		size_t group = idx >> BITMAP_LG_GROUP_NBITS;
		bitmap_t bit = (bitmap_t)1 << (idx & BITMAP_GROUP_MASK);
		if (unlikely((run->bitmap[group] & bit) == 0)) {
			arena_report_bad_free(ptr, "double free");
		}
		run->bitmap[group] &= ~bit;
		if (group < run->hint) {
			run->hint = group;
		}
		/* nfree is 1 or nregs: one unsigned compare for the two. */
		uint32_t nfree = ++run->nfree;
		if (unlikely(nfree - 2 >= nregs - 2)) {
			bin_run_freed_edge(a, bin, info, run);
		}
	}
	if (config_stats) {
		bin->stats.ndalloc += n - left;
		bin->stats.curregs -= n - left;
	}
	return left;
}

/* ---------------------------------------------------------------------- */
/* Remote frees (bin_t.remote, whose invariants arena.h states).
 *
 * A thread flushing its cache into a bin whose lock someone else holds (the
 * threads allocating from that arena fill from it, other threads flush
 * into it) does not wait: it links its regions into a chain through their
 * second words (bin_remote_word) and pushes the chain with one
 * compare-and-swap. Whoever holds the lock next frees the whole list into
 * the runs, in one pass and under the lock it holds anyway; a fill first
 * hands the regions at the head of the list to its cache as they are. So
 * a free never sleeps on a lock and the owner pays for remote frees in
 * batches, on its slow path. */

/* Where a region on a remote list holds the link: its second word, so the
 * thread-cache key in its first word stays and a double free of the region
 * is still caught on the hit path (tcache.h); the 8-byte class has only the
 * first. */
static size_t
bin_remote_word(const bin_t *bin, const arena_t *a) {
	return bin_infos[bin - a->bins].reg_size >= 2 * sizeof(void *);
}

/* Regions of a remote chain freed per batch: their links are read first
 * (freeing may give a run's pages back). */
#define BIN_CHAIN_BATCH 64

/* What a region's link is set to once a walk has read it: no region's
 * address (regions are at least 8-byte aligned), and not NULL. */
#define BIN_REMOTE_WALKED ((void *)(uintptr_t)1)

/*
 * Copies up to max regions of the chain at *p (taken off bin's remote
 * list) to out[] and returns how many; *p becomes the chain of the others.
 * Each region's link is overwritten with BIN_REMOTE_WALKED as it is read:
 * a region pushed twice (a double free) makes the chain come back to it,
 * and then the link read is the mark, reported before the region could be
 * handed out twice (arena_bin_fill gives regions to a cache without
 * their bitmap, which would catch it) or the walk could loop. A chain is
 * walked only once, so a link written by a push is never the mark.
 */
static unsigned
bin_remote_walk(const arena_t *a, const bin_t *bin, void **out, unsigned max, void **p) {
	size_t word = bin_remote_word(bin, a);
	void *q = *p;
	unsigned n = 0;
	while (q != NULL && n < max) {
		void **link = (void **)q + word;
		out[n++] = q;
		q = *link;
		if (unlikely(q == BIN_REMOTE_WALKED)) {
			arena_report_bad_free(out[n - 1], "double free");
		}
		*link = BIN_REMOTE_WALKED;
	}
	*p = q;
	return n;
}

/* Under bin->lock: frees the n regions at taken[] and then the chain at
 * p, all taken off bin's remote list, into their runs, and folds the
 * pushes' counters into the stats. A region pushed twice (a double free)
 * is caught by bin_remote_walk's mark, or by bin_dalloc_batch's bitmap
 * test, before the chain could loop. */
static void
bin_remote_free(arena_t *a, bin_t *bin, void **taken, unsigned n, void *p) {
	szind_t binind = (szind_t)(bin - a->bins);
	if (n != 0) {
		unsigned left = bin_dalloc_batch(a, bin, binind, taken, n);
		assert_internal(left == 0);
		(void)left;
	}
	while (p != NULL) {
		void *chain[BIN_CHAIN_BATCH];
		unsigned m = bin_remote_walk(a, bin, chain, BIN_CHAIN_BATCH, &p);
		unsigned left = bin_dalloc_batch(a, bin, binind, chain, m);
		assert_internal(left == 0);
		(void)left;
	}
	if (config_stats) {
		bin->stats.nflushes +=
		    __atomic_exchange_n(&bin->remote_nflushes, 0, __ATOMIC_RELAXED);
		bin->stats.nrequests +=
		    __atomic_exchange_n(&bin->remote_nrequests, 0, __ATOMIC_RELAXED);
	}
}

void
arena_bin_remote_drain(arena_t *a, bin_t *bin) {
	if (__atomic_load_n(&bin->remote, __ATOMIC_RELAXED) == NULL) {
		return;
	}
	bin_remote_free(a, bin, NULL, 0, __atomic_exchange_n(&bin->remote, NULL, __ATOMIC_ACQUIRE));
}

unsigned
arena_bin_remote_take(const arena_t *a, bin_t *bin, void **taken, unsigned max, void **rest) {
	*rest = NULL;
	if (max == 0 || __atomic_load_n(&bin->remote, __ATOMIC_RELAXED) == NULL) {
		return 0;
	}
	/* NULL when another thread took the list since the load. */
	*rest = __atomic_exchange_n(&bin->remote, NULL, __ATOMIC_ACQUIRE);
	return bin_remote_walk(a, bin, taken, max, rest);
}

unsigned
arena_remote_push(void **list, void **ptrs, unsigned n, size_t link, size_t tag_word,
                  uintptr_t tag) {
	const arena_t *a = arena_chunk_of(ptrs[0])->arena;
	void *head = NULL;
	void *tail = NULL;
	unsigned left = 0;
	for (unsigned i = 0; i < n; i++) {
		void **words = ptrs[i];
		if (arena_chunk_of(words)->arena != a) {
			ptrs[left++] = words;
			continue;
		}
		words[link] = head;
		if (tag_word != 0) {
			words[tag_word] = tail == NULL ? (void *)tag : NULL;
		}
		if (tail == NULL) {
			tail = words;
		}
		head = words;
	}
	void *old = __atomic_load_n(list, __ATOMIC_RELAXED);
	do {
		((void **)tail)[link] = old;
	} while (!__atomic_compare_exchange_n(list, &old, head, true, __ATOMIC_RELEASE,
	                                      __ATOMIC_RELAXED));
	return left;
}

/* Pushes those of ptrs[0..n) that belong to arena a onto bin's remote list
 * (lock-free), moving the others to the front of ptrs; returns how many
 * are left. */
static unsigned
bin_remote_push(arena_t *a, bin_t *bin, void **ptrs, unsigned n, uint64_t nrequests) {
	unsigned left = arena_remote_push(&bin->remote, ptrs, n, bin_remote_word(bin, a), 0, 0);
	if (config_stats) {
		__atomic_fetch_add(&bin->remote_nflushes, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&bin->remote_nrequests, nrequests, __ATOMIC_RELAXED);
	}
	return left;
}

/* arena_check_small, and also that the region is in use when `in_use` is
 * set. */
static void
bin_check_region(const void *ptr, szind_t binind, bool in_use) {
	arena_chunk_t *c = arena_chunk_of(ptr);
	run_t *run = c->misc[arena_pageind(ptr)].run;
	size_t idx;
	if (unlikely(run->binind != binind || !run_region_index(run, ptr, &idx))) {
		arena_report_bad_free(ptr, "invalid pointer");
	}
	if (in_use) {
		bin_t *bin = &c->arena->bins[binind];
		mutex_lock(&bin->lock);
		/* A region waiting on the remote list is free already; the
		 * drain may free its whole run (its pages then start no
		 * object). */
		arena_bin_remote_drain(c->arena, bin);
		bool used = arena_ptr_pclass(ptr) == binind + 1 &&
		            c->misc[arena_pageind(ptr)].run == run && bitmap_get(run->bitmap, idx);
		bin_unlock(c->arena, bin);
		if (unlikely(!used)) {
			arena_report_bad_free(ptr, "double free");
		}
	}
}

void
arena_check_small(const void *ptr, szind_t binind) {
	bin_check_region(ptr, binind, config_debug);
}

void
arena_check_small_in_use(const void *ptr, szind_t binind) {
	bin_check_region(ptr, binind, true);
}

void
arena_dalloc_small(void *ptr, szind_t binind) {
	arena_t *a = arena_chunk_of(ptr)->arena;
	bin_t *bin = &a->bins[binind];
	mutex_lock(&bin->lock);
	arena_bin_remote_drain(a, bin);
	bin_dalloc_batch(a, bin, binind, &ptr, 1);
	bin_unlock(a, bin);
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
arena_bin_hand_over(void **ptrs, unsigned n, szind_t binind, uint64_t nrequests) {
	if (config_fill && fill_slow_paths) {
		return arena_bin_flush(ptrs, n, binind, nrequests);
	}
	arena_t *a = arena_chunk_of(ptrs[0])->arena;
	return bin_remote_push(a, &a->bins[binind], ptrs, n, nrequests);
}

void
arena_bins_remote_drain(arena_t *a, bool wait) {
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		bin_t *bin = &a->bins[i];
		if (__atomic_load_n(&bin->remote, __ATOMIC_RELAXED) == NULL) {
			continue;
		}
		if (wait) {
			mutex_lock(&bin->lock);
		} else if (!mutex_trylock(&bin->lock)) {
			/* Its holder drains it before letting go. */
			continue;
		}
		arena_bin_remote_drain(a, bin);
		bin_unlock(a, bin);
	}
}

unsigned
arena_bin_flush(void **ptrs, unsigned n, szind_t binind, uint64_t nrequests) {
	arena_t *a = arena_chunk_of(ptrs[0])->arena;
	arena_validate_maybe(a, false);
	bin_t *bin = &a->bins[binind];
	if (!mutex_trylock(&bin->lock)) {
		/* Busy. Debugging fills own the freed regions' bytes (junk,
		 * write-after-free checks): those builds wait instead. */
		if (!(config_fill && fill_slow_paths)) {
			return bin_remote_push(a, bin, ptrs, n, nrequests);
		}
		mutex_lock(&bin->lock);
	}
	arena_bin_remote_drain(a, bin);
	unsigned left = bin_dalloc_batch(a, bin, binind, ptrs, n);
	if (config_stats) {
		bin->stats.nflushes++;
		bin->stats.nrequests += nrequests;
	}
	/* What others pushed while this flush held the lock. */
	arena_bin_remote_drain(a, bin);
	bin_unlock(a, bin);
	return left;
}
