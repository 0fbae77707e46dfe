/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Size classes: the map between request sizes and the sizes liballoc
 * actually hands out.
 *
 * Contract. Every allocation is rounded up to a size class. Classes are
 * numbered by a dense index (szind_t) in increasing size order; index 0 is
 * the smallest class. The class list is a pure function of LG_QUANTUM,
 * LG_PAGE and LG_CHUNK, so the counts below are compile-time constants
 * (arrays are sized by them); the tables are filled once by sz_boot(), and
 * the inline functions below must not be used before it has run. Nothing
 * here allocates or locks; after sz_boot() everything is read-only.
 *
 * The scheme (jemalloc 4.x). Let Q = 2^LG_QUANTUM.
 *
 *   tiny       8, 16, ..., Q/2          powers of two from 2^SZ_LG_TINY_MIN;
 *                                       LG_QUANTUM - 3 classes (none for Q = 8)
 *   group 0    Q, 2Q, 3Q, 4Q            spacing Q, ends at 2^(LG_QUANTUM+2)
 *   group g    for g >= 1 the group ending at 2^k, k = LG_QUANTUM + 2 + g:
 *              2^(k-1) + j * 2^(k-3),   j = 1, 2, 3, 4
 *
 * so there are four classes per doubling, each 1/8 of the next power of two
 * apart, which bounds the waste past group 0 at 20% of the class size
 * (worst case: 2^(k-1) + 1 rounded up to 2^(k-1) + 2^(k-3)). Every power of
 * two >= 8 is a class (the last of its group). Classes split in three kinds:
 *
 *   small  [8, 4 pages)        regions carved from page runs, one bin each.
 *          The group ending at 2^(LG_PAGE+2) contributes its first three
 *          classes, so SZ_SMALL_MAXCLASS = 2^(LG_PAGE+2) - 2^(LG_PAGE-1).
 *          Count: SZ_NTINY, plus 4 for group 0, plus 4 for each group
 *          ending at 2^(LG_QUANTUM+3) .. 2^(LG_PAGE+1), plus those 3:
 *          SZ_NTINY + 3 + 4 * (LG_PAGE - LG_QUANTUM).
 *   large  [4 pages, CHUNK)    one page run each. Past 4 pages the spacing
 *          2^(k-3) is at least PAGE (k >= LG_PAGE + 3), so every large
 *          class is a whole number of pages. 4 pages itself, plus four
 *          per group ending at 2^(LG_PAGE+3) .. 2^LG_CHUNK, minus CHUNK:
 *          4 * (LG_CHUNK - LG_PAGE - 2) classes; the largest is
 *          CHUNK - CHUNK/8.
 *   huge   [CHUNK, 2^63)       whole chunks. CHUNK plus four per group ending
 *          at 2^(LG_CHUNK+1) .. 2^63, minus 2^63 itself: 4 * (63 - LG_CHUNK)
 *          classes; the largest is 2^63 - 2^60.
 *
 * For LG_PAGE 12, LG_QUANTUM 4, LG_CHUNK 21: 36 small (8 .. 14336), 28 large
 * (16 KiB .. 1.75 MiB), 168 huge (2 MiB .. 7 EiB). doc/size-classes.md has
 * the full table and more on sz_sa2u().
 *
 * Indexes: small [0, SZ_NSMALL), large [SZ_NSMALL, SZ_NPAGED), huge
 * [SZ_NPAGED, SZ_NSIZES). The chunk page map stores an index < SZ_NPAGED in
 * one byte and uses SZ_NPAGED itself for "no object here", hence the static
 * assertion below. sz_size2index() returns SZ_NSIZES for sizes larger than
 * every class, and sz_s2u()/sz_sa2u() return 0 for them: callers test one
 * value for "too large" and never see an overflowed size.
 */
#ifndef ALLOC_INTERNAL_SZ_H
#define ALLOC_INTERNAL_SZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/config.h"
#include "alloc/internal/util.h"

