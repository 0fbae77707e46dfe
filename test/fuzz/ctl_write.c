/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target "ctl_write": writes (and reads) of mallctl values, by name
 * and by MIB, interleaved with allocations and frees through the arenas
 * and caches the writes affect.
 *
 * Input: a sequence of operations (at most MAX_OPS), each an opcode byte
 * and its arguments; missing bytes read as 0.
 *   call   one node of `nodes` below (every writable node of the tree,
 *          read-only ones written, actions, absent ones), an index for
 *          arena.<i> / arenas.bin.<i> / ... (in range, the "all arenas"
 *          index, out of range, an arena made by arenas.extend, possibly
 *          just reset), a value (fuzzer bytes or a chosen valid/invalid
 *          one), and buffer shapes: newp NULL or not, newlen right, short
 *          or long, oldp/oldlenp NULL or not, *oldlenp right, short, long;
 *   alloc  mallocx of a small, large or (rarely) huge size, plain, with
 *          MALLOCX_ARENA of an existing, extended or missing arena, with
 *          MALLOCX_TCACHE of a live or destroyed explicit cache, or
 *          MALLOCX_TCACHE_NONE;
 *   free   dallocx of a live block, through the thread's cache, an
 *          explicit cache or none;
 *   stats  flush every cache, write epoch, compare stats.allocated.
 *
 * Checked, for every call:
 *   - the result is exactly one of the errors the manual (doc/alloc.3,
 *     ERRORS) documents for what the call got wrong, or 0 when it got
 *     nothing wrong (EAGAIN is allowed where the manual allows it: out of
 *     memory in creations and in thread.tcache.enabled);
 *   - a failed call leaves a read-write value unchanged; a successful
 *     write reads back as written (decay times, lg_dirty_mult, thread.arena,
 *     thread.tcache.enabled, background_thread, chunk_hooks, extent_hooks); the old
 *     value returned is the value before the call; a read with the wrong
 *     *oldlenp copies the part that fits; nothing is written past the
 *     buffer (exact-size ASan buffers, and a guard pattern after the value
 *     in longer ones);
 *   - creations are bounded and nothing leaks: arenas.extend makes exactly
 *     one arena when it succeeds and none when it fails (at most
 *     MAX_EXTENDS per process); tcache.create hands out the lowest free
 *     id (so a failed create or destroy that kept a slot shows); a
 *     destroyed id is dead for tcache.flush/destroy and MALLOCX_TCACHE;
 *   - the allocator still works: every live block keeps its bytes until
 *     freed (or its arena is reset), mallocx through a missing arena or
 *     cache returns NULL, and after flushing every cache and an epoch,
 *     stats.allocated equals the usable bytes the model holds plus what it
 *     held at the start (stats builds).
 * At the end of each input everything is freed and destroyed and every
 * read-write value restored, so inputs replay alike in any order.
 *
 * Left out on purpose (each would be a caller error or unbounded work, not
 * an allocator fault):
 *   - chunk_hooks with fuzzer-chosen function pointers: the allocator
 *     would call them. Writes use a set of wrappers that forward to the
 *     default hooks, the set read back, or a set with a NULL member
 *     (EINVAL); extent_hooks and arenas.create likewise write NULL, the
 *     default table, a copy of it, or a copy without alloc (EINVAL);
 *   - arena.<i>.dss with a fuzzer-chosen pointer: the value is a string
 *     pointer the allocator reads. Writes point at fuzzer-chosen strings,
 *     or are NULL;
 *   - bool values other than 0 and 1: a bool object with another byte is
 *     undefined behaviour in the caller; other bytes go only to read-only
 *     nodes, which must refuse them unread;
 *   - arena.<i>.reset of an arena whose objects an explicit cache still
 *     holds: the manual makes that the program's job, so every explicit
 *     cache is flushed before a reset;
 *   - more than MAX_EXTENDS successful arenas.extend per process: arenas
 *     are never freed (liballoc does not recycle indices);
 *   - huge blocks beyond a few MiB and more than MAX_SLOTS live blocks.
 */
#define FUZZ_TARGET "ctl_write"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/config.h"
#include "alloc/internal/export.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/opt.h"
#define ALLOC_PREFIXED_BUILD 1
#include "alloc.h"

#include "fuzz_driver.h"

#define A(name) ALLOC_API(name)

#define MAX_OPS     192
#define MAX_SLOTS   48
#define MAX_TCACHES 8
#define MAX_EXTENDS 6
#define MAX_MIB     8
#define MAX_VALUE   64
#define GUARD_BYTE  0xa5
#define HUGE_MAX    (6u << 20)

/* ---------------------------------------------------------------------- */
/* Input. */

static const uint8_t *in_data;
static size_t in_size;

static uint8_t
take(void) {
	if (in_size == 0) {
		return 0;
	}
	in_size--;
	return *in_data++;
}

static uint64_t
take64(void) {
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++) {
		v |= (uint64_t)take() << (8 * i);
	}
	return v;
}

/* ---------------------------------------------------------------------- */
/* Failure. */

static const char *cur_name = "";

static void
fail(const char *what, long a, long b) {
	fprintf(stderr, "ctl_write fuzz: %s (node \"%s\", %ld, %ld)\n", what, cur_name, a, b);
	abort();
}

/* ---------------------------------------------------------------------- */
/* Nodes. */

typedef enum {
	/* A value that may only be read. */
	K_RO,
	/* A value that may be read and written. */
	K_RW,
	/* void --: neither read nor written. */
	K_ACTION,
	/* tcache.flush / tcache.destroy: a cache id written, nothing read. */
	K_WO_ID,
	/* tcache.create / arenas.extend: an id read, nothing written. */
	K_CREATE,
	/* Names this build does not have (jemalloc's profiling etc.). */
	K_ABSENT,
} kind_t;

/* Index spaces for names with one %u. */
typedef enum {
	IX_NONE,
	IX_ARENA,
	IX_STATS_ARENA,
	IX_BIN,
	IX_LRUN,
	IX_HCHUNK,
	IX_OPT,
} index_t;

/* What a read-write value means, for the checks of its effects. */
typedef enum {
	S_PLAIN,
	S_EPOCH,
	S_THREAD_ARENA,
	S_TCACHE_ENABLED,
	S_BACKGROUND,
	S_DECAY,
	S_DECAY_MS,
	S_LG_DIRTY,
	S_DSS,
	S_HOOKS,
	S_RESET,
	S_TCACHE_CREATE,
	S_EXTEND,
	/* arenas.create: arenas.extend taking an extent_hooks_t *. */
	S_CREATE,
	S_EXT_HOOKS,
	S_TCACHE_DESTROY,
	S_INITIALIZED,
} sem_t;

typedef struct {
	const char *name;
	kind_t kind;
	/* Size of the value (K_RO: 0 for arenas.initialized, sized by
	 * arenas.narenas; K_RO opt.*: from the table). */
	size_t size;
	index_t index;
	sem_t sem;
} node_t;

