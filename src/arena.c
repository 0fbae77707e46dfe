/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Arenas (see arena.h): the table of arenas and their creation, the
 * purging settings' defaults, statistics snapshots, reset and fork.
 *
 * The work of an arena is in the files beside this one, each for one layer:
 *   arena_run.c       chunks carved into page runs, the free-run lists
 *   arena_purge.c     giving dirty pages back: decay, ratio, purge_all
 *   arena_bin.c       small size classes: runs of regions, bins
 *   arena_large.c     large size classes: one page run each
 *   arena_validate.c  the debug walker that checks all of the above
 * Huge allocations (whole chunks) are huge.c's.
 */
#include "alloc/internal/arena.h"

#include <sched.h>
#include <string.h>

#include "alloc/internal/arena_run.h"
#include "alloc/internal/arena_validate.h"
#include "alloc/internal/base.h"
#include "alloc/internal/extent_hooks.h"
#include "alloc/internal/message.h"
#include "alloc/internal/opt.h"

size_t arena_cactive_bytes;
arena_t *arenas[ARENAS_MAX];
unsigned narenas_total;
unsigned narenas_auto;
/* One wait in 8 acquisitions (arena.h; doc/design.md, "Per-CPU arenas
 * on demand", for the figures that chose it). */
unsigned opt_percpu_arena_waits = ARENA_SPREAD_WINDOW / 8;
bool arena_spread;
unsigned arena_lock_waits;
/* Acquisitions folded into the current window. */
static unsigned arena_window_acqs;
/* Whether waits are counted at all: not with percpu_arena:disabled, which
 * binds threads round robin, nor once spread from the start. */
static bool arena_spread_counting;
#if ALLOC_CONFIG_INITIAL_EXEC_TLS
__thread unsigned arena_thread_acqs __attribute__((tls_model("initial-exec")));
#else
__thread unsigned arena_thread_acqs;
#endif

/* Protects arena creation (arenas[], narenas_total). Lock order: after
 * init_lock, before any bin lock. */
static mutex_t arenas_lock = MUTEX_INITIALIZER;
/* Defaults for arenas created later (arenas.dirty_decay_ms,
 * arenas.muzzy_decay_ms, arenas.lg_dirty_mult); under arenas_lock. */
static ssize_t arenas_decay_ms[2];
static ssize_t arenas_lg_dirty_mult;

COLD NOINLINE void
arena_report_bad_free(const void *ptr, const char *what) {
	msg_fatal("%s: %p (free, realloc or sdallocx of a pointer not returned by malloc, "
	          "or freed twice)",
	          what, ptr);
}

void
arena_boot(void) {
	sz_boot(CHUNK_RUN_MAX_PAGES * PAGE);
	arena_run_boot();
	arena_bin_boot();
	arenas_decay_ms[DECAY_STAGE_DIRTY] = opt_dirty_decay_ms;
	arenas_decay_ms[DECAY_STAGE_MUZZY] = opt_muzzy_decay_ms;
	arenas_lg_dirty_mult = opt_lg_dirty_mult;
	arena_spread = opt_percpu_arena_waits == 0 && opt_percpu_arena != PERCPU_ARENA_DISABLED;
	arena_spread_counting =
	    opt_percpu_arena_waits != 0 && opt_percpu_arena != PERCPU_ARENA_DISABLED;
}

void
arena_note_wait(void) {
	if (!arena_spread_counting || arena_spread_now()) {
		return;
	}
	if (__atomic_add_fetch(&arena_lock_waits, 1, __ATOMIC_RELAXED) >= opt_percpu_arena_waits) {
		__atomic_store_n(&arena_spread, true, __ATOMIC_RELAXED);
	}
}

void
arena_note_acqs(void) {
	if (!arena_spread_counting || arena_spread_now()) {
		return;
	}
	if (__atomic_add_fetch(&arena_window_acqs, ARENA_ACQS_FOLD, __ATOMIC_RELAXED) >=
	    ARENA_SPREAD_WINDOW) {
		/* A new window. Folds racing with the reset are lost: the
		 * next window starts a little late. */
		__atomic_store_n(&arena_window_acqs, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&arena_lock_waits, 0, __ATOMIC_RELAXED);
	}
}

/* ---------------------------------------------------------------------- */
/* Arena creation. */

bool arena_slot_region[ARENAS_MAX];

