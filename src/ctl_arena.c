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
 * flushed by the program, as the manual requires. Under program-supplied
 * hooks the freed chunks go to their dalloc hook at once. destroy, jemalloc
 * 5's, also gives back every chunk the arena keeps (the extent destroy hook
 * gets those dalloc refuses); the arena stays, empty and usable (liballoc
 * never recycles arena indices).
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
 * chunk_hooks (jemalloc 4) and extent_hooks (jemalloc 5) read and write
 * the arena's one set of memory hooks (extent_hooks.h).
 */
#include <errno.h>
#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/prof.h"
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

/* reset and destroy: discards every allocation of an extended arena;
 * then the freed memory goes back to program-supplied hooks (reset), or
 * every cached span goes back, dalloc's refusals to destroy (destroy). */
static int
arena_i_discard(const size_t *mib, void *oldp, size_t *oldlenp, void *newp, size_t newlen,
                bool destroy) {
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
	/* Sampled objects of the arena go with it (prof.h). */
	prof_arena_reset(a);
	huge_reset(a);
	arena_reset(a);
	arena_give_back(a, destroy);
	return 0;
}

static int
arena_i_reset_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)miblen;
	return arena_i_discard(mib, oldp, oldlenp, newp, newlen, false);
}

static int
arena_i_destroy_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                    size_t newlen) {
	(void)miblen;
	return arena_i_discard(mib, oldp, oldlenp, newp, newlen, true);
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
 * The two faces of the arena's memory hooks (extent_hooks.h) share one
 * protocol: the value before is read out, a value written (of exactly
 * `size` bytes) replaces it, and a value the arena refuses is EINVAL.
 * get/set see the value through a pointer of the face's type.
 */
typedef struct {
	void (*get)(arena_t *arena, void *out);
	bool (*set)(arena_t *arena, const void *value);
	size_t size;
} ctl_hooks_face_t;

static int
arena_hooks_rw(const size_t *mib, void *oldp, size_t *oldlenp, void *newp, size_t newlen,
               const ctl_hooks_face_t *face) {
	arena_t *a = mib[1] < ctl_narenas() ? ctl_arena_at(mib[1]) : NULL;
	if (a == NULL) {
		return EFAULT;
	}
	_Alignas(void *) unsigned char old[sizeof(chunk_hooks_t)];
	_Alignas(void *) unsigned char v[sizeof(chunk_hooks_t)];
	face->get(a, old);
	int err = ctl_write(newp, newlen, v, face->size);
	if (err == 0) {
		err = ctl_read(oldp, oldlenp, old, face->size);
	}
	if (err == 0 && newp != NULL && face->set(a, v)) {
		err = EINVAL;
	}
	return err;
}

/*
 * arena.<i>.chunk_hooks (chunk_hooks_t, rw): the hooks through which the
 * arena maps, unmaps, purges, splits and merges its memory. A write
 * replaces all seven (each must be non-NULL: EINVAL otherwise); the old
 * value is returned as usual, so a program can wrap the previous hooks.
 */
static void
chunk_face_get(arena_t *a, void *out) {
	arena_chunk_hooks_get(a, out);
}

static bool
chunk_face_set(arena_t *a, const void *value) {
	return arena_chunk_hooks_set(a, value);
}

static const ctl_hooks_face_t chunk_face = {chunk_face_get, chunk_face_set, sizeof(chunk_hooks_t)};

static int
arena_i_chunk_hooks_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)miblen;
	return arena_hooks_rw(mib, oldp, oldlenp, newp, newlen, &chunk_face);
}

/*
 * arena.<i>.extent_hooks (extent_hooks_t *, rw): the same hooks as
 * chunk_hooks, as jemalloc 5 sees them (extent_hooks.h). A read gives a
 * table the program may wrap: extent_hooks_default on default hooks. A
 * write of NULL or of a table without alloc is EINVAL.
 */
static void
extent_face_get(arena_t *a, void *out) {
	extent_hooks_t *h = arena_extent_hooks_get(a);
	memcpy(out, &h, sizeof(h));
}

static bool
extent_face_set(arena_t *a, const void *value) {
	extent_hooks_t *h;
	memcpy(&h, value, sizeof(h));
	return arena_extent_hooks_set(a, h);
}

static const ctl_hooks_face_t extent_face = {extent_face_get, extent_face_set,
                                             sizeof(extent_hooks_t *)};

static int
arena_i_extent_hooks_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
	(void)miblen;
	return arena_hooks_rw(mib, oldp, oldlenp, newp, newlen, &extent_face);
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
    {.name = "destroy", .handler = arena_i_destroy_ctl},
    {.name = "dss", .handler = arena_i_dss_ctl},
    {.name = "lg_dirty_mult", .handler = arena_i_lg_dirty_mult_ctl},
    {.name = "decay_time", .handler = arena_i_decay_time_ctl},
    {.name = "chunk_hooks", .handler = arena_i_chunk_hooks_ctl},
    {.name = "extent_hooks", .handler = arena_i_extent_hooks_ctl},
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
