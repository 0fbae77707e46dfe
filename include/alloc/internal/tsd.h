/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Thread state: everything liballoc keeps per thread, in one TLS struct.
 *
 * The struct is zero-initialised by the C runtime, and zero means "not set
 * up yet": a new thread needs no constructor, and the hot paths notice a
 * missing setup through the same test that notices an empty cache.
 * With initial-exec TLS (the default) the struct is addressed off the
 * thread pointer in one instruction; configure --disable-initial-exec-tls
 * switches to the general model so liballoc can be dlopen()ed late.
 */
#ifndef ALLOC_INTERNAL_TSD_H
#define ALLOC_INTERNAL_TSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/config.h"
#include "alloc/internal/tcache.h"

#if ALLOC_CONFIG_INITIAL_EXEC_TLS
#define TSD_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define TSD_TLS_MODEL
#endif

typedef enum {
	/* Fresh thread: nothing set up. */
	TSD_STATE_UNINIT = 0,
	/* Set up; the destructor will run at thread exit. */
	TSD_STATE_NOMINAL = 1,
	/* The destructor ran; the thread is exiting but may still call
	 * malloc/free (other destructors). It works without a cache. */
	TSD_STATE_EXITING = 2,
} tsd_state_t;

typedef struct {
	/* First, so the hot path addresses it at a fixed small offset. */
	tcache_t tcache;
	/* Arena this thread allocates from (NULL until chosen). */
	arena_t *arena;
	/* CPU the arena was chosen for; -1 when not chosen by CPU. */
	int arena_cpu;
	/* Consecutive slow-path checks that found the thread on another CPU
	 * (see tsd_arena: a thread moves to its new CPU's arena only after
	 * TSD_CPU_MOVES_TO_REBIND of them). */
	uint8_t cpu_moves;
	/* The arena was set explicitly (thread.arena): never rebind. */
	bool arena_pinned;
	uint8_t state;
	/* Bytes this thread allocated and freed (thread.allocated/deallocated). */
	uint64_t allocated;
	uint64_t deallocated;
	/* Objects this thread freed, held back under opt.quarantine (fill.h);
	 * NULL when there are none. */
	struct fill_quarantine_s *quarantine;
	/* Heap profiling (prof.h): the thread's record (NULL until its first
	 * sample-related event) and its re-entry guard: set while it takes a
	 * backtrace or dumps, when nothing it allocates is sampled. */
	struct prof_tdata_s *prof;
	bool prof_busy;
	/* tcache_size2pc_tab, copied by tsd_setup: malloc's hit path reads it
	 * %fs-relative, off the register that addresses the cache, where the
	 * shared table's address costs an instruction (`lea`). All zeros
	 * (bin 0, which always misses) in a thread not set up. */
	uint8_t size2pc[SZ_LOOKUP_MAXCLASS + 1];
} tsd_t;

extern __thread tsd_t tsd_tls TSD_TLS_MODEL;

ALWAYS_INLINE tsd_t *
tsd_get(void) {
	return &tsd_tls;
}

/*
 * TSD_FS(field): an lvalue for tsd_tls.field that the hit paths use.
 *
 * On x86-64 with initial-exec TLS, the thread's copy of tsd_tls sits at a
 * fixed offset from the %fs segment base. Compilers address constant
 * offsets off %fs directly but materialise the thread pointer for indexed
 * accesses (tsd_tls.tcache.head[pc]), costing two instructions per
 * malloc and per free. Reading the offset once and going through the
 * __seg_fs address space gives `mov %fs:(off,ind),reg` instead. Elsewhere
 * TSD_FS is plain tsd_tls access, and so in builds with AddressSanitizer or
 * ThreadSanitizer (the unit-test objects): their instrumentation takes the
 * %fs-relative offset for an address and crashes on its shadow.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TSD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TSD_SANITIZED 1
#endif
#endif
#if defined(__x86_64__) && defined(__SEG_FS) && ALLOC_CONFIG_INITIAL_EXEC_TLS && \
    !defined(TSD_SANITIZED)
ALWAYS_INLINE uintptr_t
tsd_tls_offset(void) {
	uintptr_t off;
	__asm__("movq tsd_tls@gottpoff(%%rip), %0" : "=r"(off));
	return off;
}
#define TSD_FS(field) (((__seg_fs tsd_t *)tsd_tls_offset())->field)
/*
 * --tsd_tls.tcache.ticks[pc] < 0. Written out because GCC 12 computes the
 * address of a __seg_fs read-modify-write whose flags it uses into a
 * register first (an extra lea): here it is `subq $1, %fs:...; js`.
 */