/* Under arenas_lock, which guards the defaults. */
static bool
arena_init_locked(arena_t *a, unsigned ind) {
	a->ind = ind;
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		if (mutex_init(&a->bins[i].lock)) {
			return true;
		}
	}
	if (mutex_init(&a->lock)) {
		return true;
	}
	chunk_cache_init(&a->chunks, ind);
	/* Under arenas_lock, which guards the defaults. */
	a->created_ns = decay_now_ns();
	decay_init(&a->decay, arenas_decay_ms[DECAY_STAGE_DIRTY], a->created_ns);
	decay_init(&a->decay_muzzy, arenas_decay_ms[DECAY_STAGE_MUZZY], a->created_ns);
	a->lg_dirty_mult = arenas_lg_dirty_mult;
	return false;
}

bool
arena_init(arena_t *a, unsigned ind) {
	mutex_lock(&arenas_lock);
	bool failed = arena_init_locked(a, ind);
	mutex_unlock(&arenas_lock);
	return failed;
}

/* Under arenas_lock. */
static arena_t *
arena_new(unsigned ind) {
	arena_t *a = base_alloc(sizeof(arena_t));
	if (a == NULL) {
		return NULL;
	}
	a->stats.metadata_allocated = sizeof(arena_t);
	return arena_init_locked(a, ind) ? NULL : a;
}

unsigned
arena_install_region(arena_t *a) {
	mutex_lock(&arenas_lock);
	/* A slot a destroyed heap left first, so that creating and
	 * destroying heaps in a loop does not use up the table. */
	unsigned ind = narenas_total > narenas_auto ? narenas_total : narenas_auto;
	for (unsigned i = narenas_auto; i < narenas_total; i++) {
		if (arena_slot_region[i] && arenas[i] == NULL) {
			ind = i;
			break;
		}
	}
	if (ind < ARENAS_MAX) {
		__atomic_store_n(&arena_slot_region[ind], true, __ATOMIC_RELEASE);
		__atomic_store_n(&arenas[ind], a, __ATOMIC_RELEASE);
		if (ind >= narenas_total) {
			__atomic_store_n(&narenas_total, ind + 1, __ATOMIC_RELEASE);
		}
	}
	mutex_unlock(&arenas_lock);
	return ind;
}

void
arena_uninstall_region(unsigned ind) {
	mutex_lock(&arenas_lock);
	__atomic_store_n(&arenas[ind], NULL, __ATOMIC_RELEASE);
	mutex_unlock(&arenas_lock);
}

void
arena_chunk_hooks_get(arena_t *a, chunk_hooks_t *out) {
	mutex_lock(&a->lock);
	*out = *chunk_cache_hooks(&a->chunks);
	mutex_unlock(&a->lock);
}

bool
arena_chunk_hooks_set(arena_t *a, const chunk_hooks_t *hooks) {
	if (hooks->alloc == NULL || hooks->dalloc == NULL || hooks->commit == NULL ||
	    hooks->decommit == NULL || hooks->purge == NULL || hooks->split == NULL ||
	    hooks->merge == NULL) {
		return true;
	}
	if (a->region != NULL) {
		/* A private heap's memory is its region, nothing else. */
		return true;
	}
	mutex_lock(&a->lock);
	if (extent_hooks_is_chunk_face(hooks) && a->chunks.extent_hooks == NULL) {
		/* Another arena's extent hooks, read as chunk hooks: they
		 * would look for extent hooks this arena does not have. */
		mutex_unlock(&a->lock);
		return true;
	}
	chunk_hooks_set(&a->chunks, hooks);
	mutex_unlock(&a->lock);
	return false;
}

extent_hooks_t *
arena_extent_hooks_get(arena_t *a) {
	mutex_lock(&a->lock);
	extent_hooks_t *ret = extent_hooks_get(&a->chunks);
	mutex_unlock(&a->lock);
	return ret;
}

bool
arena_extent_hooks_set(arena_t *a, extent_hooks_t *hooks) {
	mutex_lock(&a->lock);
	bool err = extent_hooks_set(&a->chunks, hooks);
	mutex_unlock(&a->lock);
	return err;
}

void
arena_give_back(arena_t *a, bool destroy) {
	mutex_lock(&a->lock);
	if (destroy) {
		chunk_cache_destroy(&a->chunks);
	} else if (!a->chunks.hooks_are_default) {
		chunk_cache_release(&a->chunks);
	}
	mutex_unlock(&a->lock);
}

ssize_t
arenas_decay_ms_get(decay_stage_t stage) {
	mutex_lock(&arenas_lock);
	ssize_t ret = arenas_decay_ms[stage];
	mutex_unlock(&arenas_lock);
	return ret;
}

