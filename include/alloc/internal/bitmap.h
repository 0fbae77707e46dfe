/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Bitmaps of a small run's regions: bit i set means region i is in use.
 *
 * Contract. A bitmap of nbits bits is BITMAP_NGROUPS(nbits) 64-bit groups,
 * bit i in group i / 64 at position i % 64, storage owned by the caller (it
 * lives in the run's header). bitmap_init() clears bits [0, nbits) and sets
 * the padding bits past nbits in the last group, so a search never returns
 * an index >= nbits. Any nbits >= 1 works; runs need up to a few thousand.
 *
 * Allocation is "set first unset": bitmap_sfu() returns the lowest clear
 * bit at or after group *hint and sets it. The caller keeps one hint per
 * bitmap with the invariant "every group below *hint is full"; bitmap_init
 * pairs with hint 0, bitmap_sfu() advances it, and bitmap_unset_hint()
 * lowers it when it frees a bit. With the invariant, sfu returns the lowest
 * clear bit of the whole bitmap, so runs fill from the front (good for
 * locality and for emptying runs at the back), and the search usually looks
 * at one group. A caller that takes several bits at once (a thread-cache
 * fill) finds their group with bitmap_group_nonfull(), writes the group
 * back whole and keeps the invariant itself (hint = that group, or the
 * next once it is full). The caller guarantees a clear bit exists (it
 * counts free regions), and detects double frees itself with bitmap_get()
 * (or the same test on the group word) before clearing a bit. Not
 * thread-safe: the bin lock protects a run's bitmap. bitmap_get/set/unset
 * also serve as a plain bit mask.
 */
#ifndef ALLOC_INTERNAL_BITMAP_H
#define ALLOC_INTERNAL_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/util.h"

typedef uint64_t bitmap_t;

#define BITMAP_LG_GROUP_NBITS 6
#define BITMAP_GROUP_NBITS    ((size_t)1 << BITMAP_LG_GROUP_NBITS)
#define BITMAP_GROUP_MASK     (BITMAP_GROUP_NBITS - 1)
#define BITMAP_GROUP_FULL     (~(bitmap_t)0)

/* Groups holding nbits bits; a constant expression when nbits is. */
#define BITMAP_NGROUPS(nbits) (((nbits) + BITMAP_GROUP_MASK) >> BITMAP_LG_GROUP_NBITS)

/* Clears bits [0, nbits) and sets the padding bits of the last group. */
ALWAYS_INLINE void
bitmap_init(bitmap_t *bm, size_t nbits) {
	assert_internal(nbits > 0);
	size_t ngroups = BITMAP_NGROUPS(nbits);
	for (size_t i = 0; i < ngroups; i++) {
		bm[i] = 0;
	}
	size_t used = nbits & BITMAP_GROUP_MASK;
	if (used != 0) {
		bm[ngroups - 1] = BITMAP_GROUP_FULL << used;
	}
}

ALWAYS_INLINE bool
bitmap_get(const bitmap_t *bm, size_t bit) {
	return (bm[bit >> BITMAP_LG_GROUP_NBITS] >> (bit & BITMAP_GROUP_MASK)) & 1;
}

/* Sets bit; setting a set bit is allowed (the arena uses bitmaps as plain masks too). */
ALWAYS_INLINE void
bitmap_set(bitmap_t *bm, size_t bit) {
	bm[bit >> BITMAP_LG_GROUP_NBITS] |= (bitmap_t)1 << (bit & BITMAP_GROUP_MASK);
}

/* Clears bit, set or not. Callers that keep a search hint use bitmap_unset_hint(). */
ALWAYS_INLINE void
bitmap_unset(bitmap_t *bm, size_t bit) {
	bm[bit >> BITMAP_LG_GROUP_NBITS] &= ~((bitmap_t)1 << (bit & BITMAP_GROUP_MASK));
}

/* Clears a set bit and lowers *hint to its group if needed. */
ALWAYS_INLINE void
bitmap_unset_hint(bitmap_t *bm, size_t bit, size_t *hint) {
	bitmap_unset(bm, bit);
	size_t group = bit >> BITMAP_LG_GROUP_NBITS;
	if (group < *hint) {
		*hint = group;
	}
}

/* The lowest group at or after `group` with a clear bit, which must
 * exist. Callers that take several bits at once (a thread-cache fill,
 * arena_bin.c) read and write that group whole, and keep the hint
 * invariant themselves: hint = the group, or the one after it once full. */
ALWAYS_INLINE size_t
bitmap_group_nonfull(const bitmap_t *bm, size_t ngroups, size_t group) {
	assert_internal(group < ngroups);
	while (unlikely(bm[group] == BITMAP_GROUP_FULL)) {
		group++;
		assert_internal(group < ngroups);
	}
	(void)ngroups;
	return group;
}

/*
 * Sets and returns the lowest clear bit at or after group *hint, and moves
 * *hint past the group if that filled it. A clear bit must exist there; it
 * is below nbits because init set the padding.
 */
ALWAYS_INLINE size_t
bitmap_sfu(bitmap_t *bm, size_t ngroups, size_t *hint) {
	size_t group = bitmap_group_nonfull(bm, ngroups, *hint);
	bitmap_t g = bm[group];
	unsigned pos = ctz_u64(~g);
	g |= (bitmap_t)1 << pos;
	bm[group] = g;
	*hint = group + (g == BITMAP_GROUP_FULL);
	return (group << BITMAP_LG_GROUP_NBITS) + pos;
}

/* True when every bit is set; walks the whole bitmap. */
ALWAYS_INLINE bool
bitmap_full(const bitmap_t *bm, size_t ngroups) {
	for (size_t i = 0; i < ngroups; i++) {
		if (bm[i] != BITMAP_GROUP_FULL) {
			return false;
		}
	}
	return true;
}

#endif