ALWAYS_INLINE bool
tsd_fs_tick(uintptr_t pc) {
	bool negative;
	__asm__ volatile("subq $1, %%fs:%c[off](%[base],%[pc],8)"
	                 : "=@ccs"(negative)
	                 : [base] "r"(tsd_tls_offset()), [pc] "r"((uintptr_t)pc),
	                   [off] "i"(offsetof(tsd_t, tcache.ticks))
	                 : "memory");
	return negative;
}
/*
 * free's interior-pointer test with one-byte biases (4 KiB pages,
 * arena_region_offset): the offset x = (uint16_t)ptr + (*bias << 8) mod
 * 2^16, and x * M < M with M = region_magic[pc]. Four instructions: the
 * zero-extending copy of the pointer's low half, the byte added to its
 * second byte (%ah: x must live in one of %eax..%edx, which have such a
 * byte; GCC 12 given the choice takes %ebx and saves it, two more
 * instructions; and the bias's address in registers that need no REX
 * prefix, the "R" constraint), the multiply and the compare against
 * %fs-relative memory. The bias is read as the page's class byte is
 * (arena_page_hdr): off the same two registers, the page number scaled by
 * sizeof(arena_page_t), next to the class byte in the same cache line.
 */
ALWAYS_INLINE bool
tsd_fs_region_start8(uintptr_t hdr, uintptr_t page, const void *ptr, uintptr_t pc) {
	bool below;
	uint32_t x;
	__asm__("movzwl %w[ptr], %k[x]\n\t"
	        "addb %c[boff](%[bb],%[bi],2), %h[x]\n\t"
	        "imull %%fs:%c[off](%[base],%[pc],4), %k[x]\n\t"
	        "cmpl %%fs:%c[off](%[base],%[pc],4), %k[x]"
	        : [x] "=&a"(x), "=@ccb"(below)
	        : [ptr] "r"(ptr), [bb] "R"(hdr), [bi] "R"(page),
	          [boff] "i"(offsetof(arena_chunk_t, pmap) + offsetof(arena_page_t, bias)),
	          [base] "r"(tsd_tls_offset()), [pc] "r"(pc),
	          [off] "i"(offsetof(tsd_t, tcache.region_magic))
	        : "memory");
	return below;
}
/* (ptr & tsd_tls.tcache.align_mask[pc]) != 0 as one `testq ptr, %fs:...`:
 * GCC 12 copies ptr and uses `and` instead (two more instructions). */
ALWAYS_INLINE bool
tsd_fs_misaligned(const void *ptr, uintptr_t pc) {
	bool nonzero;
	__asm__("testq %[ptr], %%fs:%c[off](%[base],%[pc],8)"
	        : "=@ccnz"(nonzero)
	        : [ptr] "r"(ptr), [base] "r"(tsd_tls_offset()), [pc] "r"(pc),
	          [off] "i"(offsetof(tsd_t, tcache.align_mask))
	        : "memory");
	return nonzero;
}
/* tsd_tls.tcache.head[pc] += delta slots, as one read-modify-write (GCC
 * keeps the new value in a register and stores it: one more instruction). */
ALWAYS_INLINE void
tsd_fs_head_move(uintptr_t pc, intptr_t delta) {
	__asm__ volatile("addq %[d], %%fs:%c[off](%[base],%[pc],8)"
	                 :
	                 : [d] "er"(delta * (intptr_t)sizeof(void *)), [base] "r"(tsd_tls_offset()),
	                   [pc] "r"(pc), [off] "i"(offsetof(tsd_t, tcache.head))
	                 : "memory", "cc");
}
/* tsd_tls.size2pc[size] as `movzbl %fs:...(off,size), reg`, with the offset
 * register kept for the rest of malloc's hit path: GCC 12 loads the offset
 * into the register it then loads the byte into, and loads it again after
 * the branch for larger sizes joins (one more instruction). */