static const node_t nodes[] = {
    {"version", K_RO, sizeof(char *), IX_NONE, S_PLAIN},
    {"epoch", K_RW, sizeof(uint64_t), IX_NONE, S_EPOCH},
    {"background_thread", K_RW, sizeof(bool), IX_NONE, S_BACKGROUND},
    {"config.debug", K_RO, sizeof(bool), IX_NONE, S_PLAIN},
    {"config.stats", K_RO, sizeof(bool), IX_NONE, S_PLAIN},
    {"config.malloc_conf", K_RO, sizeof(char *), IX_NONE, S_PLAIN},
    {"opt.%u", K_RO, 0, IX_OPT, S_PLAIN},
    {"opt.decay_time", K_RO, sizeof(ssize_t), IX_NONE, S_PLAIN},
    {"thread.arena", K_RW, sizeof(unsigned), IX_NONE, S_THREAD_ARENA},
    {"thread.allocated", K_RO, sizeof(uint64_t), IX_NONE, S_PLAIN},
    {"thread.allocatedp", K_RO, sizeof(uint64_t *), IX_NONE, S_PLAIN},
    {"thread.deallocated", K_RO, sizeof(uint64_t), IX_NONE, S_PLAIN},
    {"thread.deallocatedp", K_RO, sizeof(uint64_t *), IX_NONE, S_PLAIN},
    {"thread.tcache.enabled", K_RW, sizeof(bool), IX_NONE, S_TCACHE_ENABLED},
    {"thread.tcache.flush", K_ACTION, 0, IX_NONE, S_PLAIN},
    {"tcache.create", K_CREATE, sizeof(unsigned), IX_NONE, S_TCACHE_CREATE},
    {"tcache.flush", K_WO_ID, sizeof(unsigned), IX_NONE, S_PLAIN},
    {"tcache.destroy", K_WO_ID, sizeof(unsigned), IX_NONE, S_TCACHE_DESTROY},
    {"arena.%u.purge", K_ACTION, 0, IX_ARENA, S_PLAIN},
    {"arena.%u.decay", K_ACTION, 0, IX_ARENA, S_PLAIN},
    {"arena.%u.reset", K_ACTION, 0, IX_ARENA, S_RESET},
    {"arena.%u.destroy", K_ACTION, 0, IX_ARENA, S_RESET},
    {"arena.%u.dss", K_RW, sizeof(char *), IX_ARENA, S_DSS},
    {"arena.%u.lg_dirty_mult", K_RW, sizeof(ssize_t), IX_ARENA, S_LG_DIRTY},
    {"arena.%u.decay_time", K_RW, sizeof(ssize_t), IX_ARENA, S_DECAY},
    {"arena.%u.dirty_decay_ms", K_RW, sizeof(ssize_t), IX_ARENA, S_DECAY_MS},
    {"arena.%u.muzzy_decay_ms", K_RW, sizeof(ssize_t), IX_ARENA, S_DECAY_MS},
    {"arena.%u.chunk_hooks", K_RW, sizeof(chunk_hooks_t), IX_ARENA, S_HOOKS},
    {"arena.%u.extent_hooks", K_RW, sizeof(extent_hooks_t *), IX_ARENA, S_EXT_HOOKS},
    {"arenas.narenas", K_RO, sizeof(unsigned), IX_NONE, S_PLAIN},
    {"arenas.initialized", K_RO, 0, IX_NONE, S_INITIALIZED},
    {"arenas.lg_dirty_mult", K_RW, sizeof(ssize_t), IX_NONE, S_LG_DIRTY},
    {"arenas.decay_time", K_RW, sizeof(ssize_t), IX_NONE, S_DECAY},
    {"arenas.dirty_decay_ms", K_RW, sizeof(ssize_t), IX_NONE, S_DECAY_MS},
    {"arenas.muzzy_decay_ms", K_RW, sizeof(ssize_t), IX_NONE, S_DECAY_MS},
    {"arenas.quantum", K_RO, sizeof(size_t), IX_NONE, S_PLAIN},
    {"arenas.page", K_RO, sizeof(size_t), IX_NONE, S_PLAIN},
    {"arenas.tcache_max", K_RO, sizeof(size_t), IX_NONE, S_PLAIN},
    {"arenas.nbins", K_RO, sizeof(unsigned), IX_NONE, S_PLAIN},
    {"arenas.nhbins", K_RO, sizeof(unsigned), IX_NONE, S_PLAIN},
    {"arenas.nlruns", K_RO, sizeof(unsigned), IX_NONE, S_PLAIN},
    {"arenas.nhchunks", K_RO, sizeof(unsigned), IX_NONE, S_PLAIN},
    {"arenas.bin.%u.size", K_RO, sizeof(size_t), IX_BIN, S_PLAIN},
    {"arenas.bin.%u.nregs", K_RO, sizeof(uint32_t), IX_BIN, S_PLAIN},
    {"arenas.bin.%u.run_size", K_RO, sizeof(size_t), IX_BIN, S_PLAIN},
    {"arenas.lrun.%u.size", K_RO, sizeof(size_t), IX_LRUN, S_PLAIN},
    {"arenas.hchunk.%u.size", K_RO, sizeof(size_t), IX_HCHUNK, S_PLAIN},
    {"arenas.extend", K_CREATE, sizeof(unsigned), IX_NONE, S_EXTEND},
    {"arenas.create", K_CREATE, sizeof(unsigned), IX_NONE, S_CREATE},
    {"stats.allocated", K_RO, sizeof(size_t), IX_NONE, S_PLAIN},
    {"stats.active", K_RO, sizeof(size_t), IX_NONE, S_PLAIN},
    {"stats.mapped", K_RO, sizeof(size_t), IX_NONE, S_PLAIN},
    {"stats.cactive", K_RO, sizeof(size_t *), IX_NONE, S_PLAIN},
    {"stats.arenas.%u.pactive", K_RO, sizeof(size_t), IX_STATS_ARENA, S_PLAIN},
    {"stats.arenas.%u.decay_time", K_RO, sizeof(ssize_t), IX_STATS_ARENA, S_PLAIN},
    {"stats.background_thread.num_threads", K_RO, sizeof(size_t), IX_NONE, S_PLAIN},
    {"prof.active", K_ABSENT, sizeof(bool), IX_NONE, S_PLAIN},
    {"prof.dump", K_ABSENT, sizeof(char *), IX_NONE, S_PLAIN},
    {"thread.prof.name", K_ABSENT, sizeof(char *), IX_NONE, S_PLAIN},
    {"arena.%u.retain_grow_limit", K_ABSENT, sizeof(size_t), IX_ARENA, S_PLAIN},
};
#define NNODES (sizeof(nodes) / sizeof(nodes[0]))

