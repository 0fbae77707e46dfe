/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The run-time options: storage and defaults of the options this module
 * owns, and opt_table, the one list of every option liballoc implements.
 *
 * An option's global lives with the subsystem that reads it (opt_tcache in
 * tcache.c, opt_dirty_decay_ms in decay.c, ...) or here when no single
 * subsystem owns it. The table names each one with its type and its
 * accepted range: the MALLOC_CONF parser (conf.c) validates and stores
 * through it, the opt.* mallctl nodes read through it, and doc/options.md
 * and the manual describe what it lists. Adding an option means adding its
 * global and one row here, nothing else.
 */
#include "alloc/internal/opt.h"

#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/base.h"
#include "alloc/internal/config.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/chunk.h"
#include "alloc/internal/background_thread.h"
#include "alloc/internal/prof.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/timeline.h"
#include "alloc/internal/util.h"

bool opt_abort = false;
bool opt_abort_conf = false;
/* 0 is not a value MALLOC_CONF may give (the table's range is
 * [1, ARENAS_MAX]); it stands for "not set": tsd_boot() then picks the
 * default of the percpu_arena mode. */
unsigned opt_narenas = 0;
percpu_arena_mode_t opt_percpu_arena = PERCPU_ARENA_PERCPU;
bool opt_stats_print = false;
bool opt_confirm_conf = false;
/* opt.dss: liballoc maps with mmap only; "disabled" is the one value. */
static int opt_dss = 0;

/* opt.lg_chunk only reports the configured chunk size: the table entry is
 * build_time, so nothing ever writes this. */
static size_t opt_lg_chunk = LG_CHUNK;

/* Enum options are written through an int *. */
_Static_assert(sizeof(percpu_arena_mode_t) == sizeof(int), "percpu_arena is stored as an int");
_Static_assert(sizeof(fill_junk_t) == sizeof(int), "junk is stored as an int");
_Static_assert(sizeof(prof_format_t) == sizeof(int), "prof_format is stored as an int");
_Static_assert(PROF_PREFIX_MAX == OPT_STRING_MAX + 1, "prof_prefix is a string option");

/* Value names, indexed by the enum value. */
static const char *const opt_percpu_arena_names[] = {
    [PERCPU_ARENA_PERCPU] = "percpu",
    [PERCPU_ARENA_PHYCPU] = "phycpu",
    [PERCPU_ARENA_DISABLED] = "disabled",
    NULL,
};
static const char *const opt_thp_names[] = {
    [THP_DEFAULT] = "default",
    [THP_ALWAYS] = "always",
    [THP_NEVER] = "never",
    NULL,
};
static const char *const opt_purge_madvise_names[] = {
    [PURGE_MADVISE_DONTNEED] = "dontneed",
    [PURGE_MADVISE_FREE] = "free",
    NULL,
};
static const char *const opt_metadata_thp_names[] = {
    [METADATA_THP_DISABLED] = "disabled",
    [METADATA_THP_AUTO] = "auto",
    [METADATA_THP_ALWAYS] = "always",
    NULL,
};
static const char *const opt_dss_names[] = {"disabled", NULL};
static const char *const opt_zero_realloc_names[] = {
    [ZERO_REALLOC_FREE] = "free",
    [ZERO_REALLOC_ALLOC] = "alloc",
    [ZERO_REALLOC_ABORT] = "abort",
    NULL,
};
static const char *const opt_purge_names[] = {
    [PURGE_MODE_DECAY] = "decay",
    [PURGE_MODE_RATIO] = "ratio",
    NULL,
};

/* The largest value of an enum option: its names minus the NULL. */
#define OPT_ENUM_MAX(names) ((int64_t)ARRAY_SIZE(names) - 2)

/*
 * Every option, in the order doc/options.md describes them. min and max are
 * inclusive and checked by the parser; doc/options.md explains each range.
 */
