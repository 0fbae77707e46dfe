/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl arenas.*: facts shared by all arenas (size classes, page and
 * quantum, thread-cache limits), the purging defaults for arenas created
 * later, and arenas.extend (jemalloc 5: arenas.create), which makes a new
 * arena and returns its index.
 *
 * arenas.narenas counts the automatic arena slots (created on first use)
 * and the extended arenas; arenas.initialized says which of them exist.
 *
 * jemalloc 5 names: arenas.bin.<i>.slab_size is run_size under its new name
 * (same node, same MIB); arenas.bin.<i>.nshards is 1 (one bin per class and
 * arena). arenas.nlextents / arenas.lextent.<i>.size count and size the
 * classes jemalloc 5 calls large: liballoc's large classes followed by its
 * huge ones, so lextent.<i> is lrun.<i> for i < nlruns and
 * hchunk.<i - nlruns> above. arenas.lookup takes a pointer (write) and
 * returns the index of the arena its memory belongs to (read): EINVAL for
 * an address that is in no arena chunk and starts no huge allocation.
 */
#include <errno.h>
#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/tcache.h"

static int
arenas_narenas_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	unsigned n = ctl_narenas();
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &n, sizeof(n));
}

/* arenas.percpu_spread: whether threads follow their CPUs to the per-CPU
 * arenas yet; arenas.percpu_waits: the allocation paths' lock waits counted
 * toward it (arena.h, opt.percpu_arena_waits). */
static int
arenas_percpu_spread_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
	(void)mib, (void)miblen;
	bool v = arena_spread_now();
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_percpu_waits_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)mib, (void)miblen;
	unsigned v = __atomic_load_n(&arena_lock_waits, __ATOMIC_RELAXED);
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_initialized_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)mib, (void)miblen;
	int err = ctl_readonly(newp, newlen);
	if (err != 0 || oldp == NULL || oldlenp == NULL) {
		return err;
	}
	unsigned n = ctl_narenas();
	size_t nread = n;
	if (*oldlenp != n * sizeof(bool)) {
		err = EINVAL;
		if (*oldlenp / sizeof(bool) < nread) {
			nread = *oldlenp / sizeof(bool);
		}
	}
	for (size_t i = 0; i < nread; i++) {
		((bool *)oldp)[i] = __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE) != NULL;
	}
	return err;
}

static int
arenas_lg_dirty_mult_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
	(void)mib, (void)miblen;
	ssize_t old = arenas_lg_dirty_mult_get();
	ssize_t v;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && arenas_lg_dirty_mult_set(v)) {
		return EFAULT;
	}
	return 0;
}

/* arenas.decay_time (seconds), arenas.dirty_decay_ms and
 * arenas.muzzy_decay_ms: the defaults for arenas made later, as
 * arena.<i>.* speak them. */
static int
arenas_decay_rw(void *oldp, size_t *oldlenp, void *newp, size_t newlen, decay_stage_t stage,
                bool seconds) {
	bool set;
	ssize_t ms;
	int err = ctl_decay_rw(oldp, oldlenp, newp, newlen, arenas_decay_ms_get(stage), seconds,
	                       &set, &ms);
	if (err != 0 || !set) {
		return err;
	}
	return arenas_decay_ms_set(stage, ms) ? EFAULT : 0;
}

static int
arenas_decay_time_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                      size_t newlen) {
	(void)mib, (void)miblen;
	return arenas_decay_rw(oldp, oldlenp, newp, newlen, DECAY_STAGE_DIRTY, true);
}

static int
arenas_dirty_decay_ms_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)mib, (void)miblen;
	return arenas_decay_rw(oldp, oldlenp, newp, newlen, DECAY_STAGE_DIRTY, false);
}

static int
arenas_muzzy_decay_ms_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)mib, (void)miblen;
	return arenas_decay_rw(oldp, oldlenp, newp, newlen, DECAY_STAGE_MUZZY, false);
}