typedef unsigned szind_t;

/* log2 of the bit width of size_t, minus one: 2^SZ_LG_TOP is the end of the last group. */
#define SZ_LG_TOP (__SIZEOF_SIZE_T__ * 8 - 1)

#define SZ_LG_TINY_MIN 3
#define SZ_TINY_MIN    ((size_t)1 << SZ_LG_TINY_MIN)
#define SZ_NTINY       (LG_QUANTUM - SZ_LG_TINY_MIN)

#define SZ_NSMALL         (SZ_NTINY + 3 + 4 * (LG_PAGE - LG_QUANTUM))
#define SZ_SMALL_MAXCLASS (((size_t)1 << (LG_PAGE + 2)) - ((size_t)1 << (LG_PAGE - 1)))

#define SZ_NLARGE         (4 * (LG_CHUNK - LG_PAGE - 2))
#define SZ_LARGE_MINCLASS ((size_t)1 << (LG_PAGE + 2))
#define SZ_LARGE_MAXCLASS (CHUNK - (CHUNK >> 3))

/* Classes that live in a chunk's page runs: an index < SZ_NPAGED fits in a byte. */
#define SZ_NPAGED (SZ_NSMALL + SZ_NLARGE)

#define SZ_NHUGE         (4 * (SZ_LG_TOP - LG_CHUNK))
#define SZ_HUGE_MAXCLASS (((size_t)1 << SZ_LG_TOP) - ((size_t)1 << (SZ_LG_TOP - 3)))

#define SZ_NSIZES (SZ_NPAGED + SZ_NHUGE)

/* Sizes up to this go through sz_size2index_tab; beyond, through arithmetic. */
#define SZ_LOOKUP_MAXCLASS ((size_t)1 << 12)
#define SZ_LOOKUP_NENTRIES ((SZ_LOOKUP_MAXCLASS >> SZ_LG_TINY_MIN) + 1)

_Static_assert(LG_QUANTUM >= SZ_LG_TINY_MIN, "the quantum must be at least 8 bytes");
_Static_assert(LG_PAGE > LG_QUANTUM, "a page must be larger than the quantum");
_Static_assert(LG_CHUNK >= LG_PAGE + 3, "large classes need a chunk of at least 8 pages");
_Static_assert(LG_CHUNK < SZ_LG_TOP - 1, "chunk too large for size_t");
_Static_assert(SZ_NPAGED < 255, "page-run class indexes must fit in a byte, 255 reserved");
_Static_assert(SZ_LOOKUP_MAXCLASS <= SZ_SMALL_MAXCLASS, "lookups must stay small (uint8_t table)");

/* Size of each class, by index; filled by sz_boot(). */
extern size_t sz_index2size_tab[SZ_NSIZES];
/* Entry (s + 7) >> 3 is the class index of size s <= SZ_LOOKUP_MAXCLASS (entry 0: size 0 -> 0). */
extern uint8_t sz_size2index_tab[SZ_LOOKUP_NENTRIES];
/* Bytes of the largest page run a chunk can hold, as given to sz_boot(). */
extern size_t sz_large_run_max;

/*
 * Fills the tables and records large_run_max, the size of the largest page
 * run a chunk can hold (CHUNK minus its header; at least SZ_LARGE_MAXCLASS).
 * Idempotent; the allocator's initialisation calls it before any other
 * sz_* function.
 */
void sz_boot(size_t large_run_max);

ALWAYS_INLINE bool
sz_is_small(szind_t ind) {
	return ind < SZ_NSMALL;
}

ALWAYS_INLINE bool
sz_is_large(szind_t ind) {
	return ind - SZ_NSMALL < SZ_NLARGE;
}

ALWAYS_INLINE bool
sz_is_huge(szind_t ind) {
	return ind - SZ_NPAGED < SZ_NHUGE;
}

