/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl thread.*: the calling thread's arena, its byte counters and its
 * thread cache.
 *
 * thread.allocated / thread.deallocated are the exact byte counts (usable
 * sizes) the thread's allocation calls kept in its state; the *p variants
 * return pointers to those counters, valid for the life of the thread. The
 * counters are statistics: without them (--disable-stats) the four nodes
 * answer ENOENT, as in jemalloc.
 * thread.arena binds the thread to an arena for good (CPU migration no
 * longer rebinds it). thread.tcache.enabled false flushes and releases the
 * thread's cache and leaves it off; true sets it up again, except while the
 * fill options keep caches off (EPERM, see fill.h).
 * thread.idle (jemalloc 5, void action) is the program's hint that the
 * thread will be idle for a while: its cache is flushed (the objects go
 * back to their arenas, so other threads can reuse them) and its arena
 * purges what its decay curve says is due, without waiting for the next
 * allocation slow path.
 */
#include <errno.h>

#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/tsd.h"

static int
thread_arena_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen) {
	(void)mib, (void)miblen;
	tsd_t *tsd = ctl_tsd();
	arena_t *old = tsd_arena(tsd);
	if (old == NULL) {
		return EAGAIN;
	}
	unsigned oldind = old->ind;
	unsigned newind = oldind;
	int err = ctl_write(newp, newlen, &newind, sizeof(newind));
	if (err != 0) {
		return err;
	}
	/* The old value first: a call that fails on its buffer changes
	 * nothing. */
	err = ctl_read(oldp, oldlenp, &oldind, sizeof(oldind));
	if (err != 0) {
		return err;
	}
	if (newp != NULL) {
		if (newind >= ctl_narenas()) {
			return EFAULT;
		}
		/* Automatic arenas are created on first use; an index past
		 * them must name an arena arenas.extend made. */
		arena_t *a = newind < narenas_auto ? arena_get(newind) : arenas[newind];
		if (a == NULL) {
			return newind < narenas_auto ? EAGAIN : EFAULT;
		}
		/* A private heap's blocks never go through a thread's cache,
		 * which a thread's own arena feeds. */
		if (a->region != NULL) {
			return EINVAL;
		}
		tsd_arena_set(tsd, a, true);
		/* The cache's unmerged request counts now go to the new
		 * arena's stats, like its future fills. */
		if (tsd->tcache.stacks != NULL) {
			tsd->tcache.arena = a;
		}
	}
	return 0;
}

static int
thread_allocated_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                     size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	uint64_t v = ctl_tsd()->allocated;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
thread_allocatedp_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                      size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	uint64_t *p = &ctl_tsd()->allocated;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &p, sizeof(p));
}

static int
thread_deallocated_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	uint64_t v = ctl_tsd()->deallocated;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
thread_deallocatedp_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	uint64_t *p = &ctl_tsd()->deallocated;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &p, sizeof(p));
}

static int
thread_tcache_enabled_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_tcache) {
		return ENOENT;
	}
	tsd_t *tsd = ctl_tsd();
	bool old = tsd->tcache.stacks != NULL;
	bool enable = old;
	int err = ctl_write(newp, newlen, &enable, sizeof(enable));
	if (err != 0) {
		return err;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && enable != old) {
		if (!enable) {
			tcache_destroy(&tsd->tcache);
		} else if (config_fill && fill_slow_paths) {
			/* The fill options need every call on the slow paths. */
			return EPERM;
		} else {
			arena_t *a = tsd_arena(tsd);
			if (a == NULL || tcache_init(&tsd->tcache, a)) {
				return EAGAIN;
			}
		}
	}
	return 0;
}

/* Flushes the calling thread's cache, if it has one. */
static void
thread_cache_flush(tsd_t *tsd) {
	if (tsd->tcache.stacks != NULL) {
		tcache_flush(&tsd->tcache);
	}
}

static int
thread_tcache_flush_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_tcache) {
		return ENOENT;
	}
	int err = ctl_action_args(oldp, oldlenp, newp, newlen);
	if (err == 0) {
		thread_cache_flush(ctl_tsd());
	}
	return err;
}

static int
thread_idle_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                size_t newlen) {
	(void)mib, (void)miblen;
	int err = ctl_action_args(oldp, oldlenp, newp, newlen);
	if (err != 0) {
		return err;
	}
	tsd_t *tsd = ctl_tsd();
	if (config_tcache) {
		thread_cache_flush(tsd);
	}
	arena_t *a = tsd_arena(tsd);
	if (a != NULL) {
		arena_decay(a);
	}
	return 0;
}

static const ctl_node_t thread_tcache_children[] = {
    {.name = "enabled", .handler = thread_tcache_enabled_ctl},
    {.name = "flush", .handler = thread_tcache_flush_ctl},
    {.name = NULL},
};

const ctl_node_t ctl_thread_children[] = {
    {.name = "arena", .handler = thread_arena_ctl},
    {.name = "allocated", .handler = thread_allocated_ctl},
    {.name = "allocatedp", .handler = thread_allocatedp_ctl},
    {.name = "deallocated", .handler = thread_deallocated_ctl},
    {.name = "deallocatedp", .handler = thread_deallocatedp_ctl},
    {.name = "tcache", .children = thread_tcache_children},
    {.name = "prof", .children = ctl_thread_prof_children},
    {.name = "idle", .handler = thread_idle_ctl},
    {.name = NULL},
};