static int
arenas_quantum_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	size_t v = QUANTUM;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_page_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                size_t newlen) {
	(void)mib, (void)miblen;
	size_t v = PAGE;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_tcache_max_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                      size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_tcache) {
		return ENOENT;
	}
	size_t v = tcache_maxclass;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_nbins_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen) {
	(void)mib, (void)miblen;
	unsigned v = SZ_NSMALL;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_nhbins_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_tcache) {
		return ENOENT;
	}
	unsigned v = tcache_nhbins;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_nlruns_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	unsigned v = SZ_NLARGE;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_nhchunks_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                    size_t newlen) {
	(void)mib, (void)miblen;
	unsigned v = SZ_NHUGE;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_extend_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	int err = ctl_create_check(oldp, oldlenp, newp, newlen, sizeof(unsigned));
	if (err != 0) {
		return err;
	}
	arena_t *a = arena_extend();
	if (a == NULL) {
		return EAGAIN;
	}
	unsigned ind = a->ind;
	return ctl_read(oldp, oldlenp, &ind, sizeof(ind));
}

/*
 * arenas.create (jemalloc 5): arenas.extend, taking as new value an
 * extent_hooks_t * for the new arena (NULL or no value: the default hooks).
 * Hooks without alloc are EINVAL, and no arena is made.
 */
static int
arenas_create_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	extent_hooks_t *hooks = NULL;
	int err = ctl_write(newp, newlen, &hooks, sizeof(hooks));
	if (err == 0 && oldp != NULL && oldlenp != NULL && *oldlenp != sizeof(unsigned)) {
		err = EINVAL;
	}
	if (err == 0 && hooks != NULL && hooks->alloc == NULL) {
		err = EINVAL;
	}
	if (err != 0) {
		return err;
	}
	arena_t *a = arena_extend();
	if (a == NULL) {
		return EAGAIN;
	}
	if (hooks != NULL) {
		arena_extent_hooks_set(a, hooks);
	}
	unsigned ind = a->ind;
	return ctl_read(oldp, oldlenp, &ind, sizeof(ind));
}

/* arenas.bin.<i>.* */

static bool
arenas_bin_valid(const size_t *mib, size_t depth, size_t i) {
	(void)mib, (void)depth;
	return i < SZ_NSMALL;
}

static int
arenas_bin_i_size_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                      size_t newlen) {
	(void)miblen;
	size_t v = bin_infos[mib[2]].reg_size;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_bin_i_nregs_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)miblen;
	uint32_t v = bin_infos[mib[2]].nregs;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_bin_i_run_size_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	size_t v = bin_infos[mib[2]].run_size;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
arenas_bin_i_nshards_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
	(void)mib, (void)miblen;
	uint32_t v = 1;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static const ctl_node_t arenas_bin_i_children[] = {
    {.name = "size", .handler = arenas_bin_i_size_ctl},
    {.name = "nregs", .handler = arenas_bin_i_nregs_ctl},
    {.name = "run_size", .handler = arenas_bin_i_run_size_ctl},
    {.name = "slab_size", .alias = "run_size"},
    {.name = "nshards", .handler = arenas_bin_i_nshards_ctl},
    {.name = NULL},
};

static const ctl_node_t arenas_bin_i_node = {.name = "<i>", .children = arenas_bin_i_children};

static const ctl_index_t arenas_bin_index = {
    .valid = arenas_bin_valid,
    .elem = &arenas_bin_i_node,
};

/* arenas.lrun.<i>.size */

static bool
arenas_lrun_valid(const size_t *mib, size_t depth, size_t i) {
	(void)mib, (void)depth;
	return i < SZ_NLARGE;
}

static int
arenas_lrun_i_size_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)miblen;
	size_t v = sz_index2size((szind_t)(SZ_NSMALL + mib[2]));
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static const ctl_node_t arenas_lrun_i_children[] = {
    {.name = "size", .handler = arenas_lrun_i_size_ctl},
    {.name = NULL},
};

static const ctl_node_t arenas_lrun_i_node = {.name = "<i>", .children = arenas_lrun_i_children};

static const ctl_index_t arenas_lrun_index = {
    .valid = arenas_lrun_valid,
    .elem = &arenas_lrun_i_node,
};

/* arenas.hchunk.<i>.size */

static bool
arenas_hchunk_valid(const size_t *mib, size_t depth, size_t i) {
	(void)mib, (void)depth;
	return i < SZ_NHUGE;
}