const opt_desc_t opt_table[] = {
    /* name, type, storage, min, max, enum names, build_time */
    {"abort", OPT_TYPE_BOOL, &opt_abort, 0, 1, NULL, false},
    {"abort_conf", OPT_TYPE_BOOL, &opt_abort_conf, 0, 1, NULL, false},
    {"confirm_conf", OPT_TYPE_BOOL, &opt_confirm_conf, 0, 1, NULL, false},
    {"narenas", OPT_TYPE_UNSIGNED, &opt_narenas, 1, ARENAS_MAX, NULL, false},
    {"percpu_arena", OPT_TYPE_ENUM, &opt_percpu_arena, 0, OPT_ENUM_MAX(opt_percpu_arena_names),
     opt_percpu_arena_names, false},
    /* 0: per CPU from the start. */
    {"percpu_arena_waits", OPT_TYPE_UNSIGNED, &opt_percpu_arena_waits, 0, UINT32_MAX, NULL, false},
    {"tcache", OPT_TYPE_BOOL, &opt_tcache, 0, 1, NULL, false},
    /* 2^lg_tcache_max is the largest size cached; anything from a chunk
     * up is huge and never cached. */
    {"lg_tcache_max", OPT_TYPE_SIZE, &opt_lg_tcache_max, 0, LG_CHUNK - 1, NULL, false},
    {"stats_print", OPT_TYPE_BOOL, &opt_stats_print, 0, 1, NULL, false},
    {"stats_print_opts", OPT_TYPE_STRING, opt_stats_print_opts, 0, OPT_STRING_MAX, NULL, false},
    /* Fixed by configure --with-lg-chunk: only that value is accepted. */
    {"lg_chunk", OPT_TYPE_SIZE, &opt_lg_chunk, LG_CHUNK, LG_CHUNK, NULL, true},
    /* jemalloc 5's two decay times; decay_time (4.x) is an alias of the
     * dirty one in seconds (conf.c). */
    {"dirty_decay_ms", OPT_TYPE_SSIZE, &opt_dirty_decay_ms, -1, DECAY_MS_MAX, NULL, false},
    {"muzzy_decay_ms", OPT_TYPE_SSIZE, &opt_muzzy_decay_ms, -1, DECAY_MS_MAX, NULL, false},
    {"lg_dirty_mult", OPT_TYPE_SSIZE, &opt_lg_dirty_mult, -1, (int64_t)sizeof(size_t) * 8 - 1, NULL,
     false},
    /* -1: off. */
    {"lg_dirty_bound", OPT_TYPE_SSIZE, &opt_lg_dirty_bound, -1, (int64_t)sizeof(size_t) * 8 - 1,
     NULL, false},
    {"purge", OPT_TYPE_ENUM, &opt_purge, 0, OPT_ENUM_MAX(opt_purge_names), opt_purge_names, false},
    {"purge_madvise", OPT_TYPE_ENUM, &opt_purge_madvise, 0, OPT_ENUM_MAX(opt_purge_madvise_names),
     opt_purge_madvise_names, false},
    {"retain", OPT_TYPE_BOOL, &opt_retain, 0, 1, NULL, false},
    /* 0: no cap. */
    {"max_bytes", OPT_TYPE_SIZE, &opt_max_bytes, 0, INT64_MAX, NULL, false},
    {"thp", OPT_TYPE_ENUM, &opt_thp, 0, OPT_ENUM_MAX(opt_thp_names), opt_thp_names, false},
    {"background_thread", OPT_TYPE_BOOL, &opt_background_thread, 0, 1, NULL, false},
    {"max_background_threads", OPT_TYPE_SIZE, &opt_max_background_threads, 1,
     BACKGROUND_THREADS_MAX, NULL, false},
    {"metadata_thp", OPT_TYPE_ENUM, &opt_metadata_thp, 0, OPT_ENUM_MAX(opt_metadata_thp_names),
     opt_metadata_thp_names, false},
    /* 0: off. */
    {"oversize_threshold", OPT_TYPE_SIZE, &opt_oversize_threshold, 0, SZ_HUGE_MAXCLASS, NULL,
     false},
    {"dss", OPT_TYPE_ENUM, &opt_dss, 0, OPT_ENUM_MAX(opt_dss_names), opt_dss_names, false},
    {"zero_realloc", OPT_TYPE_ENUM, &opt_zero_realloc, 0, OPT_ENUM_MAX(opt_zero_realloc_names),
     opt_zero_realloc_names, false},
    /* The fill options (fill.h); with configure --disable-fill they are
     * parsed, warned about and ignored. */
    {"junk", OPT_TYPE_ENUM, &opt_junk, 0, FILL_JUNK_FREE, opt_junk_names, false},
    {"zero", OPT_TYPE_BOOL, &opt_zero, 0, 1, NULL, false},
    {"redzone", OPT_TYPE_BOOL, &opt_redzone, 0, 1, NULL, false},
    {"quarantine", OPT_TYPE_SIZE, &opt_quarantine, 0, SZ_HUGE_MAXCLASS, NULL, false},
    {"xmalloc", OPT_TYPE_BOOL, &opt_xmalloc, 0, 1, NULL, false},
    /* The stats timeline (timeline.h): the file ("" = off) and the time
     * between two lines, up to a day. */
    {"stats_timeline", OPT_TYPE_STRING, opt_stats_timeline, 0, OPT_STRING_MAX, NULL, false},
    {"stats_interval_ms", OPT_TYPE_SIZE, &opt_stats_interval_ms, 1, TIMELINE_INTERVAL_MS_MAX, NULL,
     false},
    /* Heap profiling (prof.h); without configure --enable-prof they are
     * parsed, warned about and ignored. */
    {"prof", OPT_TYPE_BOOL, &opt_prof, 0, 1, NULL, false},
    {"prof_prefix", OPT_TYPE_STRING, opt_prof_prefix, 0, OPT_STRING_MAX, NULL, false},
    {"prof_active", OPT_TYPE_BOOL, &opt_prof_active, 0, 1, NULL, false},
    {"prof_thread_active_init", OPT_TYPE_BOOL, &opt_prof_thread_active_init, 0, 1, NULL, false},
    /* Up to 2^62 bytes between samples. */
    {"lg_prof_sample", OPT_TYPE_SIZE, &opt_lg_prof_sample, 0, 62, NULL, false},
    {"prof_accum", OPT_TYPE_BOOL, &opt_prof_accum, 0, 1, NULL, false},
    /* -1: no interval dumps. */
    {"lg_prof_interval", OPT_TYPE_SSIZE, &opt_lg_prof_interval, -1, 62, NULL, false},
    {"prof_gdump", OPT_TYPE_BOOL, &opt_prof_gdump, 0, 1, NULL, false},
    {"prof_final", OPT_TYPE_BOOL, &opt_prof_final, 0, 1, NULL, false},
    {"prof_leak", OPT_TYPE_BOOL, &opt_prof_leak, 0, 1, NULL, false},
    {"prof_format", OPT_TYPE_ENUM, &opt_prof_format, 0, PROF_FORMAT_PPROF, opt_prof_format_names,
     false},
};

