/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl version, epoch and stats.*: the statistics snapshot.
 *
 * Writing `epoch` refreshes one snapshot of every arena's counters
 * (arena_stats_read), adds the thread-cache requests not yet merged into
 * the arenas (tcache_stats_add), sums the arenas into the merged view
 * (stats.arenas.<narenas>) and derives the totals; every stats.* read comes
 * from that snapshot, so numbers read after one refresh agree with each
 * other. The first stats read refreshes once if nobody did.
 *
 * What the numbers mean:
 *   stats.allocated  bytes in live objects: small + large + huge allocated.
 *                    An object sitting in a thread cache counts as
 *                    allocated: for its arena it is handed out (jemalloc's
 *                    semantics too); so do thread-cache stacks themselves,
 *                    which are large objects of the thread's arena.
 *   stats.active     pages of small runs, large and huge objects, in bytes
 *                    (stats.arenas.<i>.pactive * page).
 *   stats.metadata   bytes the base allocator mapped for liballoc's own
 *                    structures (chunk headers are inside arena chunks and
 *                    counted in mapped, not here).
 *   stats.resident   metadata + active + dirty pages: an upper bound of
 *                    what is physically resident, as in the manual.
 *   stats.mapped     bytes mapped by the arenas (chunks, huge spans, their
 *                    chunk caches) plus metadata.
 *   stats.retained   mapped bytes in the chunk caches that have been purged.
 *   stats.cactive    (size_t *) a pointer to the live counter of active
 *                    bytes (arena.h: arena_cactive_bytes); unlike the
 *                    others it does not wait for an epoch refresh.
 *
 * stats.background_thread.* are read live (ctl_background_thread.c).
 *
 * Per arena, lg_dirty_mult, decay_time, dirty/muzzy_decay_ms and dss exist
 * for real arenas only: the merged view (index arenas.narenas, or 4096,
 * jemalloc 5's MALLCTL_ARENAS_ALL) answers ENOENT for them.
 *
 * A build without statistics (--disable-stats, config_stats false) keeps no
 * counters, so it has no numbers to report: as in jemalloc, every stats.*
 * leaf answers ENOENT (stats.arenas.<i> is no valid index, the totals and
 * stats.cactive refuse), rather than zeros a program could take for real.
 * epoch still answers. The same holds for stats.background_thread.*
 * (ctl_background_thread.c) and thread.[de]allocated[p] (ctl_thread.c).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/base.h"
#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/opt.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/tcache.h"

/* The jemalloc API level whose namespace and semantics liballoc follows. */
#define CTL_VERSION "4.5.0-0-g0000000000000000000000000000000000000000"

/* Protects everything below; see ctl.h for its place in the lock order. */
static mutex_t ctl_lock = MUTEX_INITIALIZER;
static uint64_t ctl_epoch;
static bool ctl_snap_ready;
/* Arenas (ctl_narenas) at the last refresh; stats.arenas.<this> is the
 * merged view. */
static unsigned ctl_snap_narenas;
/* Per arena, from base memory on first refresh that sees the arena. */
static ctl_arena_stats_t *ctl_snap[ARENAS_MAX];
static ctl_arena_stats_t ctl_snap_merged;

typedef struct {
	size_t allocated;
	size_t active;
	size_t metadata;
	size_t resident;
	size_t mapped;
	size_t retained;
	size_t metadata_thp;
} ctl_totals_t;
static ctl_totals_t ctl_snap_totals;

static void
ctl_bin_stats_merge(bin_stats_t *sum, const bin_stats_t *s) {
	sum->nrequests += s->nrequests;
	sum->nmalloc += s->nmalloc;
	sum->ndalloc += s->ndalloc;
	sum->nfills += s->nfills;
	sum->nflushes += s->nflushes;
	sum->nruns += s->nruns;
	sum->reruns += s->reruns;
	sum->curregs += s->curregs;
	sum->curruns += s->curruns;
	sum->nonfull_runs += s->nonfull_runs;
}

static void
ctl_large_stats_merge(large_stats_t *sum, const large_stats_t *s) {
	sum->nmalloc += s->nmalloc;
	sum->ndalloc += s->ndalloc;
	sum->nrequests += s->nrequests;
	sum->curruns += s->curruns;
	sum->nflushes += s->nflushes;
}

static void
ctl_arena_stats_merge(arena_stats_snapshot_t *sum, const arena_stats_snapshot_t *s) {
	sum->nthreads += s->nthreads;
	sum->pactive += s->pactive;
	sum->pdirty += s->pdirty;
	sum->pmuzzy += s->pmuzzy;
	sum->dirty_npurge += s->dirty_npurge;
	sum->dirty_nmadvise += s->dirty_nmadvise;
	sum->dirty_purged += s->dirty_purged;
	sum->muzzy_npurge += s->muzzy_npurge;
	sum->muzzy_nmadvise += s->muzzy_nmadvise;
	sum->muzzy_purged += s->muzzy_purged;
	/* The oldest arena's age. */
	if (s->uptime_ns > sum->uptime_ns) {
		sum->uptime_ns = s->uptime_ns;
	}
	sum->mapped += s->mapped;
	sum->retained += s->retained;
	sum->metadata_mapped += s->metadata_mapped;
	sum->metadata_allocated += s->metadata_allocated;
	sum->npurge += s->npurge;
	sum->nmadvise += s->nmadvise;
	sum->purged += s->purged;
	sum->allocated_small += s->allocated_small;
	sum->nmalloc_small += s->nmalloc_small;
	sum->ndalloc_small += s->ndalloc_small;
	sum->nrequests_small += s->nrequests_small;
	sum->allocated_large += s->allocated_large;
	sum->nmalloc_large += s->nmalloc_large;
	sum->ndalloc_large += s->ndalloc_large;
	sum->nrequests_large += s->nrequests_large;
	sum->allocated_huge += s->allocated_huge;
	sum->nmalloc_huge += s->nmalloc_huge;
	sum->ndalloc_huge += s->ndalloc_huge;
	sum->nrequests_huge += s->nrequests_huge;
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		ctl_bin_stats_merge(&sum->bins[i], &s->bins[i]);
	}
	for (szind_t i = 0; i < SZ_NLARGE; i++) {
		ctl_large_stats_merge(&sum->lstats[i], &s->lstats[i]);
	}
	for (szind_t i = 0; i < SZ_NHUGE; i++) {
		ctl_large_stats_merge(&sum->hstats[i], &s->hstats[i]);
	}
}

