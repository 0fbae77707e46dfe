/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl timeline.*: the stats timeline (timeline.h) seen from the mallctl
 * tree. liballoc's own names (jemalloc has no timeline):
 *
 *   timeline.active      (bool, rw)   whether lines are written. Writing
 *       true starts it (a first line at once; EINVAL when no path is set,
 *       EFAULT when the file cannot be opened); writing false writes a
 *       final line and closes the file. The old value is returned.
 *   timeline.path        (const char *, rw)  the path pattern ("%p": the
 *       pid). Starts as opt.stats_timeline. Writing it sends the next line
 *       to the new file; writing "" stops the timeline as false above.
 *       EINVAL for a path over 255 bytes. The string read stays valid
 *       until the next read of this node.
 *   timeline.interval_ms (size_t, rw)  time between lines, in [1, 86400000]
 *       (EINVAL otherwise). Starts as opt.stats_interval_ms.
 *   timeline.flush       (void)  writes a line now (EINVAL when the
 *       timeline does not run).
 *   timeline.lines       (uint64_t, r)  lines this process has written.
 *
 * Like stats.*, every node answers ENOENT in a --disable-stats build.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/timeline.h"

static int
timeline_active_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                    size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	bool old = __atomic_load_n(&timeline_running, __ATOMIC_RELAXED);
	bool v = old;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err == 0) {
		err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	}
	if (err != 0 || newp == NULL) {
		return err;
	}
	return v ? timeline_start() : timeline_stop();
}

static int
timeline_path_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	static char shown[OPT_STRING_MAX + 1];
	if (!config_stats) {
		return ENOENT;
	}
	const char *v = NULL;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && v == NULL) {
		return EINVAL;
	}
	if (oldp != NULL && oldlenp != NULL) {
		timeline_path_get(shown);
		const char *s = shown;
		err = ctl_read(oldp, oldlenp, &s, sizeof(s));
		if (err != 0) {
			return err;
		}
	}
	return newp != NULL ? timeline_path_set(v) : 0;
}

static int
timeline_interval_ms_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	size_t old = timeline_interval_ms_get();
	size_t v = old;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err == 0) {
		err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	}
	if (err != 0 || newp == NULL) {
		return err;
	}
	return timeline_interval_ms_set(v);
}

static int
timeline_flush_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	int err = ctl_readonly(newp, newlen);
	if (err == 0) {
		err = ctl_writeonly(oldp, oldlenp);
	}
	return err != 0 ? err : timeline_flush();
}

static int
timeline_lines_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	uint64_t v = timeline_lines_get();
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

const ctl_node_t ctl_timeline_children[] = {
    {.name = "active", .handler = timeline_active_ctl},
    {.name = "path", .handler = timeline_path_ctl},
    {.name = "interval_ms", .handler = timeline_interval_ms_ctl},
    {.name = "flush", .handler = timeline_flush_ctl},
    {.name = "lines", .handler = timeline_lines_ctl},
    {.name = NULL},
};
