/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Heap profiling (see prof.h): the sampling countdowns, backtraces, the
 * tables of backtraces, threads and sampled objects, the sampled objects'
 * allocation and free, dump scheduling and naming, and the controls behind
 * the prof.* / thread.prof.* mallctls. The file formats are in
 * prof_dump.c.
 */
#include "alloc/internal/prof.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/base.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/message.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/prof_dump.h"
#include "alloc/internal/prof_unwind.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/tsd.h"

#if ALLOC_CONFIG_PROF_BACKTRACE == 1
#include <unwind.h>
#elif ALLOC_CONFIG_PROF_BACKTRACE == 3
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#endif

bool opt_prof = false;
char opt_prof_prefix[PROF_PREFIX_MAX] = "jeprof";
bool opt_prof_active = true;
bool opt_prof_thread_active_init = true;
size_t opt_lg_prof_sample = 19;
bool opt_prof_accum = false;
ssize_t opt_lg_prof_interval = -1;
bool opt_prof_gdump = false;
bool opt_prof_final = false;
bool opt_prof_leak = false;
prof_format_t opt_prof_format = PROF_FORMAT_JEPROF;
const char *const opt_prof_format_names[] = {
    [PROF_FORMAT_JEPROF] = "jeprof",
    [PROF_FORMAT_PPROF] = "pprof",
    NULL,
};

bool prof_enabled;
bool prof_active;
static bool prof_thread_active_init;
static bool prof_gdump_active;
static unsigned prof_lg_sample;
/* Estimated bytes between interval dumps; 0: no interval dumps. */
static uint64_t prof_interval;

/* Protects everything below up to the dump state. Lock order: after every
 * arena and bin lock, before base's lock. */
static mutex_t prof_lock = MUTEX_INITIALIZER;
/* Serialises dumps and their sequence numbers. Lock order: before
 * prof_lock. */
static mutex_t prof_dump_lock = MUTEX_INITIALIZER;

/* ---------------------------------------------------------------------- */
/* Random numbers and the countdown. */

uint64_t
prof_prng_next(uint64_t *state) {
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define PROF_LN2 0.69314718055994530942

double
prof_ln(double x) {
	if (!(x > 0)) {
		return -1e308;
	}
	/* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(z) with
	 * z = (m - 1) / (m + 1), |z| < 0.172: the series converges fast. */
	uint64_t bits;
	memcpy(&bits, &x, sizeof(bits));
	int e = (int)((bits >> 52) & 0x7ff) - 1023;
	bits = (bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
	double m;
	memcpy(&m, &bits, sizeof(m));
	if (m > 1.41421356237309504880) {
		m /= 2;
		e++;
	}
	double z = (m - 1) / (m + 1);
	double z2 = z * z;
	/* 1 + z^2/3 + z^4/5 + ... + z^20/21 by Horner's rule: the terms left
	 * out are below 1e-18 of the sum. Each sample draws a logarithm, so
	 * this is part of a sample's cost. */
	static const double inv_odd[] = {
	    1.0,      1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11,
	    1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21,
	};
	double p = inv_odd[10];
#pragma GCC unroll 16
	for (int i = 9; i >= 0; i--) {
		p = p * z2 + inv_odd[i];
	}
	return 2 * z * p + e * PROF_LN2;
}

double
prof_exp(double x) {
	if (x < -700) {
		return 0;
	}
	if (x > 700) {
		return 1e304;
	}
	/* x = k ln 2 + r, |r| <= ln 2 / 2; exp r by its Taylor series. */
	int k = (int)(x / PROF_LN2 + (x < 0 ? -0.5 : 0.5));
	double r = x - k * PROF_LN2;
	/* e^r to r^14/14! by Horner's rule (the rest is below 1e-18 for
	 * |r| <= ln 2 / 2), then times 2^k, built directly: |k| <= 1010, a
	 * normal double. */
	static const double inv_fact[] = {
	    1.0,
	    1.0,
	    1.0 / 2,
	    1.0 / 6,
	    1.0 / 24,
	    1.0 / 120,
	    1.0 / 720,
	    1.0 / 5040,
	    1.0 / 40320,
	    1.0 / 362880,
	    1.0 / 3628800,
	    1.0 / 39916800,
	    1.0 / 479001600,
	    1.0 / 6227020800.0,
	    1.0 / 87178291200.0,
	};
	double p = inv_fact[14];
#pragma GCC unroll 16
	for (int i = 13; i >= 0; i--) {
		p = p * r + inv_fact[i];
	}
	uint64_t bits = (uint64_t)(k + 1023) << 52;
	double scale;
	memcpy(&scale, &bits, sizeof(scale));
	return p * scale;
}

uint64_t
prof_draw_bytes(uint64_t *state, unsigned lg_sample) {
	/* u uniform in (0, 1]: 53 random bits, plus one. */
	double u = (double)((prof_prng_next(state) >> 11) + 1) * (1.0 / 9007199254740992.0);
	double bytes = -prof_ln(u) * (double)((uint64_t)1 << lg_sample);
	if (bytes < 1) {
		return 1;
	}
	if (bytes > 9e18) {
		return (uint64_t)9e18;
	}
	return (uint64_t)bytes;
}

int64_t
prof_draw_allocs(uint64_t *state, unsigned lg_sample, size_t usize) {
	/* The countdown runs out during allocation ceil(bytes / usize). */
	uint64_t bytes = prof_draw_bytes(state, lg_sample);
	return (int64_t)((bytes + usize - 1) / usize);
}

double
prof_unbias_factor(size_t usize, unsigned lg_sample) {
	double ratio = (double)usize / (double)((uint64_t)1 << lg_sample);
	double p = 1 - prof_exp(-ratio);
	return p > 0 ? 1 / p : 1;
}

unsigned
prof_lg_sample_get(void) {
	return __atomic_load_n(&prof_lg_sample, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------- */
/* Backtraces. */

/* liballoc's own code, whose frames backtraces skip: the executable
 * segment of the object that holds this file (when that object is a
 * shared library; linked statically into a program, its frames stay). */
static uintptr_t prof_self_start;
static uintptr_t prof_self_end;

static int
prof_self_find(struct dl_phdr_info *info, size_t size, void *arg) {
	(void)size, (void)arg;
	uintptr_t here = (uintptr_t)&prof_self_find;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_X) == 0) {
			continue;
		}
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;
		uintptr_t end = start + ph->p_memsz;
		if (here >= start && here < end) {
			/* The main program has an empty name: a static link. */
			if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') {
				prof_self_start = start;
				prof_self_end = end;
			}
			return 1;
		}
	}
	return 0;
}