/* Reads one arena into *out, with its unmerged thread-cache requests. */
static void
ctl_arena_stats_read(arena_t *a, ctl_arena_stats_t *out) {
	static uint64_t nrequests[SZ_NPAGED];
	arena_stats_read(a, &out->astats);
	memset(nrequests, 0, sizeof(nrequests));
	tcache_stats_add(a, nrequests);
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		if (i < SZ_NSMALL) {
			out->astats.bins[i].nrequests += nrequests[i];
			out->astats.nrequests_small += nrequests[i];
		} else {
			out->astats.lstats[i - SZ_NSMALL].nrequests += nrequests[i];
			out->astats.nrequests_large += nrequests[i];
		}
	}
	out->lg_dirty_mult = arena_lg_dirty_mult_get(a);
	out->decay_time = decay_ms_to_seconds(out->astats.dirty_decay_ms);
	out->initialized = true;
}

void
ctl_refresh_wait(void) {
	mutex_lock(&ctl_lock);
	mutex_unlock(&ctl_lock);
}

/* Under ctl_lock. */
static void
ctl_refresh_locked(void) {
	unsigned n = ctl_narenas();
	memset(&ctl_snap_merged, 0, sizeof(ctl_snap_merged));
	ctl_snap_merged.initialized = true;
	for (unsigned i = 0; i < n; i++) {
		arena_t *a = __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE);
		if (a == NULL) {
			if (ctl_snap[i] != NULL) {
				ctl_snap[i]->initialized = false;
			}
			continue;
		}
		if (ctl_snap[i] == NULL) {
			ctl_snap[i] = base_alloc(sizeof(ctl_arena_stats_t));
			if (ctl_snap[i] == NULL) {
				/* Metadata memory ran out: the arena stays out
				 * of this snapshot. */
				continue;
			}
		}
		ctl_arena_stats_read(a, ctl_snap[i]);
		ctl_arena_stats_merge(&ctl_snap_merged.astats, &ctl_snap[i]->astats);
	}
	const arena_stats_snapshot_t *m = &ctl_snap_merged.astats;
	ctl_totals_t *t = &ctl_snap_totals;
	t->allocated = m->allocated_small + m->allocated_large + m->allocated_huge;
	t->active = m->pactive << LG_PAGE;
	t->metadata = base_mapped_bytes();
	t->resident = t->metadata + t->active + (m->pdirty << LG_PAGE);
	t->mapped = m->mapped + t->metadata;
	t->retained = m->retained;
	t->metadata_thp = base_thp_blocks();
	ctl_snap_narenas = n;
	ctl_epoch++;
	ctl_snap_ready = true;
}

void
ctl_refresh(void) {
	mutex_lock(&ctl_lock);
	ctl_refresh_locked();
	mutex_unlock(&ctl_lock);
}

/* Inserts class (size, objects) into out's top list if it holds enough
 * bytes to be there. */
static void
ctl_sample_class(ctl_sample_t *out, size_t size, size_t objects) {
	size_t bytes = size * objects;
	if (bytes == 0) {
		return;
	}
	unsigned n = out->nclasses;
	if (n == CTL_SAMPLE_CLASSES && out->classes[n - 1].bytes >= bytes) {
		return;
	}
	unsigned i = n < CTL_SAMPLE_CLASSES ? n : n - 1;
	while (i > 0 && out->classes[i - 1].bytes < bytes) {
		out->classes[i] = out->classes[i - 1];
		i--;
	}
	out->classes[i].size = size;
	out->classes[i].objects = objects;
	out->classes[i].bytes = bytes;
	if (n < CTL_SAMPLE_CLASSES) {
		out->nclasses = n + 1;
	}
}

