/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl prof.* and thread.prof.*: heap profiling's controls (prof.h).
 *
 * Without configure --enable-prof every node answers ENOENT, as in
 * jemalloc. In a build with it but a run without opt.prof, the nodes read
 * their values; prof.dump fails with EFAULT (there is nothing to dump),
 * and prof.active, prof.gdump, prof.reset and thread.prof.active refuse
 * writes with EFAULT too, since nothing samples.
 *
 * prof.active, prof.thread_active_init, prof.gdump: bool, read-write.
 * prof.dump: write-only const char *, a file name or NULL for the next
 * manual dump's name. prof.reset: write-only size_t, the new lg_sample
 * (none: keep it). prof.lg_sample: size_t, read-only. prof.interval:
 * uint64_t bytes between interval dumps, read-only (0: none).
 * thread.prof.name: const char *, read or write but not both in one call
 * (EPERM); the name must consist of printable characters and blanks
 * (EFAULT otherwise). thread.prof.active: bool, read-write.
 */
#include <errno.h>

#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/prof.h"

/* A read-write bool node over get/set; writes only while profiling runs. */
static int
prof_bool_ctl(void *oldp, size_t *oldlenp, void *newp, size_t newlen, bool (*get)(void),
              void (*set)(bool)) {
	if (!config_prof) {
		return ENOENT;
	}
	bool old = get();
	bool value = old;
	int err = ctl_write(newp, newlen, &value, sizeof(value));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && !prof_enabled) {
		return EFAULT;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL) {
		set(value);
	}
	return 0;
}

static int
prof_active_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                size_t newlen) {
	(void)mib, (void)miblen;
	return prof_bool_ctl(oldp, oldlenp, newp, newlen, prof_active_get, prof_active_set);
}

static int
prof_thread_active_init_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                            void *newp, size_t newlen) {
	(void)mib, (void)miblen;
	return prof_bool_ctl(oldp, oldlenp, newp, newlen, prof_thread_active_init_get,
	                     prof_thread_active_init_set);
}

static int
prof_gdump_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
               size_t newlen) {
	(void)mib, (void)miblen;
	return prof_bool_ctl(oldp, oldlenp, newp, newlen, prof_gdump_get, prof_gdump_set);
}

/* The checks of a write-only node: ENOENT without --enable-prof, EPERM on a
 * read, EINVAL on a bad length; else the value written, if any, in *value. */
static int
prof_write_only(const void *oldp, const size_t *oldlenp, const void *newp, size_t newlen,
                void *value, size_t len) {
	if (!config_prof) {
		return ENOENT;
	}
	int err = ctl_writeonly(oldp, oldlenp);
	return err != 0 ? err : ctl_write(newp, newlen, value, len);
}

static int
prof_dump_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
              size_t newlen) {
	(void)mib, (void)miblen;
	const char *filename = NULL;
	int err = prof_write_only(oldp, oldlenp, newp, newlen, &filename, sizeof(filename));
	if (err != 0) {
		return err;
	}
	if (ctl_tsd() == NULL) {
		return EAGAIN;
	}
	return prof_mdump(filename) ? EFAULT : 0;
}

static int
prof_reset_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
               size_t newlen) {
	(void)mib, (void)miblen;
	size_t lg_sample = config_prof ? prof_lg_sample_get() : 0;
	int err = prof_write_only(oldp, oldlenp, newp, newlen, &lg_sample, sizeof(lg_sample));
	if (err != 0) {
		return err;
	}
	if (lg_sample > 62) {
		return EINVAL;
	}
	if (!prof_enabled) {
		return EFAULT;
	}
	prof_reset((unsigned)lg_sample);
	return 0;
}

static int
prof_lg_sample_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_prof) {
		return ENOENT;
	}
	size_t v = prof_enabled ? prof_lg_sample_get() : opt_lg_prof_sample;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
prof_interval_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_prof) {
		return ENOENT;
	}
	uint64_t v = prof_interval_get();
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

const ctl_node_t ctl_prof_children[] = {
    {.name = "thread_active_init", .handler = prof_thread_active_init_ctl},
    {.name = "active", .handler = prof_active_ctl},
    {.name = "dump", .handler = prof_dump_ctl},
    {.name = "gdump", .handler = prof_gdump_ctl},
    {.name = "reset", .handler = prof_reset_ctl},
    {.name = "interval", .handler = prof_interval_ctl},
    {.name = "lg_sample", .handler = prof_lg_sample_ctl},
    {.name = NULL},
};

/* ---------------------------------------------------------------------- */
/* thread.prof.* */

static bool
prof_name_valid(const char *name) {
	for (const char *p = name; *p != '\0'; p++) {
		/* Printable ASCII and blanks: the name goes into text dumps. */
		if (!((*p >= 0x21 && *p <= 0x7e) || *p == ' ' || *p == '\t')) {
			return false;
		}
	}
	return true;
}

static int
thread_prof_name_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                     size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_prof) {
		return ENOENT;
	}
	if (oldp != NULL && newp != NULL) {
		return EPERM;
	}
	if (ctl_tsd() == NULL) {
		return EAGAIN;
	}
	if (newp != NULL) {
		const char *name = NULL;
		int err = ctl_write(newp, newlen, &name, sizeof(name));
		if (err != 0) {
			return err;
		}
		if (name == NULL || !prof_name_valid(name)) {
			return EFAULT;
		}
		return prof_thread_name_set(name) ? EFAULT : 0;
	}
	const char *name = prof_thread_name_get();
	return ctl_read(oldp, oldlenp, &name, sizeof(name));
}

static int
thread_prof_active_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_prof) {
		return ENOENT;
	}
	if (ctl_tsd() == NULL) {
		return EAGAIN;
	}
	bool old = prof_thread_active_get();
	bool value = old;
	int err = ctl_write(newp, newlen, &value, sizeof(value));
	if (err != 0) {
		return err;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && prof_thread_active_set(value)) {
		return EFAULT;
	}
	return 0;
}

const ctl_node_t ctl_thread_prof_children[] = {
    {.name = "name", .handler = thread_prof_name_ctl},
    {.name = "active", .handler = thread_prof_active_ctl},
    {.name = NULL},
};
