/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * glibc's malloc extensions: mallinfo, mallinfo2, malloc_stats,
 * malloc_trim, malloc_info and mallopt, answered from liballoc's own
 * statistics (read through the mallctl tree after an epoch refresh).
 *
 * glibc's fields mapped onto liballoc (all memory comes from mmap; "huge"
 * allocations, one chunk or more, play the part of glibc's mmapped chunks):
 *   hblks     live huge allocations          hblkhd   their bytes
 *   arena     stats.mapped - hblkhd          uordblks stats.allocated - hblkhd
 *   fordblks  arena - uordblks               keepcost dirty bytes (what
 *                                                     malloc_trim can purge)
 *   ordblks   free regions in the small runs in use
 *   smblks, fsmblks, usmblks: 0 (no fastbins; usmblks is always 0 in glibc)
 * mallinfo's int fields are clamped to INT_MAX.
 *
 * malloc_trim(pad) flushes the calling thread's cache, then purges every
 * dirty page of every arena (pad is ignored: nothing is kept); it returns 1
 * when memory was given back to the kernel. mallopt accepts glibc's
 * parameters (M_MXFAST, M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD,
 * M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST, M_ARENA_MAX) and
 * ignores them, returning 1: they tune glibc's heap, which liballoc does
 * not have; MALLOC_CONF tunes liballoc. Unknown parameters return 0.
 * malloc_info writes glibc's XML shape (options must be 0, else EINVAL);
 * glibc's "max" figures are not tracked and are left out.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/export.h"
#include "alloc/internal/message.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/tsd.h"

/* Figures of one arena (i < narenas) or of all (i == narenas). */
typedef struct {
	size_t mapped;
	size_t allocated;
	size_t huge_allocated;
	size_t huge_count;
	size_t dirty;
	size_t free_regs;
	size_t free_bytes;
} ext_figures_t;

static bool
ext_read(const char *name, void *out, size_t len) {
	size_t l = len;
	return ctl_byname(name, out, &l, NULL, 0) == 0;
}

/* Reads stats.arenas.<i>.<suffix> (a size_t or uint64_t); 0 if missing. */
static uint64_t
ext_arena_value(unsigned i, const char *suffix, size_t len) {
	char name[96];
	msg_format(name, sizeof(name), "stats.arenas.%u.%s", i, suffix);
	uint64_t v64 = 0;
	size_t vsz = 0;
	if (len == sizeof(size_t)) {
		return ext_read(name, &vsz, len) ? vsz : 0;
	}
	return ext_read(name, &v64, len) ? v64 : 0;
}

/* Fills *f from the current snapshot; false when arena i has no stats. */
static bool
ext_figures(unsigned i, ext_figures_t *f) {
	unsigned nthreads;
	char name[96];
	msg_format(name, sizeof(name), "stats.arenas.%u.nthreads", i);
	if (!ext_read(name, &nthreads, sizeof(nthreads))) {
		return false;
	}
	size_t page = 0;
	unsigned nbins = 0, nhchunks = 0;
	ext_read("arenas.page", &page, sizeof(page));
	ext_read("arenas.nbins", &nbins, sizeof(nbins));
	ext_read("arenas.nhchunks", &nhchunks, sizeof(nhchunks));
	f->mapped = ext_arena_value(i, "mapped", sizeof(size_t));
	f->huge_allocated = ext_arena_value(i, "huge.allocated", sizeof(size_t));
	f->allocated = ext_arena_value(i, "small.allocated", sizeof(size_t)) +
	               ext_arena_value(i, "large.allocated", sizeof(size_t)) + f->huge_allocated;
	f->dirty = ext_arena_value(i, "pdirty", sizeof(size_t)) * page;
	f->huge_count = 0;
	for (unsigned j = 0; j < nhchunks; j++) {
		msg_format(name, sizeof(name), "hchunks.%u.curhchunks", j);
		f->huge_count += ext_arena_value(i, name, sizeof(size_t));
	}
	f->free_regs = 0;
	f->free_bytes = 0;
	for (unsigned j = 0; j < nbins; j++) {
		size_t size = 0;
		uint32_t nregs = 0;
		msg_format(name, sizeof(name), "arenas.bin.%u.size", j);
		ext_read(name, &size, sizeof(size));
		msg_format(name, sizeof(name), "arenas.bin.%u.nregs", j);
		ext_read(name, &nregs, sizeof(nregs));
		msg_format(name, sizeof(name), "bins.%u.curruns", j);
		size_t curruns = ext_arena_value(i, name, sizeof(size_t));
		msg_format(name, sizeof(name), "bins.%u.curregs", j);
		size_t curregs = ext_arena_value(i, name, sizeof(size_t));
		size_t nfree = curruns * nregs - curregs;
		f->free_regs += nfree;
		f->free_bytes += nfree * size;
	}
	return true;
}