bool
ctl_stats_sample(ctl_sample_t *out, bool wait) {
	if (wait) {
		mutex_lock(&ctl_lock);
	} else if (!mutex_trylock(&ctl_lock)) {
		return false;
	}
	ctl_refresh_locked();
	const ctl_totals_t *t = &ctl_snap_totals;
	const arena_stats_snapshot_t *m = &ctl_snap_merged.astats;
	out->epoch = ctl_epoch;
	out->allocated = t->allocated;
	out->active = t->active;
	out->metadata = t->metadata;
	out->resident = t->resident;
	out->mapped = t->mapped;
	out->retained = t->retained;
	out->dirty = m->pdirty << LG_PAGE;
	out->nthreads = m->nthreads;
	out->narenas = 0;
	out->narenas_left = 0;
	for (unsigned i = 0; i < ctl_snap_narenas; i++) {
		const ctl_arena_stats_t *a = ctl_snap[i];
		if (a == NULL || !a->initialized) {
			continue;
		}
		if (out->narenas == CTL_SAMPLE_ARENAS) {
			out->narenas_left++;
			continue;
		}
		out->arenas[out->narenas].index = i;
		out->arenas[out->narenas].nthreads = a->astats.nthreads;
		out->arenas[out->narenas].active = a->astats.pactive << LG_PAGE;
		out->arenas[out->narenas].dirty = a->astats.pdirty << LG_PAGE;
		out->narenas++;
	}
	out->nclasses = 0;
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		ctl_sample_class(out, sz_index2size(i), m->bins[i].curregs);
	}
	for (szind_t i = 0; i < SZ_NLARGE; i++) {
		ctl_sample_class(out, sz_index2size(SZ_NSMALL + i), m->lstats[i].curruns);
	}
	for (szind_t i = 0; i < SZ_NHUGE; i++) {
		ctl_sample_class(out, sz_index2size(SZ_NPAGED + i), m->hstats[i].curruns);
	}
	mutex_unlock(&ctl_lock);
	return true;
}

static void
ctl_lock_snapshot(void) {
	mutex_lock(&ctl_lock);
	if (!ctl_snap_ready) {
		ctl_refresh_locked();
	}
}

void
ctl_prefork(void) {
	mutex_prefork(&ctl_lock);
}

void
ctl_postfork_parent(void) {
	mutex_postfork_parent(&ctl_lock);
}

void
ctl_postfork_child(void) {
	mutex_postfork_child(&ctl_lock);
}

/* ---------------------------------------------------------------------- */
/* version, epoch */

int
ctl_version_handler(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                    size_t newlen) {
	(void)mib, (void)miblen;
	const char *v = CTL_VERSION;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

int
ctl_epoch_handler(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	uint64_t v;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	/* A call that fails on its old-value buffer refreshes nothing. */
	bool read_bad = oldp != NULL && oldlenp != NULL && *oldlenp != sizeof(v);
	mutex_lock(&ctl_lock);
	if ((newp != NULL && !read_bad) || !ctl_snap_ready) {
		ctl_refresh_locked();
	}
	v = ctl_epoch;
	mutex_unlock(&ctl_lock);
	return ctl_read(oldp, oldlenp, &v, sizeof(v));
}

/* ---------------------------------------------------------------------- */
/* stats.* totals */

/* Reads the field at `offset` of the totals. */
static int
stats_total_read(void *oldp, size_t *oldlenp, void *newp, size_t newlen, size_t offset) {
	if (!config_stats) {
		return ENOENT;
	}
	int err = ctl_readonly(newp, newlen);
	if (err != 0) {
		return err;
	}
	ctl_lock_snapshot();
	size_t v;
	memcpy(&v, (const char *)&ctl_snap_totals + offset, sizeof(v));
	mutex_unlock(&ctl_lock);
	return ctl_read(oldp, oldlenp, &v, sizeof(v));
}

static int
stats_cactive_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	size_t *p = &arena_cactive_bytes;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &p, sizeof(p));
}

static int
stats_allocated_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                    size_t newlen) {
	(void)mib, (void)miblen;
	return stats_total_read(oldp, oldlenp, newp, newlen, offsetof(ctl_totals_t, allocated));
}

static int
stats_active_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen) {
	(void)mib, (void)miblen;
	return stats_total_read(oldp, oldlenp, newp, newlen, offsetof(ctl_totals_t, active));
}

static int
stats_metadata_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	return stats_total_read(oldp, oldlenp, newp, newlen, offsetof(ctl_totals_t, metadata));
}

static int
stats_resident_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	return stats_total_read(oldp, oldlenp, newp, newlen, offsetof(ctl_totals_t, resident));
}

static int
stats_mapped_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen) {
	(void)mib, (void)miblen;
	return stats_total_read(oldp, oldlenp, newp, newlen, offsetof(ctl_totals_t, mapped));
}

/* stats.metadata_thp (jemalloc 5): metadata blocks of 2 MiB advised
 * MADV_HUGEPAGE under opt.metadata_thp (the kernel decides whether each
 * is backed by a huge page). */
static int
stats_metadata_thp_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)mib, (void)miblen;
	return stats_total_read(oldp, oldlenp, newp, newlen, offsetof(ctl_totals_t, metadata_thp));
}

/* stats.zero_reallocs (jemalloc 5): realloc(ptr, 0) calls with a non-NULL
 * ptr so far, read live (see opt.zero_realloc). */
