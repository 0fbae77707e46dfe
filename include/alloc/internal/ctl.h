/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The mallctl tree: one static tree of named nodes behind mallctl,
 * mallctlnametomib and mallctlbymib, with the jemalloc 4.x namespace.
 *
 * Shape. A node is a leaf (it has a handler) or an interior node, whose
 * children are either a static array of named nodes ending with an entry
 * whose name is NULL, or an index (ctl_index_t): a family of elements such
 * as arena.<i> or arenas.bin.<i>, all shaped like one node. The arrays are
 * written out per subsystem in src/ctl_*.c and every handler is a named
 * function, so `grep` finds both the name and the code behind it.
 *
 * MIBs. The MIB component of a named child is its position in its parent's
 * array (stable for the life of the process); that of an indexed element is
 * the index itself, so "arenas.bin.2.size" resolves to {i, j, 2, k}. An
 * index whose elements are named at run time (opt.<name>, from opt_table)
 * maps names to positions with its `find` function.
 *
 * Spellings. Where jemalloc 5 renamed a node that means the same thing
 * (stats.arenas.<i>.bins.<j>.nslabs for 4.x's nruns), the new name is an
 * entry of the same array with `alias` set to the sibling it stands for:
 * resolution returns the sibling's position, so both names give the same
 * node and the same MIB. An alias entry has no handler and no children;
 * its own position never comes out of name resolution and answers ENOENT
 * in mallctlbymib.
 *
 * Handlers get the full MIB (so arena.<i> handlers read i from mib[1]) and
 * the caller's buffers, and return 0 or an errno value:
 *   ENOENT  unknown name, index out of range, not a leaf
 *   EINVAL  *oldlenp or newlen not the size of the value, or a bad value;
 *           on a bad *oldlenp as much as fits is still copied
 *   EPERM   writing a read-only node, reading a write-only one
 *   EFAULT  an action with side effects failed (manual: "not directly
 *           related to mallctl read/write processing")
 *   EAGAIN  memory ran out (allocator start-up, arenas.extend, tcache.create)
 *
 * Statistics come from a snapshot that writing `epoch` refreshes (see
 * ctl_stats.c); nothing else in the tree caches values.
 *
 * Locking: ctl_lock protects the snapshot. Lock order: after init_lock,
 * before tcaches_lock and every arena lock (refresh reads arena stats under
 * it).
 */
#ifndef ALLOC_INTERNAL_CTL_H
#define ALLOC_INTERNAL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/tsd.h"

/* Deepest name: stats.arenas.<i>.bins.<j>.nmalloc has 6 components. */
#define CTL_MAX_DEPTH 8

typedef int ctl_handler_t(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen);

typedef struct ctl_node_s ctl_node_t;
typedef struct ctl_index_s ctl_index_t;

struct ctl_node_s {
	/* NULL ends a children array. */
	const char *name;
	/* Leaf: its handler. */
	ctl_handler_t *handler;
	/* Interior with named children: the array, ended by a NULL name. */
	const ctl_node_t *children;
	/* Interior with indexed elements. */
	const ctl_index_t *index;
	/* Another spelling of the sibling of this name (see "Spellings"). */
	const char *alias;
};

struct ctl_index_s {
	/*
	 * Elements named at run time: sets *pos to the position of the
	 * element called name[0..len) and returns true, or returns false.
	 * NULL for numeric indices (the component is the decimal index).
	 */
	bool (*find)(const char *name, size_t len, size_t *pos);
	/* Whether element i exists; mib[0..depth) is the path to the index. */
	bool (*valid)(const size_t *mib, size_t depth, size_t i);
	/* What every element looks like. */
	const ctl_node_t *elem;
};

/* The top-level subtrees, one per src/ctl_*.c file. */
extern const ctl_node_t ctl_config_children[];
extern const ctl_index_t ctl_opt_index;
extern const ctl_node_t ctl_thread_children[];
extern const ctl_node_t ctl_tcache_children[];
extern const ctl_index_t ctl_arena_index;
extern const ctl_node_t ctl_arenas_children[];
extern const ctl_node_t ctl_stats_children[];
/* prof.* and thread.prof.* (ctl_prof.c). */
extern const ctl_node_t ctl_prof_children[];
extern const ctl_node_t ctl_thread_prof_children[];
/* stats.background_thread.* (ctl_background_thread.c). */
extern const ctl_node_t ctl_stats_background_thread_children[];
/* timeline.* (ctl_timeline.c). */
extern const ctl_node_t ctl_timeline_children[];
/* Leaves of the root (ctl_stats.c). */
ctl_handler_t ctl_version_handler;
ctl_handler_t ctl_epoch_handler;
/* The background_thread leaf (ctl_background_thread.c). */
ctl_handler_t ctl_background_thread_handler;
ctl_handler_t ctl_max_background_threads_handler;

/* The engine behind the exported functions (also used by stats_print.c and
 * glibc_ext.c, so they work in prefixed builds too). */
int ctl_byname(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int ctl_nametomib(const char *name, size_t *mib, size_t *miblen);
int ctl_bymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
              size_t newlen);

/* Makes sure the allocator is initialised and returns the calling thread's
 * state, set up; NULL when start-up failed. */
tsd_t *ctl_tsd(void);

/* ---------------------------------------------------------------------- */
/* Helpers for handlers, with jemalloc's rules. */

/* EPERM when the caller passed a new value. */
int ctl_readonly(const void *newp, size_t newlen);
/* EPERM when the caller asked for the old value. */
int ctl_writeonly(const void *oldp, const size_t *oldlenp);
/* Copies the value out when oldp and oldlenp are given: EINVAL (after
 * copying what fits) when *oldlenp is not len. */
int ctl_read(void *oldp, size_t *oldlenp, const void *value, size_t len);
/* Copies the new value in when newp is given; EINVAL when newlen is not
 * len. Returns 0 without touching *value when there is no new value. */
int ctl_write(const void *newp, size_t newlen, void *value, size_t len);
/* For nodes whose read creates something (arenas.extend, tcache.create):
 * EPERM on a write, EINVAL when *oldlenp cannot take the len-byte result,
 * checked before anything is created, which the caller could not find
 * again. */
int ctl_create_check(const void *oldp, const size_t *oldlenp, const void *newp, size_t newlen,
                     size_t len);
/* Action leaves (void, --): EPERM when the caller passed a value either
 * way. */
int ctl_action_args(void *oldp, size_t *oldlenp, void *newp, size_t newlen);
/*
 * The decay-time nodes (ssize_t, rw): reads the current value `old_ms`
 * out in the node's unit (milliseconds, or whole seconds rounded up when
 * `seconds`: the 4.x decay_time nodes) and takes the new one in that unit.
 * Returns 0 with *set false when there is no new value, 0 with *set true and
 * *new_ms the new value in milliseconds, or an errno value (EFAULT for a
 * value out of range).
 */
int ctl_decay_rw(void *oldp, size_t *oldlenp, void *newp, size_t newlen, ssize_t old_ms,
                 bool seconds, bool *set, ssize_t *new_ms);
/* Read-only leaf: EPERM on a write, else ctl_read. */
int ctl_read_only_value(void *oldp, size_t *oldlenp, const void *newp, size_t newlen,
                        const void *value, size_t len);

/* Arenas the tree reports: automatic slots plus extended arenas
 * (arenas.narenas); index narenas in arena.<i> / stats.arenas.<i> means
 * all of them. */
unsigned ctl_narenas(void);

/* jemalloc 5's MALLCTL_ARENAS_ALL: the same "all arenas" index as
 * narenas, under a fixed number no arena index reaches. */
#define CTL_ARENAS_ALL 4096
_Static_assert(ARENAS_MAX <= CTL_ARENAS_ALL, "arena indices stay below MALLCTL_ARENAS_ALL");

/* Whether arena index i, with n arenas, means all of them. */
static inline bool
ctl_arenas_all(size_t i, unsigned n) {
	return i == n || i == CTL_ARENAS_ALL;
}

/* ---------------------------------------------------------------------- */
/* The statistics snapshot (ctl_stats.c). */

/* Per-arena values the snapshot keeps beside arena_stats_read's. */
typedef struct {
	bool initialized;
	ssize_t lg_dirty_mult;
	ssize_t decay_time;
	arena_stats_snapshot_t astats;
} ctl_arena_stats_t;

/* Refreshes the snapshot (what writing `epoch` does). */
void ctl_refresh(void);

/* Returns once no refresh that may have read an arena slot before it was
 * emptied is still running (alloc_heap_destroy: the stats timeline's
 * thread refreshes on its own, and the heap's region may go next). */
void ctl_refresh_wait(void);

/* What the stats timeline (timeline.h) writes per line: one refresh of the
 * snapshot, copied out, so a line shows exactly what stats.* read at its
 * epoch. Sizes in bytes. */
#define CTL_SAMPLE_ARENAS  256
#define CTL_SAMPLE_CLASSES 5
typedef struct {
	/* The epoch this refresh made. */
	uint64_t epoch;
	/* stats.allocated, active, metadata, resident, mapped, retained. */
	size_t allocated;
	size_t active;
	size_t metadata;
	size_t resident;
	size_t mapped;
	size_t retained;
	/* stats.arenas.<narenas>.pdirty in bytes. */
	size_t dirty;
	/* stats.arenas.<narenas>.nthreads: threads bound to an arena. */
	unsigned nthreads;
	/* The first CTL_SAMPLE_ARENAS arenas that exist (stats.arenas.<i>);
	 * narenas_left counts the ones that did not fit. */
	unsigned narenas;
	unsigned narenas_left;
	struct {
		unsigned index;
		unsigned nthreads;
		size_t active;
		size_t dirty;
	} arenas[CTL_SAMPLE_ARENAS];
	/* The size classes holding the most bytes in live objects (all
	 * arenas; small: curregs, large and huge: curruns), most first. */
	unsigned nclasses;
	struct {
		size_t size;
		size_t objects;
		size_t bytes;
	} classes[CTL_SAMPLE_CLASSES];
} ctl_sample_t;

/* Refreshes the snapshot and fills *out from it (ctl_lock is released on
 * return). With !wait, gives up and returns false when ctl_lock is busy
 * (allocation paths never wait for a mallctl reader). Only with
 * config_stats. */
bool ctl_stats_sample(ctl_sample_t *out, bool wait);

/* Registers the opt.stats_print report at exit (stats_print.c); called
 * once at the end of start-up, outside every lock. */
void stats_print_atexit_boot(void);

void ctl_prefork(void);
void ctl_postfork_parent(void);
void ctl_postfork_child(void);

#endif