ALWAYS_INLINE uintptr_t
tsd_fs_size2pc(size_t size) {
	uintptr_t pc;
	__asm__(
	    "movzbl %%fs:%c[off](%[base],%[size]), %k[pc]"
	    : [pc] "=&r"(pc)
	    : [base] "r"(tsd_tls_offset()), [size] "r"(size), [off] "i"(offsetof(tsd_t, size2pc))
	    : "memory");
	return pc;
}
/*
 * The cache key (tcache.h) on this build: the thread-state offset itself,
 * which the hit paths hold in a register anyway, so free compares and
 * stores it without loading a secret (one instruction). The same for every
 * thread of the process; tcache_boot sets tcache_key to it for the slow
 * paths. See doc/design.md, "Bad frees on the hit path".
 */
#define TSD_KEY_IS_OFFSET 1
ALWAYS_INLINE uintptr_t
tsd_fs_key(void) {
	return tsd_tls_offset();
}
#else
#define TSD_FS(field)     (tsd_tls.field)
ALWAYS_INLINE bool
tsd_fs_misaligned(const void *ptr, uintptr_t pc) {
	return ((uintptr_t)ptr & tsd_tls.tcache.align_mask[pc]) != 0;
}
ALWAYS_INLINE bool
tsd_fs_region_start8(uintptr_t hdr, uintptr_t page, const void *ptr, uintptr_t pc) {
	uint32_t magic = tsd_tls.tcache.region_magic[pc];
	uint8_t bias =
	    ((const uint8_t *)hdr)[offsetof(arena_chunk_t, pmap) + offsetof(arena_page_t, bias) +
	                           page * sizeof(arena_page_t)];
	uint32_t x = (uint16_t)((uintptr_t)ptr + ((uint32_t)bias << 8));
	return x * magic < magic;
}
ALWAYS_INLINE void
tsd_fs_head_move(uintptr_t pc, intptr_t delta) {
	tsd_tls.tcache.head[pc] += delta;
}
ALWAYS_INLINE uintptr_t
tsd_fs_size2pc(size_t size) {
	return tsd_tls.size2pc[size];
}
#define TSD_KEY_IS_OFFSET 0
ALWAYS_INLINE uintptr_t
tsd_fs_key(void) {
	return tcache_key;
}
ALWAYS_INLINE bool
tsd_fs_tick(uintptr_t pc) {
	/* A relaxed load and store (TCACHE_COUNTER_SET), not a locked
	 * read-modify-write: only this thread writes the tick. */
	int64_t ticks = tsd_tls.tcache.ticks[pc] - 1;
	TCACHE_COUNTER_SET(tsd_tls.tcache.ticks[pc], ticks);
	return ticks < 0;
}
#endif
_Static_assert(sizeof(((tcache_t *)0)->ticks[0]) == 8, "tsd_fs_tick decrements 8 bytes");
_Static_assert(sizeof(((tcache_t *)0)->align_mask[0]) == 8, "tsd_fs_misaligned tests 8 bytes");
_Static_assert(sizeof(((tcache_t *)0)->region_magic[0]) == 4,
               "tsd_fs_region_start8 multiplies by 4 bytes");
_Static_assert(sizeof(arena_pbias_t) != 1 || sizeof(arena_page_t) == 2,
               "tsd_fs_region_start8 scales the page number by 2");

/*
 * What the layers above thread state ask of it, decided once by alloc.c at
 * start-up, so that this module depends on none of them: whether threads
 * get a thread cache at all (not under the fill options, fill.h), and what
 * to release at a thread's exit before its cache is flushed (the fill
 * quarantine). `exit` may be NULL.
 */
typedef struct {
	bool tcache;
	void (*exit)(tsd_t *tsd);
} tsd_hooks_t;

/* Creates the thread-exit key and keeps *hooks; returns true on failure. */
bool tsd_boot(const tsd_hooks_t *hooks);

/* Sets up the calling thread (registers the exit destructor, sets up the
 * cache). Returns the state it ends in. */
tsd_state_t tsd_setup(tsd_t *tsd);

/* The arena the calling thread should use now: its CPU's (rechecked here,
 * on slow paths only), or its round-robin or pinned one. NULL only when
 * arena creation fails for lack of memory. */
arena_t *tsd_arena(tsd_t *tsd);

/* Binds the thread to arena `a` (thread.arena); pinned bindings are never
 * changed by CPU migration. */
void tsd_arena_set(tsd_t *tsd, arena_t *a, bool pinned);

/* CPUs in the process's affinity mask at start-up. */
extern unsigned tsd_ncpus;

void tsd_postfork_child(void);

#endif