static int
stats_zero_reallocs_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	size_t v = __atomic_load_n(&alloc_zero_reallocs, __ATOMIC_RELAXED);
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
stats_retained_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	return stats_total_read(oldp, oldlenp, newp, newlen, offsetof(ctl_totals_t, retained));
}

/* ---------------------------------------------------------------------- */
/* stats.arenas.<i>.* */

static bool
stats_arenas_valid(const size_t *mib, size_t depth, size_t i) {
	(void)mib, (void)depth;
	if (!config_stats) {
		return false;
	}
	ctl_lock_snapshot();
	bool ok = ctl_arenas_all(i, ctl_snap_narenas) ||
	          (i < ctl_snap_narenas && ctl_snap[i] != NULL && ctl_snap[i]->initialized);
	mutex_unlock(&ctl_lock);
	return ok;
}

/* The snapshot of arena i (the merged one for i == narenas), or NULL; under
 * ctl_lock. */
static const ctl_arena_stats_t *
stats_arena_locked(size_t i) {
	if (ctl_arenas_all(i, ctl_snap_narenas)) {
		return &ctl_snap_merged;
	}
	if (i < ctl_snap_narenas && ctl_snap[i] != NULL && ctl_snap[i]->initialized) {
		return ctl_snap[i];
	}
	return NULL;
}

/*
 * Reads `len` bytes at `offset` in the snapshot of arena mib[2], plus
 * `elem` * mib[4] (per-class arrays; 0 for other fields).
 */
static int
stats_arena_read(const size_t *mib, void *oldp, size_t *oldlenp, void *newp, size_t newlen,
                 size_t offset, size_t elem, size_t len) {
	int err = ctl_readonly(newp, newlen);
	if (err != 0) {
		return err;
	}
	char buf[sizeof(uint64_t)];
	ctl_lock_snapshot();
	const ctl_arena_stats_t *s = stats_arena_locked(mib[2]);
	if (s != NULL) {
		memcpy(buf, (const char *)s + offset + (elem != 0 ? elem * mib[4] : 0), len);
	}
	mutex_unlock(&ctl_lock);
	if (s == NULL) {
		return ENOENT;
	}
	return ctl_read(oldp, oldlenp, buf, len);
}

#define ASTATS(field) offsetof(ctl_arena_stats_t, astats.field)

static int
stats_arenas_i_nthreads_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                            void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nthreads), 0,
	                        sizeof(unsigned));
}

static int
stats_arenas_i_dss_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)miblen;
	int err = ctl_readonly(newp, newlen);
	if (err != 0) {
		return err;
	}
	mutex_lock(&ctl_lock);
	bool merged = ctl_arenas_all(mib[2], ctl_snap_narenas);
	mutex_unlock(&ctl_lock);
	if (merged) {
		return ENOENT;
	}
	const char *v = "disabled";
	return ctl_read(oldp, oldlenp, &v, sizeof(v));
}

static int
stats_arenas_i_lg_dirty_mult_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                 void *newp, size_t newlen) {
	(void)miblen;
	mutex_lock(&ctl_lock);
	bool merged = ctl_arenas_all(mib[2], ctl_snap_narenas);
	mutex_unlock(&ctl_lock);
	if (merged) {
		return ENOENT;
	}
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen,
	                        offsetof(ctl_arena_stats_t, lg_dirty_mult), 0, sizeof(ssize_t));
}

static int
stats_arenas_i_decay_time_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                              void *newp, size_t newlen) {
	(void)miblen;
	mutex_lock(&ctl_lock);
	bool merged = ctl_arenas_all(mib[2], ctl_snap_narenas);
	mutex_unlock(&ctl_lock);
	if (merged) {
		return ENOENT;
	}
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen,
	                        offsetof(ctl_arena_stats_t, decay_time), 0, sizeof(ssize_t));
}

/* stats.arenas.<i>.dirty_decay_ms / muzzy_decay_ms (jemalloc 5): the
 * arena's decay times, like decay_time for real arenas only. */
static int
stats_arenas_i_decay_ms_read(const size_t *mib, void *oldp, size_t *oldlenp, void *newp,
                             size_t newlen, size_t offset) {
	mutex_lock(&ctl_lock);
	bool merged = ctl_arenas_all(mib[2], ctl_snap_narenas);
	mutex_unlock(&ctl_lock);
	if (merged) {
		return ENOENT;
	}
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, offset, 0, sizeof(ssize_t));
}

static int
stats_arenas_i_dirty_decay_ms_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arenas_i_decay_ms_read(mib, oldp, oldlenp, newp, newlen,
	                                    ASTATS(dirty_decay_ms));
}

static int
stats_arenas_i_muzzy_decay_ms_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arenas_i_decay_ms_read(mib, oldp, oldlenp, newp, newlen,
	                                    ASTATS(muzzy_decay_ms));
}

/* stats.arenas.<i>.uptime (jemalloc 5): ns since the arena was made (the
 * oldest arena's in the merged view), as of the last refresh. */
static int
stats_arenas_i_uptime_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(uptime_ns), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_pmuzzy_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(pmuzzy), 0,
	                        sizeof(size_t));
}

