/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The stats timeline: memory over time as JSON lines.
 *
 * With opt.stats_timeline set to a path (or the timeline started through
 * the timeline.* mallctl nodes), liballoc appends one JSON object per line
 * to that file every opt.stats_interval_ms milliseconds: the wall-clock
 * time, the totals of stats.* (allocated, active, resident, mapped,
 * retained, metadata), the dirty bytes, the threads bound to arenas, each
 * arena's active and dirty bytes and the size classes holding the most
 * bytes; and one last line, marked "final", at exit. "%p" in the path
 * becomes the process id, so a forked child writes its own file.
 *
 * Who writes. The first background thread (background_thread.h), when
 * background threads run: it sleeps no longer than until the next line is
 * due. Otherwise the allocation slow paths: the thread cache's GC step
 * (the hit path's one "event due" branch, every TCACHE_GC_INTERVAL
 * requests of a bin) and free's slow path call timeline_tick(), which is
 * one load and a not-taken branch while the timeline is off; when it is on
 * and a line is due, the first thread to move the deadline writes it (at
 * most one line per interval). A program that makes no allocator call and
 * runs no background thread writes no line until it calls again. Never from
 * a signal handler: only allocator calls and the background thread write,
 * and an allocator call that finds the writer busy skips its turn.
 *
 * What it reads. Each line is one refresh of the mallctl statistics
 * snapshot (ctl_stats_sample), so its figures are exactly what stats.* read
 * at the epoch the line names.
 *
 * Memory and locks. The writer formats into a static buffer and writes with
 * open/write/close: nothing comes from the program's heap. tl_lock
 * (timeline.c) serialises writers and guards the file; it comes after
 * bg_lock and before ctl_lock in the lock order (mutex.h). The snapshot is
 * taken under ctl_lock (and the arena locks) and copied out; write(2)
 * runs with tl_lock held only, never an allocation lock. Allocation paths
 * only try tl_lock, so a slow disk never stalls malloc.
 *
 * Fork. The child closes its copy of the file and opens the path anew for
 * its own pid at its first line (with "%p", its own file; without, lines
 * of both processes are appended to one file, each with its pid).
 *
 * A --disable-stats build keeps no statistics to write: the options are
 * accepted with a warning, and the timeline.* nodes answer ENOENT.
 */
#ifndef ALLOC_INTERNAL_TIMELINE_H
#define ALLOC_INTERNAL_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/opt.h"
#include "alloc/internal/util.h"

/* The longest opt.stats_interval_ms: a day. */
#define TIMELINE_INTERVAL_MS_MAX     ((int64_t)24 * 3600 * 1000)
#define TIMELINE_INTERVAL_MS_DEFAULT 1000

/* opt.stats_timeline: the path pattern ("" = off). */
extern char opt_stats_timeline[OPT_STRING_MAX + 1];
/* opt.stats_interval_ms. */
extern size_t opt_stats_interval_ms;

/* Whether the timeline runs; read without a lock by timeline_tick. */
extern bool timeline_running;

/* Start-up, outside every lock: starts the timeline when
 * opt.stats_timeline is set (its first line comes at the first tick). */
void timeline_boot(void);

/* Out of line: writes a line if one is due and nobody else is writing. */
void timeline_tick_slow(void);

/* From allocation slow paths holding no allocator lock. */
ALWAYS_INLINE void
timeline_tick(void) {
	if (unlikely(__atomic_load_n(&timeline_running, __ATOMIC_RELAXED))) {
		timeline_tick_slow();
	}
}

/* From the first background thread, after its round: writes a line if one
 * is due; returns the ns until the next one (UINT64_MAX when off). */
uint64_t timeline_background(void);

/* The timeline.* mallctl nodes' actions. Each returns 0 or an errno value
 * (EINVAL: no path, or a path too long; ENOENT: no statistics). */
int timeline_start(void);
/* Writes a final line and closes the file. */
int timeline_stop(void);
/* Writes a line now; EINVAL when the timeline does not run. */
int timeline_flush(void);
/* Copies the path pattern into buf (size OPT_STRING_MAX + 1). */
void timeline_path_get(char *buf);
/* New path pattern: the next line goes to the new file. "" stops. */
int timeline_path_set(const char *path);
size_t timeline_interval_ms_get(void);
int timeline_interval_ms_set(size_t ms);
/* Lines this process wrote. */
uint64_t timeline_lines_get(void);

void timeline_prefork(void);
void timeline_postfork_parent(void);
void timeline_postfork_child(void);

#endif
