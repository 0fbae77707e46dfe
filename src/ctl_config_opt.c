/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl config.* and opt.*: what the build was configured with, and the
 * run-time options in force. All read-only.
 *
 * config.* answers from the config_* constants of config.h. Features
 * liballoc does not have (lazy locking, utrace, Valgrind support,
 * cache-oblivious placement) report false; config.prof is configure
 * --enable-prof, config.prof_libgcc / config.prof_libunwind the backtrace
 * method it chose; config.xmalloc is
 * config.fill, which compiles opt.xmalloc in; config.munmap is true because chunks are unmapped
 * when opt.retain is off or metadata runs short, config.tls because thread state lives in TLS.
 *
 * opt.* is an index over opt_table (opt.h), so every option the table
 * lists is a node, typed by the table: bool, unsigned, ssize_t, size_t, or
 * const char * for enums (the value's name). jemalloc 5 spellings that are
 * views of other options follow the table entries: opt.decay_time (4.x) is
 * opt.dirty_decay_ms in seconds (-1 stays -1, others round up) and
 * opt.tcache_max (jemalloc 5) is 2^opt.lg_tcache_max bytes. In a build without thread
 * caches (--disable-tcache) opt.tcache and opt.lg_tcache_max are ENOENT,
 * like the other thread-cache nodes; without --enable-prof the opt.prof*
 * and opt.lg_prof_* nodes are ENOENT, as in jemalloc. Strings
 * (opt.prof_prefix, opt.stats_timeline) read as const char *.
 */
#include <errno.h>
#include <string.h>

#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/opt.h"
#include "alloc/internal/tcache.h"

/* ---------------------------------------------------------------------- */
/* config.* */

static int
ctl_config_bool(void *oldp, size_t *oldlenp, void *newp, size_t newlen, bool value) {
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &value, sizeof(value));
}

static int
config_cache_oblivious_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                           void *newp, size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, false);
}

static int
config_debug_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_debug);
}

static int
config_fill_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_fill);
}

static int
config_lazy_lock_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                     size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, false);
}

static int
config_malloc_conf_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)mib, (void)miblen;
	const char *value = config_malloc_conf;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &value, sizeof(value));
}

static int
config_munmap_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, true);
}

static int
config_prof_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_prof);
}

static int
config_prof_libgcc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_prof_backtrace == 1);
}

static int
config_prof_libunwind_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                          size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_prof_backtrace == 3);
}

static int
config_stats_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_stats);
}

static int
config_tcache_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_tcache);
}

static int
config_tls_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
               size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, true);
}

static int
config_utrace_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, false);
}

static int
config_valgrind_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                    size_t newlen) {
	(void)mib, (void)miblen;
	return ctl_config_bool(oldp, oldlenp, newp, newlen, false);
}

static int
config_xmalloc_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	/* opt.xmalloc comes with the fill options. */
	return ctl_config_bool(oldp, oldlenp, newp, newlen, config_fill);
}

const ctl_node_t ctl_config_children[] = {
    {.name = "cache_oblivious", .handler = config_cache_oblivious_ctl},
    {.name = "debug", .handler = config_debug_ctl},
    {.name = "fill", .handler = config_fill_ctl},
    {.name = "lazy_lock", .handler = config_lazy_lock_ctl},
    {.name = "malloc_conf", .handler = config_malloc_conf_ctl},
    {.name = "munmap", .handler = config_munmap_ctl},
    {.name = "prof", .handler = config_prof_ctl},
    {.name = "prof_libgcc", .handler = config_prof_libgcc_ctl},
    {.name = "prof_libunwind", .handler = config_prof_libunwind_ctl},
    {.name = "stats", .handler = config_stats_ctl},
    {.name = "tcache", .handler = config_tcache_ctl},
    {.name = "tls", .handler = config_tls_ctl},
    {.name = "utrace", .handler = config_utrace_ctl},
    {.name = "valgrind", .handler = config_valgrind_ctl},
    {.name = "xmalloc", .handler = config_xmalloc_ctl},
    {.name = NULL},
};