/* Whether this build has the node (setup: its name with index 0). */
static bool present[NNODES];

/* ---------------------------------------------------------------------- */
/* Process-wide state, set up once. */

static unsigned home_arena;
static bool home_tcache;
static ssize_t home_arenas_decay, home_arenas_lg, home_arenas_muzzy;
static bool home_background;
static chunk_hooks_t default_hooks;
/* The default extent hooks, a copy of them, and a copy without alloc. */
static extent_hooks_t *default_ext;
static extent_hooks_t ext_copy, ext_no_alloc;
static unsigned extended[MAX_EXTENDS];
static unsigned nextended;

static unsigned
narenas(void) {
	unsigned n;
	size_t len = sizeof(n);
	if (A(mallctl)("arenas.narenas", &n, &len, NULL, 0) != 0) {
		fail("arenas.narenas unreadable", 0, 0);
	}
	return n;
}

static bool
arena_exists(size_t i) {
	return i < ARENAS_MAX && __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE) != NULL;
}

static void
ctl_ok(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
	int err = A(mallctl)(name, oldp, oldlenp, newp, newlen);
	if (err != 0) {
		cur_name = name;
		fail("a well-formed call failed", err, 0);
	}
}

/* ---------------------------------------------------------------------- */
/* Chunk hooks: wrappers that count calls and forward to the defaults. */

static unsigned long hook_calls;

static void *
hook_alloc(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit, unsigned ind) {
	hook_calls++;
	return default_hooks.alloc(chunk, size, alignment, zero, commit, ind);
}

static bool
hook_dalloc(void *chunk, size_t size, bool committed, unsigned ind) {
	hook_calls++;
	return default_hooks.dalloc(chunk, size, committed, ind);
}

static bool
hook_commit(void *chunk, size_t size, size_t offset, size_t length, unsigned ind) {
	hook_calls++;
	return default_hooks.commit(chunk, size, offset, length, ind);
}

static bool
hook_decommit(void *chunk, size_t size, size_t offset, size_t length, unsigned ind) {
	hook_calls++;
	return default_hooks.decommit(chunk, size, offset, length, ind);
}

static bool
hook_purge(void *chunk, size_t size, size_t offset, size_t length, unsigned ind) {
	hook_calls++;
	return default_hooks.purge(chunk, size, offset, length, ind);
}

static bool
hook_split(void *chunk, size_t size, size_t size_a, size_t size_b, bool committed, unsigned ind) {
	hook_calls++;
	return default_hooks.split(chunk, size, size_a, size_b, committed, ind);
}

static bool
hook_merge(void *chunk_a, size_t size_a, void *chunk_b, size_t size_b, bool committed,
           unsigned ind) {
	hook_calls++;
	return default_hooks.merge(chunk_a, size_a, chunk_b, size_b, committed, ind);
}

static const chunk_hooks_t wrapper_hooks = {hook_alloc, hook_dalloc, hook_commit, hook_decommit,
                                            hook_purge, hook_split,  hook_merge};

/* ---------------------------------------------------------------------- */
/* The model of one input. */

typedef struct {
	void *p;
	size_t usize;
	uint8_t fill;
} slot_t;

static slot_t slots[MAX_SLOTS];
static unsigned tcaches[MAX_TCACHES];
static unsigned ntcaches;
/* Ids destroyed in this input (for "just destroyed" uses). */
static unsigned dead_tcache = UINT32_MAX;
static size_t live_bytes;
static size_t base_allocated;
/* A thread cache's own stacks come from an arena and count in
 * stats.allocated: bytes per cache, measured once. */
static size_t tcache_bytes;
static bool tcache_on_at_start;

static bool
thread_tcache_on(void) {
	bool on = false;
	size_t len = sizeof(on);
	return config_tcache && A(mallctl)("thread.tcache.enabled", &on, &len, NULL, 0) == 0 && on;
}

static bool
tcache_live(unsigned id) {
	for (unsigned i = 0; i < ntcaches; i++) {
		if (tcaches[i] == id) {
			return true;
		}
	}
	return false;
}

/* Blocks are filled whole up to FILL_MAX bytes, then at both ends only, so
 * memory a block shares with allocator state (a cache's stacks, a reset
 * arena's reuse) shows. */
#define FILL_MAX (64u << 10)
#define FILL_END 4096u

static void
check_block(const slot_t *s) {
	const uint8_t *b = s->p;
	size_t n = s->usize <= FILL_MAX ? s->usize : FILL_END;
	for (size_t i = 0; i < n; i++) {
		if (b[i] != s->fill || b[s->usize - 1 - i] != s->fill) {
			fail("a live block lost its contents", (long)s->usize, (long)i);
		}
	}
}

static void
fill_block(slot_t *s) {
	size_t n = s->usize <= FILL_MAX ? s->usize : FILL_END;
	memset(s->p, s->fill, n);
	memset((uint8_t *)s->p + s->usize - n, s->fill, n);
}

/* The arena that owns a live block (chunk header or huge extent). */
static unsigned
owner_of(const void *p) {
	if (arena_chunk_registered_checked(p)) {
		return arena_chunk_of(p)->arena->ind;
	}
	extent_t *e = huge_lookup(p);
	if (e == NULL) {
		fprintf(stderr, "block %p\n", p);
		fail("a live block belongs to no arena", 0, 0);
	}
	return e->arena->ind;
}

static void
flush_all_caches(void) {
	for (unsigned i = 0; i < ntcaches; i++) {
		ctl_ok("tcache.flush", NULL, NULL, &tcaches[i], sizeof(unsigned));
	}
	if (config_tcache) {
		ctl_ok("thread.tcache.flush", NULL, NULL, NULL, 0);
	}
}

static size_t
stats_allocated(void) {
	uint64_t e = 1;
	ctl_ok("epoch", NULL, NULL, &e, sizeof(e));
	size_t v, len = sizeof(v);
	ctl_ok("stats.allocated", &v, &len, NULL, 0);
	return v;
}

static void
check_stats(void) {
	if (!config_stats) {
		return;
	}
	flush_all_caches();
	size_t got = stats_allocated();
	size_t want = base_allocated + live_bytes + ntcaches * tcache_bytes;
	bool on = thread_tcache_on();
	want = want + (on ? tcache_bytes : 0) - (tcache_on_at_start ? tcache_bytes : 0);
	FUZZ_TRACE_PRINT("stats.allocated %zu, model %zu + %zu + %u caches\n", got, base_allocated,
	                 live_bytes, ntcaches + on);
	if (got != want) {
		cur_name = "stats.allocated";
		fail("stats.allocated is not the live bytes and caches (got, want)", (long)got,
		     (long)want);
	}
}

/* ---------------------------------------------------------------------- */
/* Set-up. */

