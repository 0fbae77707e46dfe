/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Debugging fills: opt.junk, opt.zero, opt.redzone and opt.quarantine, and
 * opt.xmalloc (compiled in by configure --enable-fill, the default).
 *
 * Contract with alloc.c: when any of junk, zero, redzone or quarantine is
 * on (fill_slow_paths), no thread gets a cache (tsd_setup) and the slow
 * paths ignore explicit caches, so every allocation goes through
 * fill_alloc_finish() and every free through fill_dalloc(). The options are
 * set once at start-up (fill_boot) and never change.
 *
 * Redzones (small classes only; large and huge objects have none): the
 * object is a region of class size csize with the user's bytes at
 * region + lead, lead = max(FILL_REDZONE_SIZE, alignment), and
 * FILL_REDZONE_SIZE or more guard bytes after them, up to the end of the
 * region. The user's usable size is csize - lead - FILL_REDZONE_SIZE. Since
 * the region of a class that is a multiple of an alignment is aligned to
 * it, region + lead keeps the alignment asked for. Every small object
 * carries redzones when opt.redzone is on, so a small pointer's region is
 * found from the run (arena_small_region_base) and lead = ptr - region.
 * The guard bytes hold FILL_REDZONE_BYTE and are checked on free, on
 * realloc's move and when an object leaves the quarantine.
 *
 * Quarantine: each thread keeps a FIFO of the objects it freed, at most
 * opt.quarantine usable bytes, filled with FILL_FREE_BYTE. When an object
 * leaves it (to make room, or at thread exit) its bytes are checked, so a
 * write after free is reported, and it is really freed. The FIFO's array is
 * arena memory owned by the thread (tsd_t.quarantine).
 */
#ifndef ALLOC_INTERNAL_FILL_H
#define ALLOC_INTERNAL_FILL_H

#include <stdbool.h>
#include <stddef.h>

#include "alloc/internal/config.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/tsd.h"

/* What opt.junk fills. */
typedef enum {
	FILL_JUNK_FALSE = 0,
	FILL_JUNK_TRUE = 1,
	FILL_JUNK_ALLOC = 2,
	FILL_JUNK_FREE = 3,
} fill_junk_t;

typedef struct fill_quarantine_s fill_quarantine_t;

/* Bytes of new memory under junk:true/alloc, and of freed memory under
 * junk:true/free or in the quarantine (jemalloc's values). */
#define FILL_ALLOC_BYTE 0xa5
#define FILL_FREE_BYTE  0x5a
/* Guard bytes of a redzone, and the least guard on each side. One quantum
 * keeps malloc's alignment. */
#define FILL_REDZONE_BYTE 0xa5
#define FILL_REDZONE_SIZE QUANTUM

extern fill_junk_t opt_junk;
extern const char *const opt_junk_names[];
extern bool opt_zero;
extern bool opt_redzone;
extern size_t opt_quarantine;
extern bool opt_xmalloc;

/* Derived by fill_boot(). */
extern bool fill_junk_alloc;
extern bool fill_junk_free;
/* Any of junk, zero, redzone, quarantine: caches off, slow paths act. */
extern bool fill_slow_paths;

/* Computes the derived flags; call after the options are read. */
void fill_boot(void);

/* Whether the option stored at opt_ptr exists only with config_fill. */
bool fill_option_is_fill(const void *opt_ptr);

/* Under opt.redzone: the class size to allocate for `size` bytes aligned
 * to `alignment` (0 when impossible), and in *lead where the user's bytes
 * start (0: no redzone, the request is large or huge). */
size_t fill_redzone_class(size_t size, size_t alignment, size_t *lead);

/* Under opt.redzone: the usable size a request gets. */
size_t fill_redzone_usize(size_t size, size_t alignment);

/* Under opt.redzone, for a live small object of class `ind`: where its
 * user bytes start in the region. Aborts (naming func) on a pointer that
 * cannot be one. */
size_t fill_redzone_lead(const void *ptr, szind_t ind, const char *func);

/* Turns a fresh region of class size csize into the user's object: writes
 * the redzones when lead != 0, then junk or zero per the options unless
 * the memory was zeroed on request. Returns the user's pointer. */
void *fill_alloc_finish(void *region, size_t csize, size_t lead, bool zeroed);

/* Fills the bytes an in-place resize adds [old, new) or releases [new,
 * old) of the object at ptr, per junk and zero. */
void fill_ralloc_grown(void *ptr, size_t old_usize, size_t new_usize, bool zeroed);
void fill_ralloc_shrinking(void *ptr, size_t old_usize, size_t new_usize);

/* The free path under fill_slow_paths: checks redzones, junk-fills,
 * quarantines or frees. ptr is a live object (or reported). */
void fill_dalloc(tsd_t *tsd, void *ptr);

/* After start-up, outside its lock (atexit may allocate): with
 * opt.quarantine, registers the exit-time check of the quarantine of the
 * thread that calls exit(). */
void fill_atexit_boot(void);

/* Empties the thread's quarantine, checking every object, and frees its
 * array (thread exit). */
void fill_quarantine_drain(tsd_t *tsd);

/* opt.xmalloc: where an allocation of `size` bytes would return NULL,
 * reports it and aborts when opt.xmalloc is on. */
void fill_xmalloc_check(size_t size);

#endif