static int
arenas_hchunk_i_size_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
	(void)miblen;
	size_t v = sz_index2size((szind_t)(SZ_NPAGED + mib[2]));
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static const ctl_node_t arenas_hchunk_i_children[] = {
    {.name = "size", .handler = arenas_hchunk_i_size_ctl},
    {.name = NULL},
};

static const ctl_node_t arenas_hchunk_i_node = {.name = "<i>",
                                                .children = arenas_hchunk_i_children};

static const ctl_index_t arenas_hchunk_index = {
    .valid = arenas_hchunk_valid,
    .elem = &arenas_hchunk_i_node,
};

/* arenas.nlextents, arenas.lextent.<i>.size (jemalloc 5) */

static int
arenas_nlextents_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                     size_t newlen) {
	(void)mib, (void)miblen;
	unsigned v = SZ_NLARGE + SZ_NHUGE;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static bool
arenas_lextent_valid(const size_t *mib, size_t depth, size_t i) {
	(void)mib, (void)depth;
	return i < SZ_NLARGE + SZ_NHUGE;
}

static int
arenas_lextent_i_size_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	size_t v = sz_index2size((szind_t)(SZ_NSMALL + mib[2]));
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static const ctl_node_t arenas_lextent_i_children[] = {
    {.name = "size", .handler = arenas_lextent_i_size_ctl},
    {.name = NULL},
};

static const ctl_node_t arenas_lextent_i_node = {.name = "<i>",
                                                 .children = arenas_lextent_i_children};

static const ctl_index_t arenas_lextent_index = {
    .valid = arenas_lextent_valid,
    .elem = &arenas_lextent_i_node,
};

/* The arena whose memory ptr points into, or NULL. */
static arena_t *
arenas_lookup_arena(const void *ptr) {
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		extent_t *e = huge_lookup(ptr);
		return e != NULL ? e->arena : NULL;
	}
	if (!arena_chunk_registered_checked(ptr)) {
		return NULL;
	}
	return arena_chunk_of(ptr)->arena;
}

static int
arenas_lookup_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	void *ptr = NULL;
	if (newp == NULL) {
		return EINVAL;
	}
	int err = ctl_write(newp, newlen, &ptr, sizeof(ptr));
	if (err != 0) {
		return err;
	}
	arena_t *a = arenas_lookup_arena(ptr);
	if (a == NULL) {
		return EINVAL;
	}
	unsigned ind = a->ind;
	return ctl_read(oldp, oldlenp, &ind, sizeof(ind));
}

const ctl_node_t ctl_arenas_children[] = {
    {.name = "narenas", .handler = arenas_narenas_ctl},
    {.name = "initialized", .handler = arenas_initialized_ctl},
    {.name = "lg_dirty_mult", .handler = arenas_lg_dirty_mult_ctl},
    {.name = "decay_time", .handler = arenas_decay_time_ctl},
    {.name = "quantum", .handler = arenas_quantum_ctl},
    {.name = "page", .handler = arenas_page_ctl},
    {.name = "tcache_max", .handler = arenas_tcache_max_ctl},
    {.name = "nbins", .handler = arenas_nbins_ctl},
    {.name = "nhbins", .handler = arenas_nhbins_ctl},
    {.name = "bin", .index = &arenas_bin_index},
    {.name = "nlruns", .handler = arenas_nlruns_ctl},
    {.name = "lrun", .index = &arenas_lrun_index},
    {.name = "nhchunks", .handler = arenas_nhchunks_ctl},
    {.name = "hchunk", .index = &arenas_hchunk_index},
    {.name = "extend", .handler = arenas_extend_ctl},
    {.name = "create", .handler = arenas_create_ctl},
    {.name = "nlextents", .handler = arenas_nlextents_ctl},
    {.name = "lextent", .index = &arenas_lextent_index},
    {.name = "lookup", .handler = arenas_lookup_ctl},
    {.name = "dirty_decay_ms", .handler = arenas_dirty_decay_ms_ctl},
    {.name = "muzzy_decay_ms", .handler = arenas_muzzy_decay_ms_ctl},
    {.name = "percpu_spread", .handler = arenas_percpu_spread_ctl},
    {.name = "percpu_waits", .handler = arenas_percpu_waits_ctl},
    {.name = NULL},
};