static void
setup_once(void) {
	static bool done;
	if (done) {
		return;
	}
	done = true;
	size_t len = sizeof(home_arena);
	ctl_ok("thread.arena", &home_arena, &len, NULL, 0);
	if (config_tcache) {
		len = sizeof(home_tcache);
		ctl_ok("thread.tcache.enabled", &home_tcache, &len, NULL, 0);
	}
	len = sizeof(ssize_t);
	ctl_ok("arenas.decay_time", &home_arenas_decay, &len, NULL, 0);
	ctl_ok("arenas.muzzy_decay_ms", &home_arenas_muzzy, &len, NULL, 0);
	ctl_ok("arenas.lg_dirty_mult", &home_arenas_lg, &len, NULL, 0);
	len = sizeof(bool);
	ctl_ok("background_thread", &home_background, &len, NULL, 0);
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.chunk_hooks", home_arena);
	len = sizeof(default_hooks);
	ctl_ok(name, &default_hooks, &len, NULL, 0);
	snprintf(name, sizeof(name), "arena.%u.extent_hooks", home_arena);
	len = sizeof(default_ext);
	ctl_ok(name, &default_ext, &len, NULL, 0);
	ext_copy = *default_ext;
	ext_no_alloc = ext_copy;
	ext_no_alloc.alloc = NULL;
	if (config_stats && config_tcache) {
		flush_all_caches();
		size_t before = stats_allocated();
		unsigned id;
		len = sizeof(id);
		ctl_ok("tcache.create", &id, &len, NULL, 0);
		tcache_bytes = stats_allocated() - before;
		ctl_ok("tcache.destroy", NULL, NULL, &id, sizeof(id));
		if (stats_allocated() != before) {
			fail("tcache.destroy did not give the cache's bytes back", 0, 0);
		}
	}
	for (size_t i = 0; i < NNODES; i++) {
		snprintf(name, sizeof(name), nodes[i].name, 0u);
		size_t mib[MAX_MIB], miblen = MAX_MIB;
		present[i] =
		    nodes[i].kind != K_ABSENT &&
		    (nodes[i].index == IX_OPT || A(mallctlnametomib)(name, mib, &miblen) == 0);
	}
}

/* ---------------------------------------------------------------------- */
/* One call. */

/* Whether the node named `name` is a statistic: stats.* and
 * thread.allocated, allocatedp, deallocated, deallocatedp. */
static bool
stats_node(const char *name) {
	return strncmp(name, "stats.", 6) == 0 || strncmp(name, "thread.allocated", 16) == 0 ||
	       strncmp(name, "thread.deallocated", 18) == 0;
}

/* Whether the node named `name` is a heap-profiling one: prof.*,
 * thread.prof.*, opt.prof* and opt.lg_prof_*. Without --enable-prof they
 * answer ENOENT, whether or not their names resolve. */
static bool
prof_node(const char *name) {
	return strncmp(name, "prof.", 5) == 0 || strncmp(name, "thread.prof.", 12) == 0 ||
	       strncmp(name, "opt.prof", 8) == 0 || strncmp(name, "opt.lg_prof_", 12) == 0;
}

/* Buffer shapes. */
enum { NEW_NONE, NEW_NULL_LEN, NEW_EXACT, NEW_SHORT, NEW_LONG, NEW_NSHAPES };
enum { OLD_NONE, OLD_LEN_ONLY, OLD_BUF_ONLY, OLD_EXACT, OLD_SHORT, OLD_LONG, OLD_NSHAPES };

typedef struct {
	size_t index;
	bool index_ok;
	/* The arena index names no arena that exists (settings, reset). */
	bool arena_missing;
	size_t size;
} target_t;

static size_t
opt_size(size_t i) {
	switch (opt_table[i].type) {
	case OPT_TYPE_BOOL:
		return sizeof(bool);
	case OPT_TYPE_UNSIGNED:
		return sizeof(unsigned);
	case OPT_TYPE_SSIZE:
		return sizeof(ssize_t);
	case OPT_TYPE_SIZE:
		return sizeof(size_t);
	case OPT_TYPE_ENUM:
	case OPT_TYPE_STRING:
		return sizeof(const char *);
	}
	return 0;
}

/* Picks the index of an indexed node. */
static void
pick_index(const node_t *n, target_t *t) {
	uint8_t sel = take();
	unsigned na = narenas();
	t->index_ok = true;
	t->arena_missing = false;
	size_t limit = 0;
	switch (n->index) {
	case IX_NONE:
		t->index = 0;
		return;
	case IX_ARENA:
	case IX_STATS_ARENA:
		switch (sel % 8) {
		case 0:
			t->index = 0;
			break;
		case 1:
			t->index = home_arena;
			break;
		case 2:
		case 3:
			t->index = nextended > 0 ? extended[take() % nextended] : na;
			break;
		case 4:
			t->index = na;
			break;
		case 5:
			t->index = na + 1 + take() % 4;
			break;
		case 6:
			t->index = (size_t)take64();
			break;
		default:
			t->index = take() % (na + 1);
			break;
		}
		if (n->index == IX_ARENA) {
			/* arena.<i>: i <= narenas, narenas meaning "all". */
			t->index_ok = t->index <= na;
		} else {
			t->index_ok = t->index <= na;
		}
		t->arena_missing = !arena_exists(t->index) || t->index >= na;
		return;
	case IX_BIN:
		limit = SZ_NSMALL;
		break;
	case IX_LRUN:
		limit = SZ_NLARGE;
		break;
	case IX_HCHUNK:
		limit = SZ_NHUGE;
		break;
	case IX_OPT:
		limit = opt_table_len;
		break;
	}
	if (sel % 4 == 0) {
		t->index = limit + take() % 4;
	} else if (sel % 4 == 1) {
		t->index = (size_t)take64();
	} else {
		t->index = take() % limit;
	}
	t->index_ok = t->index < limit;
	if (n->index == IX_OPT && t->index_ok) {
		t->size = opt_size(t->index);
	}
}

static bool
err_in(int err, const int *set, unsigned nset) {
	for (unsigned i = 0; i < nset; i++) {
		if (set[i] == err) {
			return true;
		}
	}
	return false;
}

/* Reads a RW value with an exact buffer; false when it is unreadable
 * (e.g. an arena setting of a missing arena). */
static bool
read_value(const size_t *mib, size_t miblen, void *buf, size_t size) {
	size_t len = size;
	return A(mallctlbymib)(mib, miblen, buf, &len, NULL, 0) == 0 && len == size;
}

