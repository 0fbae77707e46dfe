/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl arena.<i>.*: actions on one arena, and its purging settings.
 *
 * <i> ranges over [0, arenas.narenas]; i == arenas.narenas (jemalloc 4.x)
 * or 4096 (jemalloc 5's MALLCTL_ARENAS_ALL) means every arena for purge,
 * decay and initialized. An automatic arena that no
 * thread used yet does not exist: purge and decay skip it, the settings
 * answer EFAULT, as jemalloc does for an uninitialised arena.
 *
 * reset discards every allocation of an arena made by arenas.extend
 * (EFAULT for automatic arenas, which threads share, and for the "all"
 * index). Before resetting, the calling thread's cache is flushed, so its
 * own cached objects cannot outlive the arena's memory; other threads'
 * caches and explicit caches that hold objects of the arena must have been
 * flushed by the program, as the manual requires. destroy, jemalloc 5's
 * spelling, is the same operation: the arena stays, empty and usable
 * (liballoc never recycles arena indices).
 *
 * dss reads "disabled" (liballoc never uses sbrk); writing "disabled" is
 * accepted, "primary" or "secondary" is EFAULT (the manual's answer when
 * the dss setting cannot be applied), anything else EINVAL.
 *
 * lg_dirty_mult and decay_time are ssize_t; a value the arena refuses is
 * EFAULT, as in jemalloc 4.x. dirty_decay_ms and muzzy_decay_ms (jemalloc
 * 5) are the two decay times in milliseconds; decay_time is the dirty one
 * in seconds (a time under a second reads as 1, see decay.h).
 *
 * arena.<i>.chunk_hooks is not provided: the chunk layer cannot call
 * program-supplied hooks, and a read that returned hooks a write could not
 * install would mislead; the name answers ENOENT.
 */
#include <errno.h>
#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/heap.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/tsd.h"

/* The arena at index i, NULL when it does not exist (yet). */
static arena_t *
ctl_arena_at(size_t i) {
	if (i >= ARENAS_MAX) {
		return NULL;
	}
	return __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE);
}

static bool
arena_index_valid(const size_t *mib, size_t depth, size_t i) {
	(void)mib, (void)depth;
	return i <= ctl_narenas() || i == CTL_ARENAS_ALL;
}

static int
arena_i_purge_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)miblen;
	int err = ctl_action_args(oldp, oldlenp, newp, newlen);
	if (err != 0) {
		return err;
	}
	unsigned n = ctl_narenas();
	for (unsigned i = 0; i < n; i++) {
		arena_t *a = ctl_arena_at(i);
		if (a != NULL && (ctl_arenas_all(mib[1], n) || mib[1] == i)) {
			arena_purge_all(a);
		}
	}
	return 0;
}

static int
arena_i_decay_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)miblen;
	int err = ctl_action_args(oldp, oldlenp, newp, newlen);
	if (err != 0) {
		return err;
	}
	unsigned n = ctl_narenas();
	for (unsigned i = 0; i < n; i++) {
		arena_t *a = ctl_arena_at(i);
		if (a != NULL && (ctl_arenas_all(mib[1], n) || mib[1] == i)) {
			arena_decay(a);
		}
	}
	return 0;
}

static int
arena_i_reset_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)miblen;
	int err = ctl_action_args(oldp, oldlenp, newp, newlen);
	if (err != 0) {
		return err;
	}
	arena_t *a = ctl_arena_at(mib[1]);
	if (mib[1] < narenas_auto || a == NULL) {
		return EFAULT;
	}
	tsd_t *tsd = ctl_tsd();
	if (tsd->tcache.stacks != NULL) {
		tcache_flush(&tsd->tcache);
	}
	if (a->region != NULL) {
		/* A private heap: alloc_heap_reset, under its lock. */
		return heap_reset(a) == 0 ? 0 : EFAULT;
	}
	huge_reset(a);
	arena_reset(a);
	return 0;
}

static int
arena_i_dss_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                size_t newlen) {
	(void)mib, (void)miblen;
	const char *dss = NULL;
	int err = ctl_write(newp, newlen, &dss, sizeof(dss));
	if (err != 0) {
		return err;
	}
	if (newp != NULL) {
		if (dss == NULL) {
			return EINVAL;
		}
		if (strcmp(dss, "primary") == 0 || strcmp(dss, "secondary") == 0) {
			return EFAULT;
		}
		if (strcmp(dss, "disabled") != 0) {
			return EINVAL;
		}
	}
	const char *value = "disabled";
	return ctl_read(oldp, oldlenp, &value, sizeof(value));
}