/* Refreshes the snapshot and returns arenas.narenas. */
static unsigned
ext_refresh(void) {
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);
	ctl_byname("epoch", &epoch, &len, &epoch, sizeof(epoch));
	unsigned narenas = 0;
	ext_read("arenas.narenas", &narenas, sizeof(narenas));
	return narenas;
}

/* The totals of mallinfo2. */
static struct mallinfo2
ext_mallinfo2(void) {
	struct mallinfo2 mi = {0};
	if (ctl_tsd() == NULL) {
		return mi;
	}
	unsigned narenas = ext_refresh();
	ext_figures_t f;
	if (!ext_figures(narenas, &f)) {
		return mi;
	}
	size_t mapped = 0, allocated = 0;
	ext_read("stats.mapped", &mapped, sizeof(mapped));
	ext_read("stats.allocated", &allocated, sizeof(allocated));
	mi.hblks = f.huge_count;
	mi.hblkhd = f.huge_allocated;
	mi.arena = mapped - f.huge_allocated;
	mi.uordblks = allocated - f.huge_allocated;
	mi.fordblks = mi.arena - mi.uordblks;
	mi.keepcost = f.dirty;
	mi.ordblks = f.free_regs;
	return mi;
}

ALLOC_EXPORT struct mallinfo2
ALLOC_NAME(mallinfo2)(void) {
	return ext_mallinfo2();
}

static int
ext_clamp(size_t v) {
	return v > INT_MAX ? INT_MAX : (int)v;
}

ALLOC_EXPORT struct mallinfo
ALLOC_NAME(mallinfo)(void) {
	struct mallinfo2 m = ext_mallinfo2();
	struct mallinfo mi;
	mi.arena = ext_clamp(m.arena);
	mi.ordblks = ext_clamp(m.ordblks);
	mi.smblks = ext_clamp(m.smblks);
	mi.hblks = ext_clamp(m.hblks);
	mi.hblkhd = ext_clamp(m.hblkhd);
	mi.usmblks = ext_clamp(m.usmblks);
	mi.fsmblks = ext_clamp(m.fsmblks);
	mi.uordblks = ext_clamp(m.uordblks);
	mi.fordblks = ext_clamp(m.fordblks);
	mi.keepcost = ext_clamp(m.keepcost);
	return mi;
}

/* Writes a line to stderr without stdio, as glibc's malloc_stats does
 * (it writes to stderr whatever malloc_message says). */