/* The values to write: fuzzer bytes, or one of a few meaningful ones. */
static void
make_value(const node_t *n, uint8_t *val, size_t size, char *dss_buf, size_t dss_cap) {
	uint8_t how = take();
	for (size_t i = 0; i < size; i++) {
		val[i] = take();
	}
	switch (n->sem) {
	case S_TCACHE_ENABLED:
	case S_BACKGROUND:
		val[0] &= 1;
		break;
	case S_THREAD_ARENA:
	case S_TCACHE_DESTROY:
	case S_PLAIN: {
		if (n->kind != K_WO_ID && n->sem != S_THREAD_ARENA) {
			break;
		}
		unsigned v;
		memcpy(&v, val, sizeof(v));
		switch (how % 4) {
		case 0:
			v = n->kind == K_WO_ID ? (ntcaches > 0 ? tcaches[v % ntcaches] : v % 4)
			                       : v % (narenas() + 2);
			break;
		case 1:
			v = n->kind == K_WO_ID ? dead_tcache
			                       : (nextended > 0 ? extended[v % nextended] : 0);
			break;
		case 2:
			v = v % 16;
			break;
		default:
			break;
		}
		memcpy(val, &v, sizeof(v));
		break;
	}
	case S_DECAY:
	case S_DECAY_MS:
	case S_LG_DIRTY: {
		ssize_t v;
		memcpy(&v, val, sizeof(v));
		switch (how % 4) {
		case 0:
			v = (ssize_t)(v % 40) - 2;
			break;
		case 1:
			v = -1;
			break;
		case 2:
			v = v % 4 == 0 ? (ssize_t)INT32_MAX + (v & 1) : (ssize_t)64 - (v & 3);
			break;
		default:
			break;
		}
		memcpy(val, &v, sizeof(v));
		break;
	}
	case S_DSS: {
		static const char *const names[] = {"disabled", "primary", "secondary", "",
		                                    "default"};
		const char *s = NULL;
		if (how % 8 < 5) {
			s = names[how % 8];
		} else if (how % 8 < 7) {
			size_t k = 0;
			while (k + 1 < dss_cap && take() != 0) {
				dss_buf[k] = (char)in_data[-1];
				k++;
			}
			dss_buf[k] = '\0';
			s = dss_buf;
		}
		memcpy(val, &s, sizeof(s));
		break;
	}
	case S_HOOKS: {
		chunk_hooks_t h = how % 3 == 0 ? default_hooks : wrapper_hooks;
		if (how % 5 == 4) {
			/* One member NULL: EINVAL. */
			void **m = (void **)&h;
			m[take() % 7] = NULL;
		}
		memcpy(val, &h, sizeof(h));
		break;
	}
	case S_CREATE:
	case S_EXT_HOOKS: {
		extent_hooks_t *const choice[] = {NULL, default_ext, &ext_copy, &ext_no_alloc};
		memcpy(val, &choice[how % 4], sizeof(extent_hooks_t *));
		break;
	}
	default:
		break;
	}
}

/* An extent_hooks_t * written to arena.<i>.extent_hooks or arenas.create
 * that must be refused (EINVAL); NULL is refused by the former only. */
static bool
ext_hooks_bad(const uint8_t *val, bool null_ok) {
	extent_hooks_t *h;
	memcpy(&h, val, sizeof(h));
	return h == NULL ? !null_ok : h->alloc == NULL;
}

/* Whether a written value is one the node accepts (for the EFAULT / EINVAL
 * the manual gives a refused value). Returns the error, 0 if accepted. */
static int
value_error(const node_t *n, const target_t *t, const uint8_t *val) {
	switch (n->sem) {
	case S_DECAY: {
		ssize_t v;
		memcpy(&v, val, sizeof(v));
		return v < -1 || v > (ssize_t)INT32_MAX ? EFAULT : 0;
	}
	case S_DECAY_MS: {
		ssize_t v;
		memcpy(&v, val, sizeof(v));
		return v < -1 || v > (ssize_t)INT32_MAX * 1000 ? EFAULT : 0;
	}
	case S_LG_DIRTY: {
		ssize_t v;
		memcpy(&v, val, sizeof(v));
		return v < -1 || v >= (ssize_t)(sizeof(size_t) << 3) ? EFAULT : 0;
	}
	case S_DSS: {
		const char *s;
		memcpy(&s, val, sizeof(s));
		if (s == NULL) {
			return EINVAL;
		}
		if (strcmp(s, "primary") == 0 || strcmp(s, "secondary") == 0) {
			return EFAULT;
		}
		return strcmp(s, "disabled") == 0 ? 0 : EINVAL;
	}
	case S_EXT_HOOKS:
		return ext_hooks_bad(val, false) ? EINVAL : 0;
	case S_HOOKS: {
		void *m[7];
		memcpy(m, val, sizeof(m));
		for (unsigned i = 0; i < 7; i++) {
			if (m[i] == NULL) {
				return EINVAL;
			}
		}
		return 0;
	}
	case S_THREAD_ARENA: {
		unsigned v;
		memcpy(&v, val, sizeof(v));
		return v >= narenas() || (v >= narenas_auto && !arena_exists(v)) ? EFAULT : 0;
	}
	case S_TCACHE_ENABLED:
		return val[0] && config_fill && fill_slow_paths ? EPERM : 0;
	default:
		(void)t;
		return 0;
	}
}

/* Marks the live blocks of arena ind (before a reset: afterwards their
 * memory is no longer the arena's, so the owner cannot be looked up). */
static void
mark_arena_blocks(unsigned ind, bool *mark) {
	for (unsigned i = 0; i < MAX_SLOTS; i++) {
		mark[i] = slots[i].p != NULL && owner_of(slots[i].p) == ind;
	}
}

/* After a reset: the marked blocks are gone. */
static void
drop_blocks(const bool *mark) {
	for (unsigned i = 0; i < MAX_SLOTS; i++) {
		if (mark[i]) {
			FUZZ_TRACE_PRINT("slot %u (%p) reset away\n", i, slots[i].p);
			live_bytes -= slots[i].usize;
			slots[i].p = NULL;
		}
	}
}

