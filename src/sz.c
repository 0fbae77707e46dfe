/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Size classes: fills the tables behind the inline functions of sz.h.
 *
 * The class list is generated here by walking the scheme group by group
 * (not by the arithmetic of sz.h), so the unit test checking the two
 * against each other compares independent derivations. sz_boot() owns the
 * tables; they are written once during initialisation and read-only after.
 */
#include "alloc/internal/sz.h"

#include "alloc/internal/assert.h"
#include "alloc/internal/config.h"

size_t sz_index2size_tab[SZ_NSIZES];
uint8_t sz_size2index_tab[SZ_LOOKUP_NENTRIES];
size_t sz_large_run_max;

static void
sz_boot_classes(void) {
	szind_t ind = 0;

	/* Tiny: 8, 16, ..., QUANTUM / 2. */
	for (unsigned lg = SZ_LG_TINY_MIN; lg < LG_QUANTUM; lg++) {
		sz_index2size_tab[ind++] = (size_t)1 << lg;
	}
	/* Group 0: QUANTUM, 2 QUANTUM, 3 QUANTUM, 4 QUANTUM. */
	for (size_t j = 1; j <= 4; j++) {
		sz_index2size_tab[ind++] = j << LG_QUANTUM;
	}
	/* Groups ending at 2^k: 2^(k-1) + j 2^(k-3), the last one stopping short of 2^SZ_LG_TOP. */
	for (unsigned k = LG_QUANTUM + 3; k <= SZ_LG_TOP; k++) {
		for (size_t j = 1; j <= 4; j++) {
			if (k == SZ_LG_TOP && j == 4) {
				break;
			}
			sz_index2size_tab[ind++] = ((size_t)1 << (k - 1)) + (j << (k - 3));
		}
	}
	assert_internal(ind == SZ_NSIZES);
}

static void
sz_boot_lookup(void) {
	szind_t ind = 0;
	for (size_t i = 0; i < SZ_LOOKUP_NENTRIES; i++) {
		size_t size = i << SZ_LG_TINY_MIN;
		while (sz_index2size_tab[ind] < size) {
			ind++;
		}
		sz_size2index_tab[i] = (uint8_t)ind;
	}
}

void
sz_boot(size_t large_run_max) {
	assert_internal(large_run_max >= SZ_LARGE_MAXCLASS);
	sz_boot_classes();
	sz_boot_lookup();
	sz_large_run_max = large_run_max;
}