/* ---------------------------------------------------------------------- */
/* opt.* */

/* Aliases after the table entries: position opt_table_len + k. */
static const char *const opt_alias_names[] = {"decay_time", "tcache_max"};
#define OPT_NALIASES (sizeof(opt_alias_names) / sizeof(opt_alias_names[0]))

static bool
opt_index_find(const char *name, size_t len, size_t *pos) {
	const opt_desc_t *d = opt_find(name, len);
	if (d != NULL) {
		*pos = (size_t)(d - opt_table);
		return true;
	}
	for (size_t k = 0; k < OPT_NALIASES; k++) {
		if (strncmp(opt_alias_names[k], name, len) == 0 &&
		    opt_alias_names[k][len] == '\0') {
			*pos = opt_table_len + k;
			return true;
		}
	}
	return false;
}

static bool
opt_index_valid(const size_t *mib, size_t depth, size_t i) {
	(void)mib, (void)depth;
	return i < opt_table_len + OPT_NALIASES;
}

/* opt.decay_time (4.x): opt.dirty_decay_ms in seconds, rounded up. */
static int
opt_decay_time_read(void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
	ssize_t s = decay_ms_to_seconds(opt_dirty_decay_ms);
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &s, sizeof(s));
}

/* opt.tcache_max: the largest size cached, 2^opt.lg_tcache_max bytes
 * (ENOENT without thread caches, like opt.lg_tcache_max). */
static int
opt_tcache_max_read(void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
	if (!config_tcache) {
		return ENOENT;
	}
	size_t v = (size_t)1 << opt_lg_tcache_max;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
opt_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
	(void)miblen;
	size_t pos = mib[1];
	if (pos >= opt_table_len) {
		switch (pos - opt_table_len) {
		case 0:
			return opt_decay_time_read(oldp, oldlenp, newp, newlen);
		default:
			return opt_tcache_max_read(oldp, oldlenp, newp, newlen);
		}
	}
	const opt_desc_t *d = &opt_table[pos];
	/* As in jemalloc, the thread-cache options exist only in a build
	 * with thread caches (MALLOC_CONF still accepts them). */
	if (!config_tcache && (d->ptr == &opt_tcache || d->ptr == &opt_lg_tcache_max)) {
		return ENOENT;
	}
	/* Likewise the fill options without --enable-fill. */
	if (!config_fill && fill_option_is_fill(d->ptr)) {
		return ENOENT;
	}
	/* And the profiling options without --enable-prof. */
	if (!config_prof && opt_is_prof(d->ptr)) {
		return ENOENT;
	}
	switch (d->type) {
	case OPT_TYPE_BOOL:
		return ctl_read_only_value(oldp, oldlenp, newp, newlen, d->ptr, sizeof(bool));
	case OPT_TYPE_UNSIGNED:
		return ctl_read_only_value(oldp, oldlenp, newp, newlen, d->ptr, sizeof(unsigned));
	case OPT_TYPE_SSIZE:
		return ctl_read_only_value(oldp, oldlenp, newp, newlen, d->ptr, sizeof(ssize_t));
	case OPT_TYPE_SIZE:
		return ctl_read_only_value(oldp, oldlenp, newp, newlen, d->ptr, sizeof(size_t));
	case OPT_TYPE_ENUM: {
		const char *name = d->enum_names[*(const int *)d->ptr];
		return ctl_read_only_value(oldp, oldlenp, newp, newlen, &name, sizeof(name));
	}
	case OPT_TYPE_STRING: {
		const char *text = d->ptr;
		return ctl_read_only_value(oldp, oldlenp, newp, newlen, &text, sizeof(text));
	}
	}
	return ENOENT;
}

static const ctl_node_t ctl_opt_elem = {.name = "<name>", .handler = opt_ctl};

const ctl_index_t ctl_opt_index = {
    .find = opt_index_find,
    .valid = opt_index_valid,
    .elem = &ctl_opt_elem,
};