static void
op_call(void) {
	uint8_t nsel = take();
	const node_t *n = &nodes[nsel % NNODES];
	size_t ni = nsel % NNODES;
	target_t t = {.size = n->size};
	pick_index(n, &t);
	if (n->sem == S_INITIALIZED) {
		t.size = narenas() * sizeof(bool);
	}
	if (n->index == IX_OPT && !t.index_ok) {
		t.size = sizeof(size_t);
	}
	uint8_t shapes = take();
	int new_shape = shapes % NEW_NSHAPES;
	int old_shape = (shapes / NEW_NSHAPES) % OLD_NSHAPES;
	bool by_mib = (shapes & 0x80) != 0;
	uint8_t lens = take();
	/* The node's size, or a wrong one. */
	size_t vsize = t.size > 0 ? t.size : 1;
	size_t newlen = 0, oldlen = 0;
	switch (new_shape) {
	case NEW_NULL_LEN:
	case NEW_EXACT:
		newlen = new_shape == NEW_EXACT ? t.size : (size_t)(1 + lens % 16);
		break;
	case NEW_SHORT:
		newlen = t.size > 0 ? (lens % t.size) : 0;
		if (newlen == t.size) {
			newlen = 0;
		}
		break;
	case NEW_LONG:
		newlen = t.size + 1 + lens % 8;
		break;
	}
	switch (old_shape) {
	case OLD_LEN_ONLY:
	case OLD_BUF_ONLY:
	case OLD_EXACT:
		oldlen = t.size;
		break;
	case OLD_SHORT:
		oldlen = t.size > 0 ? (lens / 16) % t.size : 0;
		break;
	case OLD_LONG:
		oldlen = t.size + 1 + (lens / 16) % 8;
		break;
	}
	if (newlen > MAX_VALUE || oldlen > MAX_VALUE + 8) {
		return;
	}

	/* Creations are bounded per process (arenas) and per input. */
	if ((n->sem == S_EXTEND || n->sem == S_CREATE) && nextended >= MAX_EXTENDS) {
		return;
	}
	if (n->sem == S_TCACHE_CREATE && ntcaches >= MAX_TCACHES) {
		return;
	}

	char name[96];
	snprintf(name, sizeof(name), n->name, (unsigned)t.index);
	if (n->index != IX_NONE && t.index > UINT32_MAX) {
		snprintf(name, sizeof(name), "%.*s%zu%s", (int)(strchr(n->name, '%') - n->name),
		         n->name, t.index, strchr(n->name, '%') + 2);
	}
	if (n->index == IX_OPT) {
		if (t.index_ok) {
			snprintf(name, sizeof(name), "opt.%s", opt_table[t.index].name);
		} else {
			snprintf(name, sizeof(name), "opt.no_such_option_%zu", t.index);
		}
	}
	cur_name = name;
	/* The profiling nodes of an --enable-prof build act on the profiler
	 * (test/integration/prof_ctl.c tests them); here they are only
	 * checked to be absent from builds without it. */
	if (config_prof && prof_node(name) && n->index != IX_OPT) {
		return;
	}

	/* The new value: always a full node-sized value first, then the
	 * newlen the shape asks for. */
	uint8_t val[MAX_VALUE + 16];
	char dss_buf[32];
	memset(val, 0, sizeof(val));
	make_value(n, val, vsize < sizeof(val) ? vsize : sizeof(val), dss_buf, sizeof(dss_buf));
	void *newp = NULL;
	if (new_shape >= NEW_EXACT) {
		newp = malloc(newlen > 0 ? newlen : 1);
		memcpy(newp, val, newlen < sizeof(val) ? newlen : sizeof(val));
	}
	size_t written_len = new_shape == NEW_NULL_LEN ? newlen : newp != NULL ? newlen : 0;

	/* The MIB, and the value before (RW nodes). */
	size_t mib[MAX_MIB], miblen = MAX_MIB;
	bool resolved = A(mallctlnametomib)(name, mib, &miblen) == 0;
	bool exists = present[ni] && t.index_ok;
	/* opt.<name> of options this build leaves out (fill, tcache), and
	 * stats of arenas that do not exist yet, are ENOENT; ctl_name checks
	 * them. */
	if ((n->index == IX_OPT || n->index == IX_STATS_ARENA) && exists) {
		exists = resolved;
	}
	/* Without config.stats the statistics answer ENOENT, by name and by
	 * MIB, whether or not their names resolve (doc/alloc.3). */
	bool stats_gone = (!config_stats && stats_node(name)) || (!config_prof && prof_node(name));
	if (stats_gone) {
		exists = false;
	}
	if (resolved != exists && !stats_gone) {
		fail("mallctlnametomib disagrees with the node's existence", resolved, exists);
	}
	if (by_mib && !resolved) {
		free(newp);
		return;
	}
	uint8_t before[sizeof(chunk_hooks_t) + 8];
	bool have_before = false;
	if (exists && n->kind == K_RW && n->sem != S_EPOCH) {
		have_before = read_value(mib, miblen, before, t.size);
	}
	unsigned narenas_before = narenas();

	/* Reset needs every explicit cache flushed first (the manual). */
	bool mark[MAX_SLOTS] = {false};
	if (n->sem == S_RESET) {
		flush_all_caches();
		if (t.index < UINT32_MAX) {
			mark_arena_blocks((unsigned)t.index, mark);
		}
	}

	/* The old-value buffer: exact size, guard bytes after the value in a
	 * longer one. */
	uint8_t *old = NULL;
	size_t olen = oldlen, *oldlenp = NULL;
	if (old_shape != OLD_NONE && old_shape != OLD_LEN_ONLY) {
		old = malloc(oldlen > 0 ? oldlen : 1);
		memset(old, GUARD_BYTE, oldlen > 0 ? oldlen : 1);
	}
	if (old_shape != OLD_NONE && old_shape != OLD_BUF_ONLY) {
		oldlenp = &olen;
	}

	int err = by_mib ? A(mallctlbymib)(mib, miblen, old, oldlenp, newp, written_len)
	                 : A(mallctl)(name, old, oldlenp, newp, written_len);

	FUZZ_TRACE_PRINT("call %s%s new %d/%zu old %d/%zu -> %d\n", name, by_mib ? " (mib)" : "",
	                 new_shape, written_len, old_shape, oldlen, err);

	/* The errors this call must get, from what it got wrong (any one of
	 * them: the manual gives no order), and whether EAGAIN (out of memory)
	 * may replace them. */
	int req[8];
	unsigned nreq = 0;
	bool eagain_ok = false;
	bool reads = old != NULL && oldlenp != NULL;
	bool read_bad = reads && oldlen != t.size;
	bool write_any = newp != NULL || written_len != 0;
	if (!exists) {
		req[nreq++] = ENOENT;
	} else {
		switch (n->kind) {
		case K_RO:
			if (write_any) {
				req[nreq++] = EPERM;
			}
			if (read_bad) {
				req[nreq++] = EINVAL;
			}
			break;
		case K_RW:
			if (newp != NULL && newlen != t.size) {
				req[nreq++] = EINVAL;
			}
			if (read_bad) {
				req[nreq++] = EINVAL;
			}
			if (n->index == IX_ARENA && t.arena_missing && n->sem != S_DSS) {
				req[nreq++] = EFAULT;
			}
			if (newp != NULL && newlen == t.size) {
				int ve = value_error(n, &t, val);
				if (ve != 0) {
					req[nreq++] = ve;
				}
				/* Out of memory setting a cache up or creating an
				 * automatic arena. (A background thread that could
				 * not start is EFAULT, allowed below.) */
				eagain_ok = (n->sem == S_TCACHE_ENABLED && val[0]) ||
				            n->sem == S_THREAD_ARENA;
			}
			break;
		case K_ACTION:
			if (write_any || old != NULL || oldlenp != NULL) {
				req[nreq++] = EPERM;
			}
			if (n->sem == S_RESET && (t.index < narenas_auto || t.arena_missing)) {
				req[nreq++] = EFAULT;
			}
			break;
		case K_WO_ID:
			if (old != NULL || oldlenp != NULL) {
				req[nreq++] = EPERM;
			}
			if (newp == NULL) {
				req[nreq++] = EFAULT;
			} else if (newlen != sizeof(unsigned)) {
				req[nreq++] = EINVAL;
			} else {
				unsigned id;
				memcpy(&id, val, sizeof(id));
				if (!tcache_live(id)) {
					req[nreq++] = EFAULT;
				}
			}
			break;
		case K_CREATE:
			if (n->sem == S_CREATE) {
				/* The new value is the new arena's hooks. */
				if (newp != NULL && (newlen != sizeof(extent_hooks_t *) ||
				                     ext_hooks_bad(val, true))) {
					req[nreq++] = EINVAL;
				}
			} else if (write_any) {
				req[nreq++] = EPERM;
			}
			if (read_bad) {
				req[nreq++] = EINVAL;
			}
			if (n->sem == S_TCACHE_CREATE && !reads) {
				req[nreq++] = EINVAL;
			}
			eagain_ok = nreq == 0;
			break;
		case K_ABSENT:
			break;
		}
	}
	/* stats.arenas.<i> follows the epoch's snapshot, whose arena count
	 * may be older, and per-arena settings have no merged value
	 * (i == narenas): ENOENT. */
	if (n->index == IX_STATS_ARENA && err == ENOENT) {
		goto out;
	}
	if (err == 0 && nreq > 0) {
		fail("a call the manual says fails succeeded (expected error, count)", req[0],
		     nreq);
	}
	if (err != 0 && !err_in(err, req, nreq) && !(err == EAGAIN && eagain_ok) &&
	    !(err == EFAULT && n->sem == S_BACKGROUND && newp != NULL && val[0])) {
		fail("an error the manual does not give for this call (error, expected count)", err,
		     nreq);
	}
	/* Only a wrong *oldlenp: the part of the value that fits is copied. */
	bool only_read_bad = read_bad && nreq == 1 && err == EINVAL;
	if (!exists) {
		goto out;
	}

	/* What the read gave: the value before, whole or the part that fits,
	 * and nothing past the value. */
	if (reads && (err == 0 || only_read_bad)) {
		size_t fit = oldlen < t.size ? oldlen : t.size;
		if (have_before && memcmp(old, before, fit) != 0) {
			fail("the old value read is not the value before the call", 0, 0);
		}
		for (size_t i = t.size; i < oldlen; i++) {
			if (old[i] != GUARD_BYTE) {
				fail("a read wrote past the value", (long)i, (long)t.size);
			}
		}
		if (err == 0 && olen != t.size) {
			fail("*oldlenp is not the value's size after a read", (long)olen,
			     (long)t.size);
		}
	}
	if (old != NULL && oldlenp == NULL) {
		for (size_t i = 0; i < oldlen; i++) {
			if (old[i] != GUARD_BYTE) {
				fail("a read without *oldlenp wrote the buffer", (long)i, 0);
			}
		}
	}

	/* Effects on read-write values. */
	if (n->kind == K_RW && n->sem != S_EPOCH && have_before) {
		uint8_t after[sizeof(chunk_hooks_t) + 8];
		if (!read_value(mib, miblen, after, t.size)) {
			fail("a value readable before the call is not after it", err, 0);
		}
		if (err != 0 && memcmp(after, before, t.size) != 0) {
			fail("a failed write changed the value", err, 0);
		}
		if (err == 0 && newp != NULL) {
			const void *want = val;
			const char *disabled = "disabled";
			if (n->sem == S_DSS) {
				const char *s;
				memcpy(&s, after, sizeof(s));
				if (strcmp(s, disabled) != 0) {
					fail("arena.<i>.dss does not read disabled", 0, 0);
				}
			} else if (memcmp(after, want, t.size) != 0) {
				fail("a successful write does not read back", 0, 0);
			}
		}
		if (n->sem == S_TCACHE_ENABLED && config_tcache) {
			/* A write of true without the fill options leaves a
			 * cache; mallocx through it must work. */
			void *p = A(mallocx)(8, 0);
			if (p == NULL) {
				fail("mallocx failed after thread.tcache.enabled", err, 0);
			}
			A(dallocx)(p, 0);
		}
	}

	/* Creations and destructions. */
	switch (n->sem) {
	case S_EXTEND:
	case S_CREATE: {
		unsigned na = narenas();
		if (err == 0) {
			if (na != narenas_before + 1) {
				fail("arenas.extend did not make exactly one arena", (long)na,
				     (long)narenas_before);
			}
			if (reads) {
				unsigned ind;
				memcpy(&ind, old, sizeof(ind));
				if (ind != narenas_before || !arena_exists(ind)) {
					fail("arenas.extend returned a wrong index", (long)ind,
					     (long)narenas_before);
				}
			}
			extended[nextended++] = narenas_before;
		} else if (na != narenas_before) {
			fail("a failed arenas.extend made an arena", err, (long)na);
		}
		break;
	}
	case S_TCACHE_CREATE:
		if (err == 0) {
			unsigned id;
			memcpy(&id, old, sizeof(id));
			unsigned lowest = 0;
			while (tcache_live(lowest)) {
				lowest++;
			}
			if (id != lowest) {
				fail("tcache.create did not hand out the lowest free id", (long)id,
				     (long)lowest);
			}
			tcaches[ntcaches++] = id;
		}
		break;
	case S_TCACHE_DESTROY:
		if (err == 0) {
			unsigned id;
			memcpy(&id, val, sizeof(id));
			for (unsigned i = 0; i < ntcaches; i++) {
				if (tcaches[i] == id) {
					tcaches[i] = tcaches[--ntcaches];
					break;
				}
			}
			dead_tcache = id;
			if (A(mallctl)("tcache.flush", NULL, NULL, &id, sizeof(id)) != EFAULT) {
				fail("a destroyed cache can still be flushed", (long)id, 0);
			}
			if (A(mallocx)(16, MALLOCX_TCACHE(id)) != NULL) {
				fail("mallocx through a destroyed cache did not fail", (long)id, 0);
			}
		}
		break;
	case S_RESET:
		if (err == 0) {
			drop_blocks(mark);
		}
		break;
	default:
		break;
	}
	if (n->kind != K_CREATE && narenas() != narenas_before) {
		fail("a call that creates nothing changed arenas.narenas", (long)narenas(),
		     (long)narenas_before);
	}
out:
	free(old);
	free(newp);
}