ALWAYS_INLINE szind_t
sz_size2index_lookup(size_t size) {
	assert_internal(size <= SZ_LOOKUP_MAXCLASS);
	return sz_size2index_tab[(size + (SZ_TINY_MIN - 1)) >> SZ_LG_TINY_MIN];
}

/*
 * Arithmetic form of sz_size2index(), exact for every size. For a size in
 * (2^(x-1), 2^x] past group 0, the class is in the group ending at 2^x,
 * which is group x - (LG_QUANTUM + 2), and its position j - 1 in that group
 * is bits [x-3, x-1) of size - 1. Group 0 (x <= LG_QUANTUM + 2) follows
 * the same rule with the shift pinned at LG_QUANTUM.
 */
ALWAYS_INLINE szind_t
sz_size2index_compute(size_t size) {
	if (unlikely(size > SZ_HUGE_MAXCLASS)) {
		return SZ_NSIZES;
	}
	if (size <= SZ_TINY_MIN) {
		return 0;
	}
	if (SZ_NTINY > 0 && size <= (QUANTUM >> 1)) {
		return lg_ceil(size) - SZ_LG_TINY_MIN;
	}
	unsigned x = lg_ceil(size);
	unsigned grp = x < LG_QUANTUM + 2 ? 0 : x - (LG_QUANTUM + 2);
	unsigned lg_delta = x < LG_QUANTUM + 3 ? LG_QUANTUM : x - 3;
	unsigned mod = (unsigned)((size - 1) >> lg_delta) & 3;
	return SZ_NTINY + (grp << 2) + mod;
}

/*
 * sz_size2index_compute for SZ_LOOKUP_MAXCLASS < size <= SZ_HUGE_MAXCLASS,
 * in the fewest instructions (malloc's hit path for large sizes). Sizes
 * above 4 quanta are in groups with x = lg_ceil(size) >= LG_QUANTUM + 3, so
 * with f = lg_floor(size - 1) = x - 1 the rule above reads
 * SZ_NTINY + 4 (f - LG_QUANTUM - 1) + ((size - 1) >> (f - 2)) & 3.
 */
ALWAYS_INLINE szind_t
sz_size2index_big(size_t size) {
	size_t m = size - 1;
	unsigned f = lg_floor(m);
	return SZ_NTINY + 4 * f - 4 * (LG_QUANTUM + 1) + (unsigned)((m >> (f - 2)) & 3);
}
_Static_assert(SZ_LOOKUP_MAXCLASS > ((size_t)4 << LG_QUANTUM), "sz_size2index_big's range");

/* Index of the smallest class >= size; 0 for size 0, SZ_NSIZES if none. */
ALWAYS_INLINE szind_t
sz_size2index(size_t size) {
	if (likely(size <= SZ_LOOKUP_MAXCLASS)) {
		return sz_size2index_lookup(size);
	}
	return sz_size2index_compute(size);
}

ALWAYS_INLINE size_t
sz_index2size(szind_t ind) {
	assert_internal(ind < SZ_NSIZES);
	return sz_index2size_tab[ind];
}

/* Arithmetic form of sz_index2size(); the tests check it against the table. */
ALWAYS_INLINE size_t
sz_index2size_compute(szind_t ind) {
	/* ind < SZ_NTINY, spelled so -Wtype-limits is quiet when there are none. */
	if (ind + 1 <= SZ_NTINY) {
		return SZ_TINY_MIN << ind;
	}
	unsigned grp = (ind - SZ_NTINY) >> 2;
	unsigned mod = (ind - SZ_NTINY) & 3;
	if (grp == 0) {
		return (size_t)(mod + 1) << LG_QUANTUM;
	}
	unsigned lg_delta = LG_QUANTUM + grp - 1;
	return ((size_t)4 << lg_delta) + ((size_t)(mod + 1) << lg_delta);
}