bool
opt_is_prof(const void *ptr) {
	for (size_t i = 0; i < opt_table_len; i++) {
		if (opt_table[i].ptr == ptr) {
			return strncmp(opt_table[i].name, "prof", 4) == 0 ||
			       strncmp(opt_table[i].name, "lg_prof", 7) == 0;
		}
	}
	return false;
}

const size_t opt_table_len = ARRAY_SIZE(opt_table);

const opt_desc_t *
opt_find(const char *name, size_t len) {
	for (size_t i = 0; i < opt_table_len; i++) {
		const char *n = opt_table[i].name;
		if (strncmp(n, name, len) == 0 && n[len] == '\0') {
			return &opt_table[i];
		}
	}
	return NULL;
}

int64_t
opt_value_get(const opt_desc_t *d) {
	switch (d->type) {
	case OPT_TYPE_BOOL:
		return *(const bool *)d->ptr;
	case OPT_TYPE_UNSIGNED:
		return *(const unsigned *)d->ptr;
	case OPT_TYPE_SSIZE:
		return *(const ssize_t *)d->ptr;
	case OPT_TYPE_SIZE:
		return (int64_t) * (const size_t *)d->ptr;
	case OPT_TYPE_ENUM:
		return *(const int *)d->ptr;
	case OPT_TYPE_STRING:
		return (int64_t)strlen((const char *)d->ptr);
	}
	return 0;
}

void
opt_value_set(const opt_desc_t *d, int64_t v) {
	switch (d->type) {
	case OPT_TYPE_BOOL:
		*(bool *)d->ptr = v != 0;
		break;
	case OPT_TYPE_UNSIGNED:
		*(unsigned *)d->ptr = (unsigned)v;
		break;
	case OPT_TYPE_SSIZE:
		*(ssize_t *)d->ptr = (ssize_t)v;
		break;
	case OPT_TYPE_SIZE:
		*(size_t *)d->ptr = (size_t)v;
		break;
	case OPT_TYPE_ENUM:
		*(int *)d->ptr = (int)v;
		break;
	case OPT_TYPE_STRING:
		if (v >= 0 && v < opt_value_get(d)) {
			((char *)d->ptr)[v] = '\0';
		}
		break;
	}
}

void
opt_string_set(const opt_desc_t *d, const char *s, size_t len) {
	char *dst = d->ptr;
	memcpy(dst, s, len);
	dst[len] = '\0';
}
