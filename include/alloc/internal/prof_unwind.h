/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Heap profiling's cached unwinder (x86-64): backtraces for the libgcc
 * method (configure --enable-prof-libgcc, the default) without running
 * libgcc's DWARF interpreter on every frame of every sample.
 *
 * Each return address's call-frame rule is decoded once from its object's
 * .eh_frame (found through .eh_frame_hdr) and kept in a table keyed by
 * address. A frame is followed here when its rule is of the simple kind
 * GCC and clang emit for ordinary code: CFA = rsp or rbp + offset, the
 * return address at CFA - 8, rbp either untouched or saved at CFA + offset.
 * Anything else (signal frames, a CFA from another register or an
 * expression, no unwind information) makes prof_unwind_backtrace answer
 * PROF_UNWIND_FALLBACK and the caller takes the whole backtrace with
 * _Unwind_Backtrace instead; an address that needs it is remembered, so the
 * next time costs only the lookup. The addresses reported are the ones
 * _Unwind_Backtrace reports for the same stack (test/unit/prof_unwind.c
 * compares them), outermost frame included: the walk ends where the return
 * address is undefined (_start, clone) or 0.
 *
 * The table lives in mmap'd memory and is shared by all threads under
 * prof_unwind_lock, held only while walking frames whose rules are cached:
 * decoding a new address (which calls dl_iterate_phdr) happens outside it,
 * so a thread in a dl_iterate_phdr callback that allocates cannot deadlock
 * with one that decodes. Unloading an object makes its addresses stale: each
 * backtrace first reads the loader's unload count (dlpi_subs) and empties
 * the table when it changed. An address on the stack being unwound belongs
 * to a loaded object, and so do the unwind tables read for it.
 *
 * Never allocates. On other architectures every call falls back.
 */
#ifndef ALLOC_INTERNAL_PROF_UNWIND_H
#define ALLOC_INTERNAL_PROF_UNWIND_H

#include <stdbool.h>
#include <stdint.h>

/* prof_unwind_backtrace's answer when libgcc must take the backtrace. */
#define PROF_UNWIND_FALLBACK (-1)

/* Maps the table; false when there is no memory for it (every backtrace
 * falls back then). Idempotent. */
bool prof_unwind_boot(void);

/*
 * The calling thread's return addresses, innermost first: the first is the
 * return address into prof_unwind_backtrace's caller, as the first address
 * _Unwind_Backtrace reports is the one into its caller. At most max;
 * returns how many, or PROF_UNWIND_FALLBACK.
 */
int prof_unwind_backtrace(uintptr_t *pcs, unsigned max);

/* ---------------------------------------------------------------------- */
/* The decoded rules (exposed for the unit test). */

typedef enum {
	/* Table slot not in use. */
	PROF_UNWIND_EMPTY = 0,
	/* CFA = rsp + cfa_off. */
	PROF_UNWIND_RSP = 1,
	/* CFA = rbp + cfa_off. */
	PROF_UNWIND_RBP = 2,
	/* Return address undefined: the outermost frame. */
	PROF_UNWIND_END = 3,
	/* Not the simple kind, or no unwind information: fall back. */
	PROF_UNWIND_COMPLEX = 4,
} prof_unwind_kind_t;

typedef struct {
	prof_unwind_kind_t kind;
	int32_t cfa_off;
	/* The caller's rbp is at CFA + rbp_off; 0: rbp is not saved (the
	 * caller's value is the current one). */
	int32_t rbp_off;
} prof_unwind_rule_t;

/* The rule in force at code address addr (for a return address, the
 * address minus one), decoded from the unwind tables, not the cache. */
prof_unwind_rule_t prof_unwind_rule_decode(uintptr_t addr);

/* Counters since start-up, for the unit test: frames whose rule came from
 * the table, rules decoded, backtraces that fell back, times the table was
 * emptied because an object was unloaded. */
typedef struct {
	uint64_t hits;
	uint64_t decoded;
	uint64_t fallbacks;
	uint64_t flushes;
} prof_unwind_stats_t;
prof_unwind_stats_t prof_unwind_stats_get(void);

void prof_unwind_prefork(void);
void prof_unwind_postfork_parent(void);
void prof_unwind_postfork_child(void);

#endif