/* stats.arenas.<i>.{dirty,muzzy}_{npurge,nmadvise,purged} (jemalloc 5):
 * each decay stage's sweeps, madvise calls and pages (npurge, nmadvise
 * and purged are their sums). */
static int
stats_arenas_i_dirty_npurge_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(dirty_npurge), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_dirty_nmadvise_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(dirty_nmadvise), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_dirty_purged_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(dirty_purged), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_muzzy_npurge_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(muzzy_npurge), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_muzzy_nmadvise_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(muzzy_nmadvise), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_muzzy_purged_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(muzzy_purged), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_pactive_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                           void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(pactive), 0,
	                        sizeof(size_t));
}

static int
stats_arenas_i_pdirty_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(pdirty), 0,
	                        sizeof(size_t));
}

static int
stats_arenas_i_mapped_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(mapped), 0,
	                        sizeof(size_t));
}

static int
stats_arenas_i_retained_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                            void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(retained), 0,
	                        sizeof(size_t));
}

/* stats.arenas.<i>.metadata.mapped: bytes of the arena's chunk headers
 * (page maps), inside its chunks. */
static int
stats_arenas_i_metadata_mapped_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(metadata_mapped), 0,
	                        sizeof(size_t));
}

/* stats.arenas.<i>.metadata.allocated: base-allocator bytes made for the
 * arena (its own struct, run descriptors, extent nodes). */
static int
stats_arenas_i_metadata_allocated_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                      void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(metadata_allocated), 0,
	                        sizeof(size_t));
}

/* stats.arenas.<i>.resident (jemalloc 5): an upper bound of the arena's
 * resident bytes: active and dirty pages, chunk headers and the base
 * memory made for it. */
static int
stats_arenas_i_resident_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                            void *newp, size_t newlen) {
	(void)miblen;
	int err = ctl_readonly(newp, newlen);
	if (err != 0) {
		return err;
	}
	ctl_lock_snapshot();
	const ctl_arena_stats_t *s = stats_arena_locked(mib[2]);
	size_t v = 0;
	if (s != NULL) {
		const arena_stats_snapshot_t *a = &s->astats;
		v = ((a->pactive + a->pdirty) << LG_PAGE) + a->metadata_mapped +
		    a->metadata_allocated;
	}
	mutex_unlock(&ctl_lock);
	return s == NULL ? ENOENT : ctl_read(oldp, oldlenp, &v, sizeof(v));
}

/* stats.arenas.<i>.base (jemalloc 5): metadata.allocated under its
 * jemalloc 5 name, the base memory made for the arena. */
static int
stats_arenas_i_base_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(metadata_allocated), 0,
	                        sizeof(size_t));
}

/* The uint64_t at `field` of each of the `n` elements (`elem` bytes apart)
 * starting at `offset` in the snapshot of arena mib[2], summed. */
static int
stats_arena_sum(const size_t *mib, void *oldp, size_t *oldlenp, void *newp, size_t newlen,
                size_t offset, size_t elem, size_t n, size_t field) {
	int err = ctl_readonly(newp, newlen);
	if (err != 0) {
		return err;
	}
	ctl_lock_snapshot();
	const ctl_arena_stats_t *s = stats_arena_locked(mib[2]);
	uint64_t v = 0;
	for (size_t j = 0; s != NULL && j < n; j++) {
		uint64_t x;
		memcpy(&x, (const char *)s + offset + j * elem + field, sizeof(x));
		v += x;
	}
	mutex_unlock(&ctl_lock);
	return s == NULL ? ENOENT : ctl_read(oldp, oldlenp, &v, sizeof(v));
}

/* stats.arenas.<i>.small.nfills / nflushes (jemalloc 5): the bins' thread-
 * cache fills and flushes, summed. */
static int
stats_arenas_i_small_nfills_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_sum(mib, oldp, oldlenp, newp, newlen, ASTATS(bins), sizeof(bin_stats_t),
	                       SZ_NSMALL, offsetof(bin_stats_t, nfills));
}

static int
stats_arenas_i_small_nflushes_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_sum(mib, oldp, oldlenp, newp, newlen, ASTATS(bins), sizeof(bin_stats_t),
	                       SZ_NSMALL, offsetof(bin_stats_t, nflushes));
}

/* stats.arenas.<i>.large.nfills / nflushes (jemalloc 5). A thread cache
 * takes large objects only from the program's frees, never in batches from
 * the arena, so there are no large fills: nfills is 0 by construction.
 * nflushes counts the flushes that returned large objects, per class,
 * summed. */
static int
stats_arenas_i_large_nfills_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_sum(mib, oldp, oldlenp, newp, newlen, 0, 0, 0, 0);
}

static int
stats_arenas_i_large_nflushes_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_sum(mib, oldp, oldlenp, newp, newlen, ASTATS(lstats),
	                       sizeof(large_stats_t), SZ_NLARGE, offsetof(large_stats_t, nflushes));
}

/* stats.arenas.<i>.bins.<j>.nonfull_slabs (jemalloc 5): the class's runs
 * with free regions at the last refresh. */
