/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Heap profiling (configure --enable-prof, MALLOC_CONF prof:true): sampled
 * allocation sites, as jemalloc's.
 *
 * Sampling. Every allocation is counted by a byte countdown with
 * exponentially distributed intervals (mean 2^lg_prof_sample bytes): an
 * allocation during which the countdown runs out is sampled, so an object
 * of usable size u is sampled with probability 1 - exp(-u / 2^lg_sample),
 * and 1 / (1 - exp(-u / 2^lg_sample)) objects stand for each sampled one
 * (the unbiasing factor; jeprof applies it itself, the pprof writer before
 * writing). A Poisson process restricted to disjoint parts of a byte
 * stream is a Poisson process of the same rate on each part, so the
 * countdown may be split without changing the statistics: each thread-cache
 * bin keeps its own (in whole allocations of its class, the draw of the
 * byte countdown divided by the class size, rounded up), folded into the
 * bin's existing tick (tcache.h) so the hit path pays nothing; the
 * allocations that do not go through a bin share one per-thread byte
 * countdown on the slow path.
 *
 * Sampled objects. A sampled object's first page has the page-map class
 * PCLASS_SAMPLED, whose thread-cache bin always misses, so its free goes to
 * the slow path while every other free keeps its hit path. Small sampled
 * objects are therefore served from a page run of their own (the smallest
 * large class; jemalloc 4 does the same); large ones keep their class.
 * Huge ones are found in the table on their (slow) free. A table keyed by
 * address holds, per sampled object, its backtrace's record and its real
 * size class.
 *
 * Backtraces are taken without allocating (libgcc's unwinder, on x86-64
 * behind the cached unwinder of prof_unwind.h; frame pointers; or
 * libunwind; chosen by configure), minus liballoc's own frames,
 * and interned in a table of records that count current and (prof_accum)
 * cumulative objects and bytes per thread. Everything prof keeps lives in
 * base or mmap'd memory, never in the program's heap.
 *
 * Locking: prof_lock protects the tables and counters; it is taken after
 * every arena, bin and huge lock (the validator holds arena locks while it
 * looks a sampled page up) and never while calling into an arena; only
 * base's lock nests inside it. prof_dump_lock serialises dumps; taken
 * before prof_lock. prof_unwind_lock (prof_unwind.c) is a leaf, held
 * during a backtrace only, before prof_lock is taken.
 */
#ifndef ALLOC_INTERNAL_PROF_H
#define ALLOC_INTERNAL_PROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "alloc/internal/config.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/util.h"

typedef struct arena_s arena_t;

/* Deepest backtrace kept; deeper ones are cut at the outermost frames. */
#define PROF_BT_MAX 64
/* Size of opt.prof_prefix: OPT_STRING_MAX (opt.h) bytes and the NUL. */
#define PROF_PREFIX_MAX 256
/* Longest thread.prof.name, terminating NUL included. */
#define PROF_THREAD_NAME_MAX 64

typedef enum {
	PROF_FORMAT_JEPROF = 0,
	PROF_FORMAT_PPROF = 1,
} prof_format_t;

/* The options (opt.prof*, opt.lg_prof_*). */
extern bool opt_prof;
extern char opt_prof_prefix[PROF_PREFIX_MAX];
extern bool opt_prof_active;
extern bool opt_prof_thread_active_init;
extern size_t opt_lg_prof_sample;
extern bool opt_prof_accum;
extern ssize_t opt_lg_prof_interval;
extern bool opt_prof_gdump;
extern bool opt_prof_final;
extern bool opt_prof_leak;
extern prof_format_t opt_prof_format;
extern const char *const opt_prof_format_names[];

/* Whether profiling runs in this process (opt.prof, and start-up did not
 * turn it off); read without a lock. */
extern bool prof_enabled;
/* prof.active (atomic). */
extern bool prof_active;

/* The per-thread state (thread.prof.*), in base memory, made on the
 * thread's first sample-related event. */
typedef struct prof_tdata_s prof_tdata_t;

/* Whether the calling thread samples now: profiling on, prof.active and
 * thread.prof.active. For slow paths. */
bool prof_sampling(void);

/* ---------------------------------------------------------------------- */
/* Random numbers and the countdown (exposed for the unit test). */

/* splitmix64: the next value of *state. */
uint64_t prof_prng_next(uint64_t *state);
/* Natural logarithm and exponential without libm (liballoc depends on libc
 * and pthreads only). */
double prof_ln(double x);
double prof_exp(double x);
/* A byte interval drawn from the exponential distribution of mean
 * 2^lg_sample, at least 1. */