__attribute__((format(printf, 1, 2))) static void
ext_stderr(const char *fmt, ...) {
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	size_t n = msg_vformat(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n >= sizeof(line)) {
		n = sizeof(line) - 1;
	}
	const char *p = line;
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0) {
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

ALLOC_EXPORT void
ALLOC_NAME(malloc_stats)(void) {
	if (ctl_tsd() == NULL) {
		return;
	}
	unsigned narenas = ext_refresh();
	ext_figures_t f;
	for (unsigned i = 0; i < narenas; i++) {
		if (!ext_figures(i, &f)) {
			continue;
		}
		ext_stderr("Arena %u:\n", i);
		ext_stderr("system bytes     = %10zu\n", f.mapped);
		ext_stderr("in use bytes     = %10zu\n", f.allocated);
	}
	if (!ext_figures(narenas, &f)) {
		return;
	}
	size_t mapped = 0, allocated = 0;
	ext_read("stats.mapped", &mapped, sizeof(mapped));
	ext_read("stats.allocated", &allocated, sizeof(allocated));
	ext_stderr("Total (incl. huge):\n");
	ext_stderr("system bytes     = %10zu\n", mapped);
	ext_stderr("in use bytes     = %10zu\n", allocated);
	ext_stderr("huge regions     = %10zu\n", f.huge_count);
	ext_stderr("huge bytes       = %10zu\n", f.huge_allocated);
}

ALLOC_EXPORT int
ALLOC_NAME(malloc_trim)(size_t pad) {
	(void)pad;
	tsd_t *tsd = ctl_tsd();
	if (tsd == NULL) {
		return 0;
	}
	if (tsd->tcache.stacks != NULL) {
		tcache_flush(&tsd->tcache);
	}
	size_t released = 0;
	unsigned n = ctl_narenas();
	for (unsigned i = 0; i < n; i++) {
		arena_t *a = __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE);
		if (a != NULL) {
			released += arena_purge_all(a);
		}
	}
	return released != 0;
}

/* One <heap> or the closing totals of malloc_info. */
static void
ext_info_sizes(FILE *fp, unsigned i) {
	char name[96];
	unsigned nbins = 0;
	ext_read("arenas.nbins", &nbins, sizeof(nbins));
	fputs("<sizes>\n", fp);
	for (unsigned j = 0; j < nbins; j++) {
		size_t size = 0;
		uint32_t nregs = 0;
		msg_format(name, sizeof(name), "arenas.bin.%u.size", j);
		ext_read(name, &size, sizeof(size));
		msg_format(name, sizeof(name), "arenas.bin.%u.nregs", j);
		ext_read(name, &nregs, sizeof(nregs));
		msg_format(name, sizeof(name), "bins.%u.curruns", j);
		size_t curruns = ext_arena_value(i, name, sizeof(size_t));
		msg_format(name, sizeof(name), "bins.%u.curregs", j);
		size_t curregs = ext_arena_value(i, name, sizeof(size_t));
		size_t nfree = curruns * nregs - curregs;
		if (nfree != 0) {
			fprintf(fp,
			        "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n",
			        size, size, nfree * size, nfree);
		}
	}
	fputs("</sizes>\n", fp);
}

ALLOC_EXPORT int
ALLOC_NAME(malloc_info)(int options, FILE *fp) {
	if (options != 0) {
		return EINVAL;
	}
	if (ctl_tsd() == NULL) {
		return ENOMEM;
	}
	unsigned narenas = ext_refresh();
	ext_figures_t f;
	fputs("<malloc version=\"1\">\n", fp);
	for (unsigned i = 0; i < narenas; i++) {
		if (!ext_figures(i, &f)) {
			continue;
		}
		fprintf(fp, "<heap nr=\"%u\">\n", i);
		ext_info_sizes(fp, i);
		fputs("<total type=\"fast\" count=\"0\" size=\"0\"/>\n", fp);
		fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", f.free_regs,
		        f.free_bytes);
		fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", f.mapped);
		fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", f.mapped);
		fprintf(fp, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", f.mapped);
		fputs("</heap>\n", fp);
	}
	if (ext_figures(narenas, &f)) {
		size_t mapped = 0;
		ext_read("stats.mapped", &mapped, sizeof(mapped));
		fputs("<total type=\"fast\" count=\"0\" size=\"0\"/>\n", fp);
		fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", f.free_regs,
		        f.free_bytes);
		fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", f.huge_count,
		        f.huge_allocated);
		fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", mapped);
		fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", mapped);
		fprintf(fp, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", mapped);
	}
	fputs("</malloc>\n", fp);
	return 0;
}

ALLOC_EXPORT int
ALLOC_NAME(mallopt)(int param, int value) {
	(void)value;
	switch (param) {
	case M_MXFAST:
	case M_TRIM_THRESHOLD:
	case M_TOP_PAD:
	case M_MMAP_THRESHOLD:
	case M_MMAP_MAX:
	case M_CHECK_ACTION:
	case M_PERTURB:
	case M_ARENA_TEST:
	case M_ARENA_MAX:
		return 1;
	default:
		return 0;
	}
}
