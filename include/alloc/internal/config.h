/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Build-time configuration as C constants.
 *
 * Every feature that costs time is switched by a `static const bool
 * config_x` tested with a plain `if (config_x)`: all variants compile, and
 * the compiler drops the code a build does not want. Platform facts and
 * layout parameters (LG_PAGE, LG_QUANTUM, LG_CHUNK, LG_VADDR) are macros,
 * because array sizes depend on them.
 *
 * Unit tests compile the sources with ALLOC_UNIT_TEST defined (see
 * Makefile.in): the exported names are then prefixed so the test program
 * keeps glibc's malloc and can run under sanitizers.
 */
#ifndef ALLOC_INTERNAL_CONFIG_H
#define ALLOC_INTERNAL_CONFIG_H

#include <stdbool.h>

#include "alloc/internal/config_defs.h"

#define LG_PAGE   ALLOC_LG_PAGE
#define PAGE      ((size_t)1 << LG_PAGE)
#define PAGE_MASK (PAGE - 1)

#define LG_QUANTUM ALLOC_LG_QUANTUM
#define QUANTUM    ((size_t)1 << LG_QUANTUM)

#define LG_VADDR ALLOC_LG_VADDR

/* Transparent huge pages: under opt.thp:always, mappings of at least this
 * size are aligned to it (pages_map_aligned). */
#define LG_HUGEPAGE ALLOC_LG_HUGEPAGE
#define HUGEPAGE    ((size_t)1 << LG_HUGEPAGE)

#define LG_CHUNK   ALLOC_LG_CHUNK
#define CHUNK      ((size_t)1 << LG_CHUNK)
#define CHUNK_MASK (CHUNK - 1)

/* Cache line size; used to keep hot, independently written data apart. */
#define LG_CACHELINE 6
#define CACHELINE    ((size_t)1 << LG_CACHELINE)

static const bool config_debug = ALLOC_CONFIG_DEBUG;
static const bool config_stats = ALLOC_CONFIG_STATS;
static const bool config_tcache = ALLOC_CONFIG_TCACHE;
static const bool config_fill = ALLOC_CONFIG_FILL;
static const bool config_initial_exec_tls = ALLOC_CONFIG_INITIAL_EXEC_TLS;
static const bool config_background_thread = ALLOC_CONFIG_BACKGROUND_THREAD;
static const bool config_prof = ALLOC_CONFIG_PROF;
/* How --enable-prof takes backtraces: 0 none, 1 libgcc, 2 frame pointers,
 * 3 libunwind (config.prof_libgcc / config.prof_libunwind). */
static const int config_prof_backtrace = ALLOC_CONFIG_PROF_BACKTRACE;
/* --enable-private-heap: allocations that name no arena come from the one
 * private heap of heap.c (heap_private_arena). */
static const bool config_private_heap_only = ALLOC_CONFIG_PRIVATE_HEAP;
static const bool config_background_thread_support = ALLOC_CONFIG_BACKGROUND_THREAD_SUPPORT;
static const char config_malloc_conf[] = ALLOC_CONFIG_MALLOC_CONF;

#endif