/* Arithmetic form of sz_s2u(): round size up to its group's spacing. */
ALWAYS_INLINE size_t
sz_s2u_compute(size_t size) {
	if (unlikely(size > SZ_HUGE_MAXCLASS)) {
		return 0;
	}
	if (size <= SZ_TINY_MIN) {
		return SZ_TINY_MIN;
	}
	if (SZ_NTINY > 0 && size <= (QUANTUM >> 1)) {
		return pow2_ceil(size);
	}
	unsigned x = lg_ceil(size);
	unsigned lg_delta = x < LG_QUANTUM + 3 ? LG_QUANTUM : x - 3;
	return ALIGN_UP(size, (size_t)1 << lg_delta);
}

/* Usable size of the class of size (size 0: the smallest class); 0 if none. */
ALWAYS_INLINE size_t
sz_s2u(size_t size) {
	if (likely(size <= SZ_LOOKUP_MAXCLASS)) {
		return sz_index2size_tab[sz_size2index_lookup(size)];
	}
	return sz_s2u_compute(size);
}

/* Pages of the run of large class ind. */
ALWAYS_INLINE size_t
sz_large_pages(szind_t ind) {
	assert_internal(sz_is_large(ind));
	return sz_index2size(ind) >> LG_PAGE;
}

/*
 * Usable size of an allocation of size bytes aligned to the power of two
 * alignment, as the arena will satisfy it; 0 if too large or on overflow.
 *
 * alignment <= PAGE: the class of ALIGN_UP(max(size, 1), alignment). That class is
 * a multiple of alignment: let m = ALIGN_UP(size, alignment) and d the
 * spacing of the group m falls in (a power of two; the classes of a group
 * are multiples of d, and tiny classes are powers of two >= m). If
 * alignment <= d the class is a multiple of d, hence of alignment; if
 * alignment > d then m, a multiple of alignment, is a multiple of d and is
 * itself the class. Small regions sit at run + i * size in page-aligned runs
 * and large objects start their page-aligned run, so with PAGE a multiple
 * of alignment every object is aligned.
 *
 * alignment > PAGE: no small class helps (their runs only promise PAGE), so
 * the request is at least large. The arena carves a run of usize + alignment
 * - PAGE bytes and trims the misaligned head and the tail; if that run does
 * not fit in a chunk, the request is huge, and huge allocations are chunk
 * aligned (the chunk layer over-allocates by alignment - CHUNK for larger
 * alignments). 0 when that mapping would exceed SZ_HUGE_MAXCLASS.
 */
ALWAYS_INLINE size_t
sz_sa2u(size_t size, size_t alignment) {
	assert_internal(is_pow2(alignment));
	if (unlikely(size > SZ_HUGE_MAXCLASS)) {
		return 0;
	}
	/* No overflow below: SZ_HUGE_MAXCLASS + 2^SZ_LG_TOP <= SIZE_MAX. */
	if (likely(alignment <= PAGE)) {
		/* Size 0 asks for the smallest aligned class, not class 0. */
		return sz_s2u(ALIGN_UP(size + (size == 0), alignment));
	}
	size_t usize;
	if (size <= SZ_LARGE_MAXCLASS) {
		usize = sz_s2u(size < SZ_LARGE_MINCLASS ? SZ_LARGE_MINCLASS : size);
		if (usize + alignment - PAGE <= sz_large_run_max) {
			return usize;
		}
	}
	/*
	 * Huge: the chunk layer maps usize + alignment - CHUNK bytes to find an
	 * aligned start. A mapping larger than the largest class cannot be
	 * had; refusing it here also rules out overflow, as usize and
	 * alignment are both below 2^SZ_LG_TOP.
	 */
	usize = sz_s2u(size < CHUNK ? CHUNK : size);
	if (unlikely(usize + alignment - CHUNK > SZ_HUGE_MAXCLASS)) {
		return 0;
	}
	return usize;
}

#endif