uint64_t prof_draw_bytes(uint64_t *state, unsigned lg_sample);
/* Allocations of usable size usize until the next sampled one (the drawn
 * byte interval divided by usize, rounded up). */
int64_t prof_draw_allocs(uint64_t *state, unsigned lg_sample, size_t usize);
/* Objects one sampled object of usable size usize stands for:
 * 1 / (1 - exp(-usize / 2^lg_sample)). */
double prof_unbias_factor(size_t usize, unsigned lg_sample);

/* The current sample rate (prof.lg_sample). */
unsigned prof_lg_sample_get(void);

/* ---------------------------------------------------------------------- */
/* Hooks in the allocation paths. */

/* Start-up, after the options are read (may turn profiling off with a
 * warning when the fill options are on). */
void prof_boot(void);
/* After start-up, outside every lock: loads the unwinder's lazy state and
 * registers the final dump. */
void prof_boot_late(void);

/* The thread cache's bin tick for a bin of class size usize ran out: the
 * next gap, in allocations, or 0 when the thread does not sample now. */
int64_t prof_bin_gap(uint64_t *prng, size_t usize);

/* Counts an allocation of usize bytes that no thread-cache bin counted;
 * true when it is to be sampled. */
bool prof_count_bytes(size_t usize);

/*
 * Allocates a sampled object of class ind (usable size usize reported to
 * the program) from `arena`, aligned and zeroed as asked, records its
 * backtrace and marks its page. NULL when memory is short.
 */
void *prof_alloc_sampled(arena_t *arena, szind_t ind, size_t alignment, bool zero);

/* Whether ptr (live, not chunk-aligned) is a sampled object: its page-map
 * class. */
bool prof_paged_is_sampled(const void *ptr);
/* Whether the huge block at ptr is a sampled object (a table lookup, only
 * while any sampled object lives). */
bool prof_huge_is_sampled(const void *ptr);
/* Whether ptr is a sampled object (paged or huge). */
bool prof_is_sampled(const void *ptr);
/* Usable size and class index the program sees for sampled object ptr. */
size_t prof_sampled_usize(const void *ptr, szind_t *ind);
/* The real page-map class (class + 1) of the run under sampled paged
 * object ptr (the heap validator). */
unsigned prof_sampled_pclass(const void *ptr);

/* Forgets sampled paged object ptr, restores its page-map class and frees
 * it; returns its usable size (as the program saw it). */
size_t prof_dalloc_sampled(void *ptr);
/* Forgets sampled huge object ptr before huge_dalloc frees it. */
void prof_forget_huge(void *ptr);
/* Sampled huge object old now lives at new_ptr (the same, when resized in
 * place) with usable size usize: its record and counts follow. */
void prof_huge_resized(void *old, void *new_ptr, size_t usize);

/* Forgets the sampled objects of an arena whose memory arena.<i>.reset
 * discards. */
void prof_arena_reset(arena_t *arena);

/* Chunk memory mapped (+) or unmapped (-) by any arena: drives prof.gdump. */
void prof_gdump_mapped(size_t bytes, bool mapped);
/* Runs the interval and gdump dumps that sampling or mapping made due;
 * called from slow paths outside every lock. */
extern bool prof_dump_pending;
void prof_dump_pending_run(void);

/* A thread exits: its record stays while its samples live. */
void prof_thread_exit(prof_tdata_t *tdata);

/* ---------------------------------------------------------------------- */
/* Controls (ctl_prof.c). */

/* prof.dump: writes a profile to `filename` or, when NULL, to the next
 * manual dump's name. Returns true on failure. */
bool prof_mdump(const char *filename);
/* prof.reset: discards every count (live samples no longer count) and sets
 * the sample rate. */
void prof_reset(unsigned lg_sample);
bool prof_active_get(void);
void prof_active_set(bool active);
bool prof_thread_active_init_get(void);
void prof_thread_active_init_set(bool active);
bool prof_gdump_get(void);
void prof_gdump_set(bool active);
/* Estimated bytes between interval dumps (prof.interval); 0 when off. */
uint64_t prof_interval_get(void);
/* thread.prof.name / thread.prof.active of the calling thread. Setting the
 * name returns true when the thread's record cannot be made. */
const char *prof_thread_name_get(void);
bool prof_thread_name_set(const char *name);
bool prof_thread_active_get(void);
bool prof_thread_active_set(bool active);

void prof_prefork(void);
void prof_postfork_parent(void);
void prof_postfork_child(void);

#endif