static int
stats_arenas_i_bins_j_nonfull_slabs_ctl(const size_t *mib, size_t miblen, void *oldp,
                                        size_t *oldlenp, void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen,
	                        ASTATS(bins) + offsetof(bin_stats_t, nonfull_runs),
	                        sizeof(bin_stats_t), sizeof(size_t));
}

static const ctl_node_t stats_arenas_i_metadata_children[] = {
    {.name = "mapped", .handler = stats_arenas_i_metadata_mapped_ctl},
    {.name = "allocated", .handler = stats_arenas_i_metadata_allocated_ctl},
    {.name = NULL},
};

static int
stats_arenas_i_npurge_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(npurge), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_nmadvise_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                            void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nmadvise), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_purged_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(purged), 0,
	                        sizeof(uint64_t));
}

/* small.* */

static int
stats_arenas_i_small_allocated_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(allocated_small), 0,
	                        sizeof(size_t));
}

static int
stats_arenas_i_small_nmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                 void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nmalloc_small), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_small_ndalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                 void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(ndalloc_small), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_small_nrequests_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nrequests_small), 0,
	                        sizeof(uint64_t));
}

static const ctl_node_t stats_arenas_i_small_children[] = {
    {.name = "allocated", .handler = stats_arenas_i_small_allocated_ctl},
    {.name = "nmalloc", .handler = stats_arenas_i_small_nmalloc_ctl},
    {.name = "ndalloc", .handler = stats_arenas_i_small_ndalloc_ctl},
    {.name = "nrequests", .handler = stats_arenas_i_small_nrequests_ctl},
    {.name = "nfills", .handler = stats_arenas_i_small_nfills_ctl},
    {.name = "nflushes", .handler = stats_arenas_i_small_nflushes_ctl},
    {.name = NULL},
};

/* large.* */

static int
stats_arenas_i_large_allocated_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(allocated_large), 0,
	                        sizeof(size_t));
}

static int
stats_arenas_i_large_nmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                 void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nmalloc_large), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_large_ndalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                 void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(ndalloc_large), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_large_nrequests_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nrequests_large), 0,
	                        sizeof(uint64_t));
}

static const ctl_node_t stats_arenas_i_large_children[] = {
    {.name = "allocated", .handler = stats_arenas_i_large_allocated_ctl},
    {.name = "nmalloc", .handler = stats_arenas_i_large_nmalloc_ctl},
    {.name = "ndalloc", .handler = stats_arenas_i_large_ndalloc_ctl},
    {.name = "nrequests", .handler = stats_arenas_i_large_nrequests_ctl},
    {.name = "nfills", .handler = stats_arenas_i_large_nfills_ctl},
    {.name = "nflushes", .handler = stats_arenas_i_large_nflushes_ctl},
    {.name = NULL},
};

/* huge.* */

static int
stats_arenas_i_huge_allocated_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(allocated_huge), 0,
	                        sizeof(size_t));
}

static int
stats_arenas_i_huge_nmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nmalloc_huge), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_huge_ndalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(ndalloc_huge), 0,
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_huge_nrequests_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, ASTATS(nrequests_huge), 0,
	                        sizeof(uint64_t));
}

static const ctl_node_t stats_arenas_i_huge_children[] = {
    {.name = "allocated", .handler = stats_arenas_i_huge_allocated_ctl},
    {.name = "nmalloc", .handler = stats_arenas_i_huge_nmalloc_ctl},
    {.name = "ndalloc", .handler = stats_arenas_i_huge_ndalloc_ctl},
    {.name = "nrequests", .handler = stats_arenas_i_huge_nrequests_ctl},
    {.name = NULL},
};

/* bins.<j>.* */

#define BIN(field) (ASTATS(bins) + offsetof(bin_stats_t, field))

static bool
stats_arenas_bins_valid(const size_t *mib, size_t depth, size_t j) {
	(void)mib, (void)depth;
	return j < SZ_NSMALL;
}

static int
stats_arenas_i_bins_j_nmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(nmalloc), sizeof(bin_stats_t),
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_bins_j_ndalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(ndalloc), sizeof(bin_stats_t),
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_bins_j_nrequests_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                    void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(nrequests),
	                        sizeof(bin_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_bins_j_curregs_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(curregs), sizeof(bin_stats_t),
	                        sizeof(size_t));
}

static int
stats_arenas_i_bins_j_nfills_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                 void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(nfills), sizeof(bin_stats_t),
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_bins_j_nflushes_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(nflushes),
	                        sizeof(bin_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_bins_j_nruns_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(nruns), sizeof(bin_stats_t),
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_bins_j_nreruns_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(reruns), sizeof(bin_stats_t),
	                        sizeof(uint64_t));
}

static int
stats_arenas_i_bins_j_curruns_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, BIN(curruns), sizeof(bin_stats_t),
	                        sizeof(size_t));
}

