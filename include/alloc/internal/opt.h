/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Run-time options (the opt.* mallctl namespace) and their table.
 *
 * Each option is a global with its documented default, set once during
 * start-up (from MALLOC_CONF and its siblings, see conf.h) before any arena
 * exists, and read-only afterwards. Hot paths read them without locks.
 *
 * opt_table lists every option liballoc implements, with its type and
 * range: the configuration parser validates against it, and the opt.*
 * mallctl nodes read through it. An option is added here in the same change
 * that makes it do something.
 */
#ifndef ALLOC_INTERNAL_OPT_H
#define ALLOC_INTERNAL_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How threads are spread over arenas. */
typedef enum {
	/* One arena per CPU in the affinity mask; a thread uses its CPU's. */
	PERCPU_ARENA_PERCPU = 0,
	/* One arena per physical core (hyper-threads share one). */
	PERCPU_ARENA_PHYCPU = 1,
	/* opt_narenas arenas, threads assigned round-robin. */
	PERCPU_ARENA_DISABLED = 2,
} percpu_arena_mode_t;

/* Abort on any warning (opt.abort). */
extern bool opt_abort;
/* Abort on an invalid configuration option (opt.abort_conf). */
extern bool opt_abort_conf;
/* Number of arenas; 0 means the default for the percpu mode (opt.narenas). */
extern unsigned opt_narenas;
/* opt.percpu_arena. */
extern percpu_arena_mode_t opt_percpu_arena;
/* Print statistics at exit (opt.stats_print), with the malloc_stats_print
 * opts letters of opt.stats_print_opts (jemalloc 5; "" prints all). */
extern bool opt_stats_print;
extern char opt_stats_print_opts[];
/* opt.zero_realloc (jemalloc 5): what realloc(ptr, 0) does with a non-NULL
 * ptr. FREE (the default, glibc's behaviour): frees ptr and returns NULL.
 * ALLOC: a zero-size allocation, like malloc(0) (ptr is freed once the new
 * block exists). ABORT: reports the call and aborts. Both live in alloc.c,
 * with alloc_zero_reallocs, the calls counted (stats.zero_reallocs). */
typedef enum {
	ZERO_REALLOC_FREE = 0,
	ZERO_REALLOC_ALLOC = 1,
	ZERO_REALLOC_ABORT = 2,
} zero_realloc_mode_t;
extern int opt_zero_realloc;
extern size_t alloc_zero_reallocs;

/* Print the option strings read and the options in force at start-up
 * (opt.confirm_conf, jemalloc 5). */
extern bool opt_confirm_conf;

typedef enum {
	/* bool */
	OPT_TYPE_BOOL,
	/* unsigned, range-checked */
	OPT_TYPE_UNSIGNED,
	/* ssize_t, range-checked */
	OPT_TYPE_SSIZE,
	/* size_t, range-checked */
	OPT_TYPE_SIZE,
	/* an enum stored as int; written and read as one of enum_names */
	OPT_TYPE_ENUM,
	/* text stored in a char array of max + 1 bytes (any text up to max
	 * bytes, the empty text included; min is 0); read as const char * */
	OPT_TYPE_STRING,
} opt_type_t;

/* The longest value a string option takes (its array has one byte more). */
#define OPT_STRING_MAX 255

typedef struct {
	/* MALLOC_CONF key, and the name under opt. in mallctl. */
	const char *name;
	opt_type_t type;
	/* bool *, unsigned *, ssize_t *, size_t *, int * (enum) or char *
	 * (string). */
	void *ptr;
	/* Inclusive bounds for numeric types. */
	int64_t min;
	int64_t max;
	/* OPT_TYPE_ENUM: the value names, indexed by value, NULL-terminated. */
	const char *const *enum_names;
	/* Set only by configure/at build time; MALLOC_CONF may only repeat
	 * the built value (e.g. lg_chunk). */
	bool build_time;
} opt_desc_t;

extern const opt_desc_t opt_table[];
extern const size_t opt_table_len;

/* Whether the option stored at ptr is a heap-profiling one (prof*,
 * lg_prof_*): those exist only in --enable-prof builds. */
bool opt_is_prof(const void *ptr);

/* The entry for `name`, or NULL. */
const opt_desc_t *opt_find(const char *name, size_t len);

/* Option d's value, in the table's common currency (an enum: its index; a
 * string: its length). */
int64_t opt_value_get(const opt_desc_t *d);
/* Stores v into option d; v must be valid for d (conf.c checks ranges). A
 * string is cut to v bytes (0 empties it). */
void opt_value_set(const opt_desc_t *d, int64_t v);
/* Stores text s[0, len) into string option d; len <= d->max. */
void opt_string_set(const opt_desc_t *d, const char *s, size_t len);

#endif