typedef struct {
	uintptr_t *pcs;
	unsigned n;
	unsigned max;
	/* Still in liballoc's leading frames. */
	bool inside;
} prof_bt_collect_t;

/* Adds return address pc; false when the backtrace is full. */
UNUSED static bool
prof_bt_add(prof_bt_collect_t *c, uintptr_t pc) {
	if (c->inside) {
		if (pc >= prof_self_start && pc < prof_self_end) {
			return true;
		}
		c->inside = false;
	}
	c->pcs[c->n++] = pc;
	return c->n < c->max;
}

#if ALLOC_CONFIG_PROF_BACKTRACE == 1
static _Unwind_Reason_Code
prof_unwind_frame(struct _Unwind_Context *ctx, void *arg) {
	uintptr_t pc = (uintptr_t)_Unwind_GetIP(ctx);
	if (pc == 0) {
		return _URC_END_OF_STACK;
	}
	return prof_bt_add(arg, pc) ? _URC_NO_REASON : _URC_END_OF_STACK;
}
#endif

/* The calling thread's backtrace, liballoc's frames removed; returns its
 * depth. Never allocates. */
NOINLINE static unsigned
prof_backtrace(uintptr_t *pcs, unsigned max) {
	prof_bt_collect_t c = {pcs, 0, max, true};
#if ALLOC_CONFIG_PROF_BACKTRACE == 1
	/* The cached unwinder (prof_unwind.h) for stacks it can follow,
	 * libgcc's for the others. */
	uintptr_t buf[PROF_BT_MAX + 32];
	int n = prof_unwind_backtrace(buf, (unsigned)(sizeof(buf) / sizeof(buf[0])));
	if (n == PROF_UNWIND_FALLBACK) {
		_Unwind_Backtrace(prof_unwind_frame, &c);
	}
	for (int i = 0; i < n; i++) {
		if (!prof_bt_add(&c, buf[i])) {
			break;
		}
	}
#elif ALLOC_CONFIG_PROF_BACKTRACE == 2
	/* Frame pointers: each frame holds the caller's frame pointer, then
	 * the return address. Stop at anything that does not look like a
	 * frame further up the same stack. */
	void **fp = __builtin_frame_address(0);
	while (fp != NULL) {
		uintptr_t pc = (uintptr_t)fp[1];
		if (pc == 0 || !prof_bt_add(&c, pc)) {
			break;
		}
		void **next = fp[0];
		if (next <= fp || (uintptr_t)next - (uintptr_t)fp > ((uintptr_t)1 << 24) ||
		    ((uintptr_t)next & (sizeof(void *) - 1)) != 0) {
			break;
		}
		fp = next;
	}
#elif ALLOC_CONFIG_PROF_BACKTRACE == 3
	void *buf[PROF_BT_MAX + 32];
	int n = unw_backtrace(buf, (int)(sizeof(buf) / sizeof(buf[0])));
	for (int i = 0; i < n; i++) {
		if (!prof_bt_add(&c, (uintptr_t)buf[i])) {
			break;
		}
	}
#endif
	return c.n;
}

/* ---------------------------------------------------------------------- */
/* Memory for the tables: mmap'd, so they can be dropped when they grow. */