bool
arenas_decay_ms_set(decay_stage_t stage, ssize_t ms) {
	if (!arena_decay_ms_valid(ms)) {
		return true;
	}
	mutex_lock(&arenas_lock);
	arenas_decay_ms[stage] = ms;
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
	if (!arena_lg_dirty_mult_valid(lg_dirty_mult)) {
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
	/* A slot private heaps use is never given an ordinary arena. */
	if (a == NULL && !arena_slot_region[ind]) {
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
		/* Regions waiting on the remote list are freed: reads are
		 * exact once every thread's frees have returned. */
		arena_bin_remote_drain(a, bin);
		out->bins[i] = bin->stats;
		out->bins[i].nonfull_runs = bin->runcur != NULL && bin->runcur->nfree != 0;
		for (const run_t *r = bin->nonfull; r != NULL; r = r->next) {
			out->bins[i].nonfull_runs++;
		}
		mutex_unlock(&bin->lock);
		out->allocated_small += out->bins[i].curregs * bin_infos[i].reg_size;
		out->nmalloc_small += out->bins[i].nmalloc;
		out->ndalloc_small += out->bins[i].ndalloc;
		out->nrequests_small += out->bins[i].nrequests;
	}
	mutex_lock(&a->lock);
	/* Likewise the large objects handed over. */
	arena_large_remote_drain(a);
	size_t huge_pages = a->stats.allocated_huge >> LG_PAGE;
	out->pactive = a->nactive + huge_pages;
	out->pdirty = a->ndirty + (a->chunks.dirty_bytes >> LG_PAGE);
	out->mapped = a->chunks.mapped_bytes;
	out->retained = a->chunks.cached_bytes - a->chunks.dirty_bytes;
	out->pmuzzy = a->nmuzzy;
	out->uptime_ns = decay_now_ns() - a->created_ns;
	out->dirty_decay_ms = a->decay.time;
	out->muzzy_decay_ms = a->decay_muzzy.time;
	out->dirty_npurge = a->stats.npurge;
	out->dirty_nmadvise = a->stats.nmadvise;
	out->dirty_purged = a->stats.purged_pages;
	out->muzzy_npurge = a->stats.muzzy_npurge;
	out->muzzy_nmadvise = a->stats.muzzy_nmadvise;
	out->muzzy_purged = a->stats.muzzy_purged;
	out->npurge = out->dirty_npurge + out->muzzy_npurge;
	out->nmadvise = out->dirty_nmadvise + out->muzzy_nmadvise;
	out->purged = out->dirty_purged + out->muzzy_purged;
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
	/* Chunks: recycle the descriptors of their small runs, then give
	 * every chunk back to the cache and empty the run lists. */
	arena_chunk_t *c = a->chunks_head;
	while (c != NULL) {
		arena_chunk_t *next = c->next;
		for (size_t pi = CHUNK_HEADER_PAGES; pi < CHUNK_NPAGES;) {
			uint32_t bits = c->map[pi];
			if ((bits & MAP_SMALL) && a->region == NULL) {
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
	a->ndirty_holes = 0;
	a->nmuzzy = 0;
	a->nkeep = 0;
	a->nempty = 0;
	arena_cactive_sub(a->nactive << LG_PAGE);
	a->nactive = 0;
	a->stats.mapped_chunks = 0;
	a->stats.allocated_large = 0;
	/* Its objects were in the runs just discarded. */
	__atomic_store_n(&a->large_remote, NULL, __ATOMIC_RELAXED);
	for (szind_t i = 0; i < SZ_NLARGE; i++) {
		a->stats.lstats[i].curruns = 0;
	}
	mutex_unlock(&a->lock);
	for (szind_t i = SZ_NSMALL; i-- > 0;) {
		bin_t *bin = &a->bins[i];
		bin->runcur = NULL;
		bin->nonfull = NULL;
		/* Its regions were in the runs just discarded. */
		__atomic_store_n(&bin->remote, NULL, __ATOMIC_RELAXED);
		__atomic_store_n(&bin->remote_nflushes, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&bin->remote_nrequests, 0, __ATOMIC_RELAXED);
		bin->stats.curregs = 0;
		bin->stats.curruns = 0;
		mutex_unlock(&bin->lock);
	}
	arena_validate_maybe(a, true);
}

/* ---------------------------------------------------------------------- */
/* Fork. */

void
arena_prefork(void) {
	mutex_prefork(&arenas_lock);
	for (unsigned i = 0; i < narenas_total; i++) {
		arena_t *a = arenas[i];
		/* A shared heap's locks are process-shared: the child uses
		 * the same locks, which the parent's threads release. */
		if (a == NULL || (a->region != NULL && a->region->shared)) {
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
		/* A shared heap's locks are process-shared: the child uses
		 * the same locks, which the parent's threads release. */
		if (a == NULL || (a->region != NULL && a->region->shared)) {
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
		/* A shared heap's locks are process-shared: the child uses
		 * the same locks, which the parent's threads release. */
		if (a == NULL || (a->region != NULL && a->region->shared)) {
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