static const ctl_node_t stats_arenas_i_bins_j_children[] = {
    {.name = "nmalloc", .handler = stats_arenas_i_bins_j_nmalloc_ctl},
    {.name = "ndalloc", .handler = stats_arenas_i_bins_j_ndalloc_ctl},
    {.name = "nrequests", .handler = stats_arenas_i_bins_j_nrequests_ctl},
    {.name = "curregs", .handler = stats_arenas_i_bins_j_curregs_ctl},
    {.name = "nfills", .handler = stats_arenas_i_bins_j_nfills_ctl},
    {.name = "nflushes", .handler = stats_arenas_i_bins_j_nflushes_ctl},
    {.name = "nruns", .handler = stats_arenas_i_bins_j_nruns_ctl},
    {.name = "nreruns", .handler = stats_arenas_i_bins_j_nreruns_ctl},
    {.name = "curruns", .handler = stats_arenas_i_bins_j_curruns_ctl},
    {.name = "nslabs", .alias = "nruns"},
    {.name = "nreslabs", .alias = "nreruns"},
    {.name = "curslabs", .alias = "curruns"},
    {.name = "nonfull_slabs", .handler = stats_arenas_i_bins_j_nonfull_slabs_ctl},
    {.name = NULL},
};

static const ctl_node_t stats_arenas_i_bins_j_node = {.name = "<j>",
                                                      .children = stats_arenas_i_bins_j_children};

static const ctl_index_t stats_arenas_i_bins_index = {
    .valid = stats_arenas_bins_valid,
    .elem = &stats_arenas_i_bins_j_node,
};

/* lruns.<j>.* and hchunks.<j>.* (both large_stats_t) */

#define LRUN(field)   (ASTATS(lstats) + offsetof(large_stats_t, field))
#define HCHUNK(field) (ASTATS(hstats) + offsetof(large_stats_t, field))

static bool
stats_arenas_lruns_valid(const size_t *mib, size_t depth, size_t j) {
	(void)mib, (void)depth;
	return j < SZ_NLARGE;
}

static int
stats_arenas_i_lruns_j_nmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(nmalloc),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_lruns_j_ndalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(ndalloc),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_lruns_j_nrequests_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                     void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(nrequests),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_lruns_j_curruns_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(curruns),
	                        sizeof(large_stats_t), sizeof(size_t));
}

static const ctl_node_t stats_arenas_i_lruns_j_children[] = {
    {.name = "nmalloc", .handler = stats_arenas_i_lruns_j_nmalloc_ctl},
    {.name = "ndalloc", .handler = stats_arenas_i_lruns_j_ndalloc_ctl},
    {.name = "nrequests", .handler = stats_arenas_i_lruns_j_nrequests_ctl},
    {.name = "curruns", .handler = stats_arenas_i_lruns_j_curruns_ctl},
    {.name = NULL},
};

static const ctl_node_t stats_arenas_i_lruns_j_node = {.name = "<j>",
                                                       .children = stats_arenas_i_lruns_j_children};

static const ctl_index_t stats_arenas_i_lruns_index = {
    .valid = stats_arenas_lruns_valid,
    .elem = &stats_arenas_i_lruns_j_node,
};

static bool
stats_arenas_hchunks_valid(const size_t *mib, size_t depth, size_t j) {
	(void)mib, (void)depth;
	return j < SZ_NHUGE;
}

static int
stats_arenas_i_hchunks_j_nmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                     void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, HCHUNK(nmalloc),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_hchunks_j_ndalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                     void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, HCHUNK(ndalloc),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_hchunks_j_nrequests_ctl(const size_t *mib, size_t miblen, void *oldp,
                                       size_t *oldlenp, void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, HCHUNK(nrequests),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_hchunks_j_curhchunks_ctl(const size_t *mib, size_t miblen, void *oldp,
                                        size_t *oldlenp, void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, HCHUNK(curruns),
	                        sizeof(large_stats_t), sizeof(size_t));
}

static const ctl_node_t stats_arenas_i_hchunks_j_children[] = {
    {.name = "nmalloc", .handler = stats_arenas_i_hchunks_j_nmalloc_ctl},
    {.name = "ndalloc", .handler = stats_arenas_i_hchunks_j_ndalloc_ctl},
    {.name = "nrequests", .handler = stats_arenas_i_hchunks_j_nrequests_ctl},
    {.name = "curhchunks", .handler = stats_arenas_i_hchunks_j_curhchunks_ctl},
    {.name = NULL},
};

static const ctl_node_t stats_arenas_i_hchunks_j_node = {
    .name = "<j>", .children = stats_arenas_i_hchunks_j_children};

static const ctl_index_t stats_arenas_i_hchunks_index = {
    .valid = stats_arenas_hchunks_valid,
    .elem = &stats_arenas_i_hchunks_j_node,
};

/* lextents.<j>.* (jemalloc 5): the large classes, then the huge ones, as
 * arenas.lextent.<j> numbers them; the snapshot keeps hstats right after
 * lstats, so one array index covers both. */
_Static_assert(offsetof(arena_stats_snapshot_t, hstats) ==
                   offsetof(arena_stats_snapshot_t, lstats) + SZ_NLARGE * sizeof(large_stats_t),
               "hstats follows lstats");

static bool
stats_arenas_lextents_valid(const size_t *mib, size_t depth, size_t j) {
	(void)mib, (void)depth;
	return j < SZ_NLARGE + SZ_NHUGE;
}

static int
stats_arenas_i_lextents_j_nmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                      void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(nmalloc),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_lextents_j_ndalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                      void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(ndalloc),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_lextents_j_nrequests_ctl(const size_t *mib, size_t miblen, void *oldp,
                                        size_t *oldlenp, void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(nrequests),
	                        sizeof(large_stats_t), sizeof(uint64_t));
}