static int
arena_i_lg_dirty_mult_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)miblen;
	arena_t *a = ctl_arena_at(mib[1]);
	if (a == NULL) {
		return EFAULT;
	}
	ssize_t old = arena_lg_dirty_mult_get(a);
	ssize_t v;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && arena_lg_dirty_mult_set(a, v)) {
		return EFAULT;
	}
	return 0;
}

/*
 * arena.<i>.dirty_decay_ms, muzzy_decay_ms (jemalloc 5) and decay_time
 * (4.x: the dirty one in seconds, read rounded up): ssize_t, rw. `seconds`
 * says which unit the node speaks.
 */
static int
arena_i_decay_rw(const size_t *mib, void *oldp, size_t *oldlenp, void *newp, size_t newlen,
                 decay_stage_t stage, bool seconds) {
	arena_t *a = ctl_arena_at(mib[1]);
	if (a == NULL) {
		return EFAULT;
	}
	bool set;
	ssize_t ms;
	int err = ctl_decay_rw(oldp, oldlenp, newp, newlen, arena_decay_ms_get(a, stage), seconds,
	                       &set, &ms);
	if (err != 0 || !set) {
		return err;
	}
	return arena_decay_ms_set(a, stage, ms) ? EFAULT : 0;
}

static int
arena_i_decay_time_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)miblen;
	return arena_i_decay_rw(mib, oldp, oldlenp, newp, newlen, DECAY_STAGE_DIRTY, true);
}

static int
arena_i_dirty_decay_ms_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                           void *newp, size_t newlen) {
	(void)miblen;
	return arena_i_decay_rw(mib, oldp, oldlenp, newp, newlen, DECAY_STAGE_DIRTY, false);
}

static int
arena_i_muzzy_decay_ms_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                           void *newp, size_t newlen) {
	(void)miblen;
	return arena_i_decay_rw(mib, oldp, oldlenp, newp, newlen, DECAY_STAGE_MUZZY, false);
}

/*
 * arena.<i>.chunk_hooks (chunk_hooks_t, rw): the hooks through which the
 * arena maps, unmaps, purges, splits and merges its memory. A write
 * replaces all seven (each must be non-NULL: EINVAL otherwise); the old
 * value is returned as usual, so a program can wrap the previous hooks.
 */
static int
arena_i_chunk_hooks_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)miblen;
	arena_t *a = mib[1] < ctl_narenas() ? ctl_arena_at(mib[1]) : NULL;
	if (a == NULL) {
		return EFAULT;
	}
	chunk_hooks_t old;
	arena_chunk_hooks_get(a, &old);
	chunk_hooks_t v;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && arena_chunk_hooks_set(a, &v)) {
		return EINVAL;
	}
	return 0;
}

/* arena.<i>.initialized (jemalloc 5, bool r-): whether arena i exists (an
 * automatic arena exists once a thread used it); true for the "all"
 * index i == narenas when any arena does. */
static int
arena_i_initialized_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)miblen;
	unsigned n = ctl_narenas();
	bool v = false;
	for (unsigned i = 0; i < n && !v; i++) {
		if (ctl_arenas_all(mib[1], n) || mib[1] == i) {
			v = ctl_arena_at(i) != NULL;
		}
	}
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static const ctl_node_t arena_i_children[] = {
    {.name = "purge", .handler = arena_i_purge_ctl},
    {.name = "decay", .handler = arena_i_decay_ctl},
    {.name = "reset", .handler = arena_i_reset_ctl},
    {.name = "destroy", .alias = "reset"},
    {.name = "dss", .handler = arena_i_dss_ctl},
    {.name = "lg_dirty_mult", .handler = arena_i_lg_dirty_mult_ctl},
    {.name = "decay_time", .handler = arena_i_decay_time_ctl},
    {.name = "chunk_hooks", .handler = arena_i_chunk_hooks_ctl},
    {.name = "initialized", .handler = arena_i_initialized_ctl},
    {.name = "dirty_decay_ms", .handler = arena_i_dirty_decay_ms_ctl},
    {.name = "muzzy_decay_ms", .handler = arena_i_muzzy_decay_ms_ctl},
    {.name = NULL},
};

static const ctl_node_t arena_i_node = {.name = "<i>", .children = arena_i_children};

const ctl_index_t ctl_arena_index = {
    .find = NULL,
    .valid = arena_index_valid,
    .elem = &arena_i_node,
};