/* ---------------------------------------------------------------------- */
/* Allocations. */

static size_t
pick_size(void) {
	uint8_t c = take();
	uint16_t r = (uint16_t)(take() | take() << 8);
	switch (c % 8) {
	case 0:
	case 1:
	case 2:
		return 1 + r % 512;
	case 3:
	case 4:
		return 1 + r % 16384;
	case 5:
		return 16384 + (size_t)r * 16 % (1u << 20);
	case 6:
		return c < 64 ? (2u << 20) + (size_t)r * 64 % (HUGE_MAX - (2u << 20))
		              : (size_t)(1 + r % 64);
	default:
		return 1 + r % 4096;
	}
}

static void
op_alloc(void) {
	unsigned s = take() % MAX_SLOTS;
	uint8_t how = take();
	size_t size = pick_size();
	if (slots[s].p != NULL) {
		return;
	}
	int flags = 0;
	bool must_fail = false, may_fail = false;
	unsigned na = narenas();
	switch (how % 6) {
	case 0:
		break;
	case 1: {
		unsigned a = how / 8 % 4 == 0   ? home_arena
		             : how / 8 % 4 == 1 ? (nextended > 0 ? extended[take() % nextended] : 0)
		             : how / 8 % 4 == 2 ? na + take() % 3
		                                : take() % na;
		flags = MALLOCX_ARENA(a);
		if (how & 0x80) {
			flags |= MALLOCX_TCACHE_NONE;
		}
		must_fail = a >= na || (a >= narenas_auto && !arena_exists(a));
		/* An automatic arena no thread used yet does not exist: the
		 * manual lets mallocx fail for it. */
		may_fail = a < narenas_auto && !arena_exists(a);
		break;
	}
	case 2:
	case 3:
		if (ntcaches > 0) {
			flags = MALLOCX_TCACHE(tcaches[take() % ntcaches]);
		}
		break;
	case 4:
		if (dead_tcache != UINT32_MAX && !tcache_live(dead_tcache)) {
			flags = MALLOCX_TCACHE(dead_tcache);
			must_fail = true;
		}
		break;
	default:
		flags = MALLOCX_TCACHE_NONE;
		break;
	}
	void *p = A(mallocx)(size, flags);
	if (must_fail) {
		if (p != NULL) {
			fail("mallocx through a missing arena or cache succeeded", flags,
			     (long)size);
		}
		return;
	}
	if (p == NULL && may_fail) {
		return;
	}
	if (p == NULL) {
		fail("mallocx failed", flags, (long)size);
	}
	FUZZ_TRACE_PRINT("alloc slot %u size %zu flags %#x -> %p\n", s, size, flags, p);
	slots[s].p = p;
	slots[s].usize = A(sallocx)(p, 0);
	if (slots[s].usize < size) {
		fail("usable size below the request", (long)slots[s].usize, (long)size);
	}
	slots[s].fill = (uint8_t)(s * 37 + how);
	fill_block(&slots[s]);
	live_bytes += slots[s].usize;
}

