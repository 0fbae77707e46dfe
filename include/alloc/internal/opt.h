/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Run-time options (the opt.* mallctl namespace).
 *
 * Each option is a global with its documented default, set once during
 * start-up (from MALLOC_CONF and its siblings) before any arena exists, and
 * read-only afterwards. Hot paths read them without locks.
 */
#ifndef ALLOC_INTERNAL_OPT_H
#define ALLOC_INTERNAL_OPT_H

#include <stdbool.h>
#include <stddef.h>
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
/* Number of arenas; 0 means the default for the percpu mode (opt.narenas). */
extern unsigned opt_narenas;
/* opt.percpu_arena. */
extern percpu_arena_mode_t opt_percpu_arena;

#endif
