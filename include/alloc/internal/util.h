/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers every subsystem uses: branch hints, inlining attributes,
 * power-of-two arithmetic and bit scans. Nothing here allocates or locks.
 */
#ifndef ALLOC_INTERNAL_UTIL_H
#define ALLOC_INTERNAL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define NOINLINE      __attribute__((noinline))
#define COLD          __attribute__((cold))
#define UNUSED        __attribute__((unused))
#define CACHE_ALIGNED __attribute__((aligned(64)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The text of a macro argument after expansion (STRINGIFY(__LINE__)). */
#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/* For validators that return the text of their first failed check (NULL
 * when all hold): returns "file:line: cond" from the calling function
 * unless cond holds. */
#define VALIDATE_CHECK(cond)                                                \
	do {                                                                \
		if (!(cond)) {                                              \
			return __FILE__ ":" STRINGIFY(__LINE__) ": " #cond; \
		}                                                           \
	} while (0)

/* Round x up/down to a multiple of the power of two `align`. */
#define ALIGN_UP(x, align)   (((x) + ((align)-1)) & ~((align)-1))
#define ALIGN_DOWN(x, align) ((x) & ~((align)-1))

/* Index of the highest set bit; x must be non-zero. Written with ^ (equal
 * to - here, as clz <= 63) so that GCC emits a bare bsr. */
ALWAYS_INLINE unsigned
lg_floor(size_t x) {
	return (unsigned)(sizeof(size_t) * 8 - 1) ^ (unsigned)__builtin_clzl(x);
}

/* Smallest lg with (1 << lg) >= x; x must be non-zero. */
ALWAYS_INLINE unsigned
lg_ceil(size_t x) {
	return x <= 1 ? 0 : lg_floor(x - 1) + 1;
}

/* Smallest power of two >= x, for 1 <= x <= SIZE_MAX/2 + 1. */
ALWAYS_INLINE size_t
pow2_ceil(size_t x) {
	return (size_t)1 << lg_ceil(x);
}

ALWAYS_INLINE int
is_pow2(size_t x) {
	return x != 0 && (x & (x - 1)) == 0;
}

/* Index of the lowest set bit; x must be non-zero. */
ALWAYS_INLINE unsigned
ctz_u64(uint64_t x) {
	return (unsigned)__builtin_ctzll(x);
}

#endif