static void
op_free(void) {
	unsigned s = take() % MAX_SLOTS;
	uint8_t how = take();
	if (slots[s].p == NULL) {
		return;
	}
	check_block(&slots[s]);
	int flags = 0;
	if (how % 3 == 1 && ntcaches > 0) {
		flags = MALLOCX_TCACHE(tcaches[take() % ntcaches]);
	} else if (how % 3 == 2) {
		flags = MALLOCX_TCACHE_NONE;
	}
	FUZZ_TRACE_PRINT("free slot %u flags %#x\n", s, flags);
	A(dallocx)(slots[s].p, flags);
	live_bytes -= slots[s].usize;
	slots[s].p = NULL;
}

/* ---------------------------------------------------------------------- */
/* End of an input: free, destroy, restore, check. */

static void
restore(void) {
	cur_name = "(restore)";
	for (unsigned i = 0; i < MAX_SLOTS; i++) {
		if (slots[i].p != NULL) {
			check_block(&slots[i]);
			A(dallocx)(slots[i].p, 0);
			slots[i].p = NULL;
		}
	}
	live_bytes = 0;
	while (ntcaches > 0) {
		ctl_ok("tcache.destroy", NULL, NULL, &tcaches[--ntcaches], sizeof(unsigned));
	}
	dead_tcache = UINT32_MAX;
	ctl_ok("thread.arena", NULL, NULL, &home_arena, sizeof(home_arena));
	if (config_tcache && !(config_fill && fill_slow_paths)) {
		ctl_ok("thread.tcache.enabled", NULL, NULL, &home_tcache, sizeof(home_tcache));
	}
	ctl_ok("arenas.decay_time", NULL, NULL, &home_arenas_decay, sizeof(ssize_t));
	ctl_ok("arenas.muzzy_decay_ms", NULL, NULL, &home_arenas_muzzy, sizeof(ssize_t));
	ctl_ok("arenas.lg_dirty_mult", NULL, NULL, &home_arenas_lg, sizeof(ssize_t));
	ctl_ok("background_thread", NULL, NULL, &home_background, sizeof(bool));
	unsigned na = narenas();
	for (unsigned i = 0; i < na; i++) {
		if (!arena_exists(i)) {
			continue;
		}
		char name[64];
		snprintf(name, sizeof(name), "arena.%u.decay_time", i);
		ctl_ok(name, NULL, NULL, &home_arenas_decay, sizeof(ssize_t));
		snprintf(name, sizeof(name), "arena.%u.muzzy_decay_ms", i);
		ctl_ok(name, NULL, NULL, &home_arenas_muzzy, sizeof(ssize_t));
		snprintf(name, sizeof(name), "arena.%u.lg_dirty_mult", i);
		ctl_ok(name, NULL, NULL, &home_arenas_lg, sizeof(ssize_t));
		snprintf(name, sizeof(name), "arena.%u.chunk_hooks", i);
		ctl_ok(name, NULL, NULL, &default_hooks, sizeof(default_hooks));
	}
	/* The allocator still works, in every arena. */
	for (unsigned i = 0; i < na; i++) {
		if (!arena_exists(i)) {
			continue;
		}
		void *p = A(mallocx)(100, MALLOCX_ARENA(i) | MALLOCX_TCACHE_NONE);
		if (p == NULL) {
			fail("mallocx from an existing arena failed", (long)i, 0);
		}
		memset(p, 1, 100);
		A(dallocx)(p, MALLOCX_TCACHE_NONE);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	setup_once();
	in_data = data;
	in_size = size;
	if (config_stats) {
		flush_all_caches();
		base_allocated = stats_allocated();
		tcache_on_at_start = thread_tcache_on();
	}
	for (unsigned op = 0; op < MAX_OPS && in_size > 0; op++) {
		uint8_t code = take();
		switch (code % 8) {
		case 0:
		case 1:
		case 2:
			op_call();
			break;
		case 3:
		case 4:
			op_alloc();
			break;
		case 5:
		case 6:
			op_free();
			break;
		default:
			check_stats();
			break;
		}
	}
	check_stats();
	restore();
	check_stats();
	return 0;
}