static void *
prof_map(size_t size) {
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* ---------------------------------------------------------------------- */
/* Thread records. */

static prof_tdata_t *prof_tdatas;
/* Records of exited threads that never counted a sample, for reuse. */
static prof_tdata_t *prof_tdata_free;
static uint64_t prof_next_uid;

/* The calling thread's record, made on first use; NULL when memory is short
 * or the thread is exiting. */
static prof_tdata_t *
prof_tdata_get(tsd_t *tsd) {
	if (likely(tsd->prof != NULL)) {
		return tsd->prof;
	}
	if (tsd->state != TSD_STATE_NOMINAL) {
		return NULL;
	}
	mutex_lock(&prof_lock);
	prof_tdata_t *td = prof_tdata_free;
	if (td != NULL) {
		prof_tdata_free = td->next;
	}
	mutex_unlock(&prof_lock);
	if (td == NULL) {
		td = base_alloc(sizeof(*td));
		if (td == NULL) {
			return NULL;
		}
	}
	memset(td, 0, sizeof(*td));
	td->active = __atomic_load_n(&prof_thread_active_init, __ATOMIC_RELAXED);
	td->prng = (uint64_t)(uintptr_t)td ^ ((uint64_t)getpid() << 32);
	mutex_lock(&prof_lock);
	td->uid = prof_next_uid++;
	td->prng ^= td->uid * 0x2545f4914f6cdd1dULL;
	td->bytes_left = (int64_t)prof_draw_bytes(&td->prng, prof_lg_sample);
	td->next = prof_tdatas;
	prof_tdatas = td;
	mutex_unlock(&prof_lock);
	tsd->prof = td;
	return td;
}

void
prof_thread_exit(prof_tdata_t *td) {
	if (td == NULL) {
		return;
	}
	mutex_lock(&prof_lock);
	if (td->has_tctx) {
		td->dead = true;
	} else {
		prof_tdata_t **pp = &prof_tdatas;
		while (*pp != NULL && *pp != td) {
			pp = &(*pp)->next;
		}
		if (*pp == td) {
			*pp = td->next;
		}
		td->next = prof_tdata_free;
		prof_tdata_free = td;
	}
	mutex_unlock(&prof_lock);
}

bool
prof_sampling(void) {
	if (!config_prof || !prof_enabled || !__atomic_load_n(&prof_active, __ATOMIC_RELAXED)) {
		return false;
	}
	tsd_t *tsd = tsd_get();
	if (tsd->prof_busy || tsd->state != TSD_STATE_NOMINAL) {
		return false;
	}
	if (tsd->prof == NULL) {
		return __atomic_load_n(&prof_thread_active_init, __ATOMIC_RELAXED);
	}
	return tsd->prof->active;
}

int64_t
prof_bin_gap(uint64_t *prng, size_t usize) {
	if (!prof_sampling()) {
		return 0;
	}
	return prof_draw_allocs(prng, prof_lg_sample_get(), usize);
}

bool
prof_count_bytes(size_t usize) {
	if (!prof_sampling()) {
		return false;
	}
	prof_tdata_t *td = prof_tdata_get(tsd_get());
	if (td == NULL) {
		return false;
	}
	td->bytes_left -= (int64_t)usize;
	if (td->bytes_left > 0) {
		return false;
	}
	td->bytes_left = (int64_t)prof_draw_bytes(&td->prng, prof_lg_sample_get());
	return true;
}

/* ---------------------------------------------------------------------- */
/* Backtrace records (prof_lock). */

static prof_bt_t *prof_bts;
static prof_bt_t **prof_bt_slots;
static size_t prof_bt_nslots;
static size_t prof_bt_count;

static uint64_t
prof_bt_hash(const uintptr_t *pcs, unsigned n) {
	uint64_t h = 0xcbf29ce484222325ULL ^ n;
	for (unsigned i = 0; i < n; i++) {
		h = (h ^ pcs[i]) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

/* Doubles the slot array; false when memory is short (the chains just
 * grow longer then). */
static bool
prof_bt_grow(void) {
	size_t nslots = prof_bt_nslots == 0 ? 1024 : prof_bt_nslots * 2;
	prof_bt_t **slots = prof_map(nslots * sizeof(*slots));
	if (slots == NULL) {
		return false;
	}
	for (prof_bt_t *bt = prof_bts; bt != NULL; bt = bt->next) {
		size_t s = bt->hash & (nslots - 1);
		bt->chain = slots[s];
		slots[s] = bt;
	}
	if (prof_bt_slots != NULL) {
		munmap(prof_bt_slots, prof_bt_nslots * sizeof(*slots));
	}
	prof_bt_slots = slots;
	prof_bt_nslots = nslots;
	return true;
}

/* The record of backtrace pcs[0..n), made if new; NULL when memory is
 * short. Drops prof_lock around base_alloc. */
static prof_bt_t *
prof_bt_intern(const uintptr_t *pcs, unsigned n) {
	uint64_t h = prof_bt_hash(pcs, n);
	if (prof_bt_nslots == 0 && !prof_bt_grow()) {
		return NULL;
	}
	for (prof_bt_t *bt = prof_bt_slots[h & (prof_bt_nslots - 1)]; bt != NULL; bt = bt->chain) {
		if (bt->hash == h && bt->nframes == n &&
		    memcmp(bt->pcs, pcs, n * sizeof(uintptr_t)) == 0) {
			return bt;
		}
	}
	prof_bt_t *bt = base_alloc(sizeof(prof_bt_t) + n * sizeof(uintptr_t));
	if (bt == NULL) {
		return NULL;
	}
	bt->hash = h;
	bt->nframes = n;
	memcpy(bt->pcs, pcs, n * sizeof(uintptr_t));
	if (prof_bt_count >= prof_bt_nslots) {
		prof_bt_grow();
	}
	size_t s = h & (prof_bt_nslots - 1);
	bt->chain = prof_bt_slots[s];
	prof_bt_slots[s] = bt;
	bt->next = prof_bts;
	prof_bts = bt;
	prof_bt_count++;
	return bt;
}

/* The counts of bt for thread td, made if new; NULL when memory is short. */
static prof_tctx_t *
prof_tctx_get(prof_bt_t *bt, prof_tdata_t *td) {
	/* The shorter list: few threads per backtrace in most programs, few
	 * backtraces per thread in programs of many short threads. */
	if (td->ntctx < bt->ntctx) {
		for (prof_tctx_t *t = td->tctxs; t != NULL; t = t->tdata_next) {
			if (t->bt == bt) {
				return t;
			}
		}
	} else {
		for (prof_tctx_t *t = bt->tctxs; t != NULL; t = t->next) {
			if (t->tdata == td) {
				return t;
			}
		}
	}
	prof_tctx_t *t = base_alloc(sizeof(*t));
	if (t == NULL) {
		return NULL;
	}
	t->bt = bt;
	t->tdata = td;
	t->next = bt->tctxs;
	bt->tctxs = t;
	bt->ntctx++;
	t->tdata_next = td->tctxs;
	td->tctxs = t;
	td->ntctx++;
	td->has_tctx = true;
	return t;
}

/* ---------------------------------------------------------------------- */
/* The table of sampled objects (prof_lock): open addressing by address,
 * linear probing, at most half full. */

typedef struct {
	/* 0: empty slot. */
	uintptr_t ptr;
	/* NULL once prof.reset detached the object from the counts. */
	prof_tctx_t *tctx;
	/* Usable size the program sees. */
	size_t usize;
	/* Class the program sees, and the class actually allocated. */
	uint32_t ind;
	uint32_t real_ind;
	/* Arena the object came from (arena.<i>.reset). */
	arena_t *arena;
	/* The unbiasing factor its counts were added with (taken off again
	 * with the same one). */
	double factor;
} prof_sample_t;

static prof_sample_t *prof_samples;
static size_t prof_samples_cap;
static size_t prof_samples_len;
/* Live sampled huge objects: huge frees look in the table only while this
 * is non-zero (atomic). */
static size_t prof_nhuge;

static size_t
prof_sample_slot(uintptr_t ptr, size_t cap) {
	return (size_t)(((ptr >> 4) * 0x9e3779b97f4a7c15ULL) >> 20) & (cap - 1);
}

static prof_sample_t *
prof_sample_find(const void *ptr) {
	if (prof_samples_cap == 0) {
		return NULL;
	}
	size_t mask = prof_samples_cap - 1;
	for (size_t i = prof_sample_slot((uintptr_t)ptr, prof_samples_cap);; i = (i + 1) & mask) {
		prof_sample_t *s = &prof_samples[i];
		if (s->ptr == (uintptr_t)ptr) {
			return s;
		}
		if (s->ptr == 0) {
			return NULL;
		}
	}
}

static void
prof_sample_put(prof_sample_t *table, size_t cap, const prof_sample_t *s) {
	size_t i = prof_sample_slot(s->ptr, cap);
	while (table[i].ptr != 0) {
		i = (i + 1) & (cap - 1);
	}
	table[i] = *s;
}

static bool
prof_sample_insert(const prof_sample_t *s) {
	if ((prof_samples_len + 1) * 2 > prof_samples_cap) {
		size_t cap = prof_samples_cap == 0 ? 1024 : prof_samples_cap * 2;
		prof_sample_t *table = prof_map(cap * sizeof(*table));
		if (table == NULL) {
			return false;
		}
		for (size_t i = 0; i < prof_samples_cap; i++) {
			if (prof_samples[i].ptr != 0) {
				prof_sample_put(table, cap, &prof_samples[i]);
			}
		}
		if (prof_samples != NULL) {
			munmap(prof_samples, prof_samples_cap * sizeof(*table));
		}
		prof_samples = table;
		prof_samples_cap = cap;
	}
	prof_sample_put(prof_samples, prof_samples_cap, s);
	prof_samples_len++;
	return true;
}

/* Removes the entry s points at, shifting later entries of its run back
 * (no tombstones). */
static void
prof_sample_remove(prof_sample_t *s) {
	size_t mask = prof_samples_cap - 1;
	size_t i = (size_t)(s - prof_samples);
	size_t j = i;
	for (;;) {
		prof_samples[i].ptr = 0;
		for (;;) {
			j = (j + 1) & mask;
			if (prof_samples[j].ptr == 0) {
				prof_samples_len--;
				return;
			}
			size_t k = prof_sample_slot(prof_samples[j].ptr, prof_samples_cap);
			/* Entry j may move to i unless its home k lies
			 * cyclically in (i, j]. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
				continue;
			}
			break;
		}
		prof_samples[i] = prof_samples[j];
		i = j;
	}
}

/* ---------------------------------------------------------------------- */
/* Counting. */

/* Estimated bytes allocated since the last interval dump. */
static double prof_interval_accum;
/* Dumps that are due: run by prof_dump_pending_run outside every lock. */
bool prof_dump_pending;
static unsigned prof_pending_interval;
static unsigned prof_pending_gdump;

static void
prof_cnt_add(prof_tctx_t *t, size_t usize, double factor) {
	t->cnt.curobjs++;
	t->cnt.curbytes += usize;
	t->est.curobjs += factor;
	t->est.curbytes += factor * (double)usize;
	if (opt_prof_accum) {
		t->cnt.accumobjs++;
		t->cnt.accumbytes += usize;
		t->est.accumobjs += factor;
		t->est.accumbytes += factor * (double)usize;
	}
	t->tdata->cnt.curobjs++;
	t->tdata->cnt.curbytes += usize;
	if (opt_prof_accum) {
		t->tdata->cnt.accumobjs++;
		t->tdata->cnt.accumbytes += usize;
	}
}

static void
prof_cnt_sub(prof_tctx_t *t, size_t usize, double factor) {
	t->cnt.curobjs--;
	t->cnt.curbytes -= usize;
	t->est.curobjs -= factor;
	t->est.curbytes -= factor * (double)usize;
	if (t->est.curobjs < 0.5) {
		/* No rounding residue once the last object is gone. */
		t->est.curobjs = t->cnt.curobjs == 0 ? 0 : t->est.curobjs;
		t->est.curbytes = t->cnt.curobjs == 0 ? 0 : t->est.curbytes;
	}
	t->tdata->cnt.curobjs--;
	t->tdata->cnt.curbytes -= usize;
}

/* Records sampled object ptr; false when memory is short. */
static bool
prof_record(tsd_t *tsd, arena_t *arena, void *ptr, size_t usize, szind_t ind, szind_t real_ind) {
	prof_tdata_t *td = prof_tdata_get(tsd);
	if (td == NULL) {
		return false;
	}
	uintptr_t pcs[PROF_BT_MAX] = {0};
	tsd->prof_busy = true;
	unsigned n = prof_backtrace(pcs, PROF_BT_MAX);
	mutex_lock(&prof_lock);
	prof_bt_t *bt = prof_bt_intern(pcs, n);
	prof_tctx_t *t = bt == NULL ? NULL : prof_tctx_get(bt, td);
	double factor = prof_unbias_factor(usize, prof_lg_sample);
	prof_sample_t s = {(uintptr_t)ptr, t, usize, ind, real_ind, arena, factor};
	bool ok = t != NULL && prof_sample_insert(&s);
	if (ok) {
		prof_cnt_add(t, usize, factor);
		if (real_ind >= SZ_NPAGED) {
			__atomic_fetch_add(&prof_nhuge, 1, __ATOMIC_RELAXED);
		}
		if (prof_interval != 0) {
			prof_interval_accum += factor * (double)usize;
			if (prof_interval_accum >= (double)prof_interval) {
				prof_interval_accum = 0;
				prof_pending_interval++;
				__atomic_store_n(&prof_dump_pending, true, __ATOMIC_RELAXED);
			}
		}
	}
	mutex_unlock(&prof_lock);
	tsd->prof_busy = false;
	return ok;
}

void *
prof_alloc_sampled(arena_t *arena, szind_t ind, size_t alignment, bool zero) {
	size_t usize = sz_index2size(ind);
	szind_t real = ind < SZ_NSMALL ? SZ_NSMALL : ind;
	void *ret;
	if (real < SZ_NPAGED) {
		ret = arena_malloc_large(arena, real, alignment > PAGE ? alignment : PAGE, zero);
	} else {
		ret = huge_malloc(arena, usize, alignment, zero);
	}
	if (ret == NULL) {
		return NULL;
	}
	/* A run that was cached and flushed before may still hold the thread
	 * caches' key (tcache.h, "Bad frees"). */
	*tcache_key_slot(ret) = 0;
	if (!prof_record(tsd_get(), arena, ret, usize, ind, real)) {
		/* Unrecorded: an ordinary object of the class it got. */
		return ret;
	}
	if (real < SZ_NPAGED) {
		arena_pclass_set(arena_chunk_of(ret), arena_pageind(ret), PCLASS_SAMPLED);
	}
	return ret;
}

bool
prof_paged_is_sampled(const void *ptr) {
	return arena_ptr_pclass(ptr) == PCLASS_SAMPLED;
}

bool
prof_huge_is_sampled(const void *ptr) {
	if (__atomic_load_n(&prof_nhuge, __ATOMIC_RELAXED) == 0) {
		return false;
	}
	mutex_lock(&prof_lock);
	bool found = prof_sample_find(ptr) != NULL;
	mutex_unlock(&prof_lock);
	return found;
}

bool
prof_is_sampled(const void *ptr) {
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		return prof_huge_is_sampled(ptr);
	}
	return prof_paged_is_sampled(ptr);
}

COLD NOINLINE static void
prof_report_unknown(const void *ptr) {
	msg_fatal("free(): invalid pointer %p (a page marked as a sampled object that heap "
	          "profiling does not know)",
	          ptr);
}

size_t
prof_sampled_usize(const void *ptr, szind_t *ind) {
	mutex_lock(&prof_lock);
	prof_sample_t *s = prof_sample_find(ptr);
	if (s == NULL) {
		mutex_unlock(&prof_lock);
		prof_report_unknown(ptr);
	}
	size_t usize = s->usize;
	*ind = s->ind;
	mutex_unlock(&prof_lock);
	return usize;
}

unsigned
prof_sampled_pclass(const void *ptr) {
	mutex_lock(&prof_lock);
	prof_sample_t *s = prof_sample_find(ptr);
	unsigned pclass = s == NULL ? PCLASS_NONE : s->real_ind + 1;
	mutex_unlock(&prof_lock);
	return pclass;
}

/* Takes ptr's entry out of the table and the counts; returns it. */
static bool
prof_forget(const void *ptr, prof_sample_t *out) {
	mutex_lock(&prof_lock);
	prof_sample_t *s = prof_sample_find(ptr);
	if (s == NULL) {
		mutex_unlock(&prof_lock);
		return false;
	}
	*out = *s;
	if (s->tctx != NULL) {
		prof_cnt_sub(s->tctx, s->usize, s->factor);
	}
	if (s->real_ind >= SZ_NPAGED) {
		__atomic_fetch_sub(&prof_nhuge, 1, __ATOMIC_RELAXED);
	}
	prof_sample_remove(s);
	mutex_unlock(&prof_lock);
	return true;
}

size_t
prof_dalloc_sampled(void *ptr) {
	prof_sample_t s;
	if (!prof_forget(ptr, &s)) {
		prof_report_unknown(ptr);
	}
	arena_pclass_set(arena_chunk_of(ptr), arena_pageind(ptr), s.real_ind + 1);
	arena_dalloc_large(ptr, s.real_ind);
	return s.usize;
}

void
prof_forget_huge(void *ptr) {
	if (__atomic_load_n(&prof_nhuge, __ATOMIC_RELAXED) == 0) {
		return;
	}
	prof_sample_t s;
	prof_forget(ptr, &s);
}

void
prof_huge_resized(void *old, void *new_ptr, size_t usize) {
	mutex_lock(&prof_lock);
	prof_sample_t *s = prof_sample_find(old);
	if (s != NULL) {
		prof_sample_t moved = *s;
		if (moved.tctx != NULL) {
			prof_cnt_sub(moved.tctx, moved.usize, moved.factor);
		}
		prof_sample_remove(s);
		moved.ptr = (uintptr_t)new_ptr;
		moved.usize = usize;
		moved.ind = moved.real_ind = sz_size2index(usize);
		moved.factor = prof_unbias_factor(usize, prof_lg_sample);
		if (prof_sample_insert(&moved)) {
			if (moved.tctx != NULL) {
				prof_cnt_add(moved.tctx, usize, moved.factor);
			}
		} else {
			/* No room to keep it: the object is no longer sampled. */
			__atomic_fetch_sub(&prof_nhuge, 1, __ATOMIC_RELAXED);
		}
	}
	mutex_unlock(&prof_lock);
}

void
prof_arena_reset(arena_t *arena) {
	if (!config_prof || !prof_enabled) {
		return;
	}
	mutex_lock(&prof_lock);
	for (size_t i = 0; i < prof_samples_cap;) {
		prof_sample_t *s = &prof_samples[i];
		if (s->ptr == 0 || s->arena != arena) {
			i++;
			continue;
		}
		if (s->tctx != NULL) {
			prof_cnt_sub(s->tctx, s->usize, s->factor);
		}
		if (s->real_ind >= SZ_NPAGED) {
			__atomic_fetch_sub(&prof_nhuge, 1, __ATOMIC_RELAXED);
		} else {
			/* The page map is cleared by the reset itself; leave
			 * no mark behind either way. */
			arena_pclass_set(arena_chunk_of((void *)s->ptr),
			                 arena_pageind((void *)s->ptr), s->real_ind + 1);
		}
		/* The entry moved into slot i is looked at next. */
		prof_sample_remove(s);
	}
	mutex_unlock(&prof_lock);
}

/* ---------------------------------------------------------------------- */
/* Dumps. */

static uint64_t prof_dump_seq;
static uint64_t prof_dump_iseq;
static uint64_t prof_dump_mseq;
static uint64_t prof_dump_useq;
static size_t prof_mapped;
static size_t prof_mapped_max;

/* "<prefix>.<pid>.<seq>.<kind><vseq>.heap" ('f': no vseq). Under
 * prof_dump_lock. */
static void
prof_dump_filename(char *buf, size_t size, char kind, uint64_t vseq) {
	if (kind == 'f') {
		msg_format(buf, size, "%s.%d.%llu.f.heap", opt_prof_prefix, (int)getpid(),
		           (unsigned long long)prof_dump_seq);
	} else {
		msg_format(buf, size, "%s.%d.%llu.%c%llu.heap", opt_prof_prefix, (int)getpid(),
		           (unsigned long long)prof_dump_seq, kind, (unsigned long long)vseq);
	}
	prof_dump_seq++;
}

typedef struct {
	uint64_t objs;
	uint64_t bytes;
	unsigned contexts;
} prof_leak_t;

/* Writes the profile to path. Under prof_dump_lock. Returns true on
 * failure; *leak (when not NULL) gets the estimated live totals. */
static bool
prof_dump_write(const char *path, prof_leak_t *leak) {
	tsd_t *tsd = tsd_get();
	bool busy = tsd->prof_busy;
	/* Nothing this thread allocates meanwhile is sampled. */
	tsd->prof_busy = true;
	prof_buf_t maps = {0};
	prof_buf_t out = {0};
	bool failed = prof_buf_read_file(&maps, "/proc/self/maps");
	mutex_lock(&prof_lock);
	prof_dump_src_t src = {prof_bts,       prof_tdatas, prof_lg_sample,
	                       opt_prof_accum, maps.p,      maps.len};
	if (opt_prof_format == PROF_FORMAT_PPROF) {
		prof_dump_pprof(&out, &src);
	} else {
		prof_dump_heap_v2(&out, &src);
	}
	if (leak != NULL) {
		double objs = 0, bytes = 0;
		leak->contexts = 0;
		for (prof_bt_t *bt = prof_bts; bt != NULL; bt = bt->next) {
			bool live = false;
			for (prof_tctx_t *t = bt->tctxs; t != NULL; t = t->next) {
				objs += t->est.curobjs;
				bytes += t->est.curbytes;
				live = live || t->cnt.curobjs != 0;
			}
			leak->contexts += live;
		}
		leak->objs = (uint64_t)(objs + 0.5);
		leak->bytes = (uint64_t)(bytes + 0.5);
	}
	mutex_unlock(&prof_lock);
	failed = failed || out.failed || prof_buf_write_file(&out, path);
	prof_buf_free(&maps);
	prof_buf_free(&out);
	tsd->prof_busy = busy;
	return failed;
}

/* An automatic dump of kind 'i', 'u' or 'f'; none when prof_prefix is
 * empty. */
static void
prof_dump_auto(char kind, prof_leak_t *leak, char *name, size_t name_size) {
	if (opt_prof_prefix[0] == '\0') {
		return;
	}
	char path[PROF_PREFIX_MAX + 96];
	mutex_lock(&prof_dump_lock);
	uint64_t vseq = 0;
	if (kind == 'i') {
		vseq = prof_dump_iseq++;
	} else if (kind == 'u') {
		vseq = prof_dump_useq++;
	}
	prof_dump_filename(path, sizeof(path), kind, vseq);
	if (prof_dump_write(path, leak)) {
		msg_warn("heap profile: cannot write %s", path);
		path[0] = '\0';
	}
	mutex_unlock(&prof_dump_lock);
	if (name != NULL) {
		msg_format(name, name_size, "%s", path);
	}
}

bool
prof_mdump(const char *filename) {
	if (!config_prof || !prof_enabled) {
		return true;
	}
	char path[PROF_PREFIX_MAX + 96];
	mutex_lock(&prof_dump_lock);
	if (filename == NULL) {
		if (opt_prof_prefix[0] == '\0') {
			mutex_unlock(&prof_dump_lock);
			return true;
		}
		prof_dump_filename(path, sizeof(path), 'm', prof_dump_mseq++);
		filename = path;
	}
	bool failed = prof_dump_write(filename, NULL);
	mutex_unlock(&prof_dump_lock);
	return failed;
}

void
prof_dump_pending_run(void) {
	if (tsd_get()->prof_busy) {
		return;
	}
	__atomic_store_n(&prof_dump_pending, false, __ATOMIC_RELAXED);
	mutex_lock(&prof_lock);
	unsigned ni = prof_pending_interval;
	unsigned nu = prof_pending_gdump;
	prof_pending_interval = 0;
	prof_pending_gdump = 0;
	mutex_unlock(&prof_lock);
	for (unsigned i = 0; i < ni; i++) {
		prof_dump_auto('i', NULL, NULL, 0);
	}
	for (unsigned i = 0; i < nu; i++) {
		prof_dump_auto('u', NULL, NULL, 0);
	}
}

void
prof_gdump_mapped(size_t bytes, bool mapped) {
	if (!config_prof || !prof_enabled) {
		return;
	}
	mutex_lock(&prof_lock);
	if (!mapped) {
		prof_mapped -= bytes;
	} else {
		prof_mapped += bytes;
		if (prof_mapped > prof_mapped_max) {
			prof_mapped_max = prof_mapped;
			if (__atomic_load_n(&prof_gdump_active, __ATOMIC_RELAXED)) {
				prof_pending_gdump++;
				__atomic_store_n(&prof_dump_pending, true, __ATOMIC_RELAXED);
			}
		}
	}
	mutex_unlock(&prof_lock);
}

/* At exit: the final dump (prof_final or prof_leak) and the leak line. */
static void
prof_final_atexit(void) {
	prof_leak_t leak = {0, 0, 0};
	char name[PROF_PREFIX_MAX + 96];
	name[0] = '\0';
	prof_dump_auto('f', &leak, name, sizeof(name));
	if (opt_prof_leak && leak.objs != 0) {
		msg_printf(
		    "<liballoc>: leak summary: ~%llu bytes in ~%llu objects from %u allocation "
		    "site%s (estimated from samples); heap profile: %s\n",
		    (unsigned long long)leak.bytes, (unsigned long long)leak.objs, leak.contexts,
		    leak.contexts == 1 ? "" : "s",
		    name[0] != '\0' ? name : "none written (prof_prefix is empty)");
	}
}

/* ---------------------------------------------------------------------- */
/* Start-up. */

void
prof_boot(void) {
	if (!config_prof || !opt_prof) {
		return;
	}
	if (fill_slow_paths) {
		msg_warn("heap profiling is off: it does not work together with the fill options "
		         "(junk, zero, redzone, quarantine)");
		return;
	}
	prof_lg_sample = (unsigned)opt_lg_prof_sample;
	prof_active = opt_prof_active;
	prof_thread_active_init = opt_prof_thread_active_init;
	prof_gdump_active = opt_prof_gdump;
	prof_interval = opt_lg_prof_interval < 0 ? 0 : (uint64_t)1 << opt_lg_prof_interval;
	dl_iterate_phdr(prof_self_find, NULL);
	if (config_prof_backtrace == 1 && !prof_unwind_boot()) {
		msg_warn("heap profiling: no memory for the unwinder's cache; backtraces "
		         "take libgcc's unwinder every time");
	}
	prof_enabled = true;
}

void
prof_boot_late(void) {
	if (!config_prof || !prof_enabled) {
		return;
	}
	/* The unwinder's first run sets itself up (libunwind allocates then;
	 * the cached unwinder decodes the rules of the frames below here):
	 * do it now, with sampling off for this thread, rather than inside
	 * the first sampled allocation. A later fallback to libgcc's
	 * unwinder runs with sampling off too. */
	tsd_t *tsd = tsd_get();
	uintptr_t pcs[4] = {0};
	bool busy = tsd->prof_busy;
	tsd->prof_busy = true;
	prof_backtrace(pcs, 4);
	tsd->prof_busy = busy;
	if (opt_prof_final || opt_prof_leak) {
		atexit(prof_final_atexit);
	}
}

/* ---------------------------------------------------------------------- */
/* Controls. */

void
prof_reset(unsigned lg_sample) {
	mutex_lock(&prof_dump_lock);
	mutex_lock(&prof_lock);
	for (prof_bt_t *bt = prof_bts; bt != NULL; bt = bt->next) {
		for (prof_tctx_t *t = bt->tctxs; t != NULL; t = t->next) {
			memset(&t->cnt, 0, sizeof(t->cnt));
			memset(&t->est, 0, sizeof(t->est));
		}
	}
	for (prof_tdata_t *td = prof_tdatas; td != NULL; td = td->next) {
		memset(&td->cnt, 0, sizeof(td->cnt));
	}
	for (size_t i = 0; i < prof_samples_cap; i++) {
		prof_samples[i].tctx = NULL;
	}
	prof_interval_accum = 0;
	__atomic_store_n(&prof_lg_sample, lg_sample, __ATOMIC_RELAXED);
	mutex_unlock(&prof_lock);
	mutex_unlock(&prof_dump_lock);
}

bool
prof_active_get(void) {
	return __atomic_load_n(&prof_active, __ATOMIC_RELAXED);
}

void
prof_active_set(bool active) {
	__atomic_store_n(&prof_active, active, __ATOMIC_RELAXED);
}

bool
prof_thread_active_init_get(void) {
	return __atomic_load_n(&prof_thread_active_init, __ATOMIC_RELAXED);
}

void
prof_thread_active_init_set(bool active) {
	__atomic_store_n(&prof_thread_active_init, active, __ATOMIC_RELAXED);
}

bool
prof_gdump_get(void) {
	return __atomic_load_n(&prof_gdump_active, __ATOMIC_RELAXED);
}

void
prof_gdump_set(bool active) {
	__atomic_store_n(&prof_gdump_active, active, __ATOMIC_RELAXED);
}

uint64_t
prof_interval_get(void) {
	return prof_interval;
}

const char *
prof_thread_name_get(void) {
	prof_tdata_t *td = prof_enabled ? prof_tdata_get(tsd_get()) : NULL;
	return td == NULL ? "" : td->name;
}

bool
prof_thread_name_set(const char *name) {
	prof_tdata_t *td = prof_enabled ? prof_tdata_get(tsd_get()) : NULL;
	if (td == NULL) {
		return true;
	}
	mutex_lock(&prof_lock);
	msg_format(td->name, sizeof(td->name), "%s", name);
	mutex_unlock(&prof_lock);
	return false;
}

bool
prof_thread_active_get(void) {
	prof_tdata_t *td = prof_enabled ? prof_tdata_get(tsd_get()) : NULL;
	return td == NULL ? opt_prof_thread_active_init : td->active;
}

bool
prof_thread_active_set(bool active) {
	prof_tdata_t *td = prof_enabled ? prof_tdata_get(tsd_get()) : NULL;
	if (td == NULL) {
		return true;
	}
	td->active = active;
	return false;
}

void
prof_prefork(void) {
	if (config_prof && prof_enabled) {
		mutex_prefork(&prof_dump_lock);
		mutex_prefork(&prof_lock);
		prof_unwind_prefork();
	}
}

void
prof_postfork_parent(void) {
	if (config_prof && prof_enabled) {
		prof_unwind_postfork_parent();
		mutex_postfork_parent(&prof_lock);
		mutex_postfork_parent(&prof_dump_lock);
	}
}

void
prof_postfork_child(void) {
	if (config_prof && prof_enabled) {
		prof_unwind_postfork_child();
		mutex_postfork_child(&prof_lock);
		mutex_postfork_child(&prof_dump_lock);
		/* The child's dumps carry its pid and count from 0 again. */
		prof_dump_seq = 0;
		prof_dump_iseq = 0;
		prof_dump_mseq = 0;
		prof_dump_useq = 0;
		prof_interval_accum = 0;
	}
}