static int
stats_arenas_i_lextents_j_curlextents_ctl(const size_t *mib, size_t miblen, void *oldp,
                                          size_t *oldlenp, void *newp, size_t newlen) {
	(void)miblen;
	return stats_arena_read(mib, oldp, oldlenp, newp, newlen, LRUN(curruns),
	                        sizeof(large_stats_t), sizeof(size_t));
}

static const ctl_node_t stats_arenas_i_lextents_j_children[] = {
    {.name = "nmalloc", .handler = stats_arenas_i_lextents_j_nmalloc_ctl},
    {.name = "ndalloc", .handler = stats_arenas_i_lextents_j_ndalloc_ctl},
    {.name = "nrequests", .handler = stats_arenas_i_lextents_j_nrequests_ctl},
    {.name = "curlextents", .handler = stats_arenas_i_lextents_j_curlextents_ctl},
    {.name = NULL},
};

static const ctl_node_t stats_arenas_i_lextents_j_node = {
    .name = "<j>", .children = stats_arenas_i_lextents_j_children};

static const ctl_index_t stats_arenas_i_lextents_index = {
    .valid = stats_arenas_lextents_valid,
    .elem = &stats_arenas_i_lextents_j_node,
};

static const ctl_node_t stats_arenas_i_children[] = {
    {.name = "nthreads", .handler = stats_arenas_i_nthreads_ctl},
    {.name = "dss", .handler = stats_arenas_i_dss_ctl},
    {.name = "lg_dirty_mult", .handler = stats_arenas_i_lg_dirty_mult_ctl},
    {.name = "decay_time", .handler = stats_arenas_i_decay_time_ctl},
    {.name = "pactive", .handler = stats_arenas_i_pactive_ctl},
    {.name = "pdirty", .handler = stats_arenas_i_pdirty_ctl},
    {.name = "mapped", .handler = stats_arenas_i_mapped_ctl},
    {.name = "retained", .handler = stats_arenas_i_retained_ctl},
    {.name = "npurge", .handler = stats_arenas_i_npurge_ctl},
    {.name = "nmadvise", .handler = stats_arenas_i_nmadvise_ctl},
    {.name = "purged", .handler = stats_arenas_i_purged_ctl},
    {.name = "metadata", .children = stats_arenas_i_metadata_children},
    {.name = "small", .children = stats_arenas_i_small_children},
    {.name = "large", .children = stats_arenas_i_large_children},
    {.name = "huge", .children = stats_arenas_i_huge_children},
    {.name = "bins", .index = &stats_arenas_i_bins_index},
    {.name = "lruns", .index = &stats_arenas_i_lruns_index},
    {.name = "hchunks", .index = &stats_arenas_i_hchunks_index},
    {.name = "resident", .handler = stats_arenas_i_resident_ctl},
    {.name = "base", .handler = stats_arenas_i_base_ctl},
    {.name = "lextents", .index = &stats_arenas_i_lextents_index},
    {.name = "dirty_decay_ms", .handler = stats_arenas_i_dirty_decay_ms_ctl},
    {.name = "muzzy_decay_ms", .handler = stats_arenas_i_muzzy_decay_ms_ctl},
    {.name = "uptime", .handler = stats_arenas_i_uptime_ctl},
    {.name = "pmuzzy", .handler = stats_arenas_i_pmuzzy_ctl},
    {.name = "dirty_npurge", .handler = stats_arenas_i_dirty_npurge_ctl},
    {.name = "dirty_nmadvise", .handler = stats_arenas_i_dirty_nmadvise_ctl},
    {.name = "dirty_purged", .handler = stats_arenas_i_dirty_purged_ctl},
    {.name = "muzzy_npurge", .handler = stats_arenas_i_muzzy_npurge_ctl},
    {.name = "muzzy_nmadvise", .handler = stats_arenas_i_muzzy_nmadvise_ctl},
    {.name = "muzzy_purged", .handler = stats_arenas_i_muzzy_purged_ctl},
    {.name = NULL},
};

static const ctl_node_t stats_arenas_i_node = {.name = "<i>", .children = stats_arenas_i_children};

static const ctl_index_t stats_arenas_index = {
    .valid = stats_arenas_valid,
    .elem = &stats_arenas_i_node,
};

const ctl_node_t ctl_stats_children[] = {
    {.name = "cactive", .handler = stats_cactive_ctl},
    {.name = "allocated", .handler = stats_allocated_ctl},
    {.name = "active", .handler = stats_active_ctl},
    {.name = "metadata", .handler = stats_metadata_ctl},
    {.name = "resident", .handler = stats_resident_ctl},
    {.name = "mapped", .handler = stats_mapped_ctl},
    {.name = "retained", .handler = stats_retained_ctl},
    {.name = "metadata_thp", .handler = stats_metadata_thp_ctl},
    {.name = "zero_reallocs", .handler = stats_zero_reallocs_ctl},
    {.name = "background_thread", .children = ctl_stats_background_thread_children},
    {.name = "arenas", .index = &stats_arenas_index},
    {.name = NULL},
};
