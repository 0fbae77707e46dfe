/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * malloc_stats_print: the statistics as text (like jemalloc's) or JSON
 * ("J" in opts), and the opt.stats_print report at exit.
 *
 * Every number is read through the mallctl tree (ctl_byname), after one
 * epoch refresh, so the report shows exactly what mallctl would. Output is
 * built in a buffer on the stack and handed to write_cb in chunks; nothing
 * here allocates from the program's heap, so it can run from an atexit
 * handler or with the program's allocator in any state.
 *
 * opts characters: J JSON; g omit general information (version, config,
 * opt, arenas.*); m omit merged arena stats; a omit per-arena stats; b, l,
 * h omit the bins, large and huge size-class tables. Others are ignored.
 * A --disable-stats build prints the general information only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/export.h"
#include "alloc/internal/message.h"
#include "alloc/internal/opt.h"

#define SP_BUF_SIZE   4096
#define SP_LINE_SIZE  512
#define SP_NAME_SIZE  128
#define SP_JSON_DEPTH 16

typedef struct {
	void (*write_cb)(void *, const char *);
	void *cbopaque;
	char buf[SP_BUF_SIZE];
	size_t len;
	bool json;
	/* JSON: nesting depth, and whether the current level has no member
	 * yet (no comma needed). */
	unsigned depth;
	bool first[SP_JSON_DEPTH];
} sp_t;

static void
sp_flush(sp_t *sp) {
	if (sp->len == 0) {
		return;
	}
	sp->buf[sp->len] = '\0';
	sp->write_cb(sp->cbopaque, sp->buf);
	sp->len = 0;
}

static void
sp_puts(sp_t *sp, const char *s) {
	size_t n = strlen(s);
	while (n > 0) {
		size_t room = SP_BUF_SIZE - 1 - sp->len;
		if (room == 0) {
			sp_flush(sp);
			continue;
		}
		size_t k = n < room ? n : room;
		memcpy(sp->buf + sp->len, s, k);
		sp->len += k;
		s += k;
		n -= k;
	}
}

__attribute__((format(printf, 2, 3))) static void
sp_printf(sp_t *sp, const char *fmt, ...) {
	char line[SP_LINE_SIZE];
	va_list ap;
	va_start(ap, fmt);
	msg_vformat(line, sizeof(line), fmt, ap);
	va_end(ap);
	sp_puts(sp, line);
}

/* ---------------------------------------------------------------------- */
/* Reading through the tree. A value that cannot be read is reported as
 * missing, never invented. */

__attribute__((format(printf, 3, 4))) static bool
sp_read(void *out, size_t len, const char *fmt, ...) {
	char name[SP_NAME_SIZE];
	va_list ap;
	va_start(ap, fmt);
	msg_vformat(name, sizeof(name), fmt, ap);
	va_end(ap);
	size_t l = len;
	return ctl_byname(name, out, &l, NULL, 0) == 0;
}

/* ---------------------------------------------------------------------- */
/* JSON emitter. */

static void
js_indent(sp_t *sp) {
	for (unsigned i = 0; i < sp->depth; i++) {
		sp_puts(sp, "\t");
	}
}

/* Starts a member (key may be NULL inside arrays). */
static void
js_key(sp_t *sp, const char *key) {
	if (!sp->first[sp->depth]) {
		sp_puts(sp, ",");
	}
	sp->first[sp->depth] = false;
	sp_puts(sp, "\n");
	js_indent(sp);
	if (key != NULL) {
		sp_printf(sp, "\"%s\": ", key);
	}
}

static void
js_open(sp_t *sp, const char *key, char bracket) {
	js_key(sp, key);
	char s[2] = {bracket, '\0'};
	sp_puts(sp, s);
	sp->depth++;
	sp->first[sp->depth] = true;
}

static void
js_close(sp_t *sp, char bracket) {
	bool empty = sp->first[sp->depth];
	sp->depth--;
	if (!empty) {
		sp_puts(sp, "\n");
		js_indent(sp);
	}
	char s[2] = {bracket, '\0'};
	sp_puts(sp, s);
}

static void
js_string_value(sp_t *sp, const char *s) {
	sp_puts(sp, "\"");
	for (; s != NULL && *s != '\0'; s++) {
		char e[7];
		msg_json_char((unsigned char)*s, e);
		sp_puts(sp, e);
	}
	sp_puts(sp, "\"");
}

static void
js_string(sp_t *sp, const char *key, const char *s) {
	js_key(sp, key);
	js_string_value(sp, s);
}

static void
js_u64(sp_t *sp, const char *key, uint64_t v) {
	js_key(sp, key);
	sp_printf(sp, "%llu", (unsigned long long)v);
}

static void
js_i64(sp_t *sp, const char *key, int64_t v) {
	js_key(sp, key);
	sp_printf(sp, "%lld", (long long)v);
}

static void
js_bool(sp_t *sp, const char *key, bool v) {
	js_key(sp, key);
	sp_puts(sp, v ? "true" : "false");
}

/* ---------------------------------------------------------------------- */
/* General information: version, config.*, opt.*, arenas.* */

static const char *const sp_config_bools[] = {
    "cache_oblivious", "debug", "fill",   "lazy_lock", "munmap", "prof",     "prof_libgcc",
    "prof_libunwind",  "stats", "tcache", "tls",       "utrace", "valgrind", "xmalloc",
};
#define SP_NCONFIG (sizeof(sp_config_bools) / sizeof(sp_config_bools[0]))

static void
sp_general(sp_t *sp) {
	const char *version = NULL;
	sp_read(&version, sizeof(version), "version");
	const char *malloc_conf = NULL;
	sp_read(&malloc_conf, sizeof(malloc_conf), "config.malloc_conf");
	if (sp->json) {
		js_string(sp, "version", version);
		js_open(sp, "config", '{');
		js_string(sp, "malloc_conf", malloc_conf);
		for (size_t i = 0; i < SP_NCONFIG; i++) {
			bool b;
			if (sp_read(&b, sizeof(b), "config.%s", sp_config_bools[i])) {
				js_bool(sp, sp_config_bools[i], b);
			}
		}
		js_close(sp, '}');
		js_open(sp, "opt", '{');
	} else {
		sp_printf(sp, "Version: %s\n", version != NULL ? version : "");
		sp_puts(sp, "Build-time option settings\n");
		sp_printf(sp, "  config.malloc_conf: \"%s\"\n",
		          malloc_conf != NULL ? malloc_conf : "");
		for (size_t i = 0; i < SP_NCONFIG; i++) {
			bool b;
			if (sp_read(&b, sizeof(b), "config.%s", sp_config_bools[i])) {
				sp_printf(sp, "  config.%s: %s\n", sp_config_bools[i],
				          b ? "true" : "false");
			}
		}
		sp_puts(sp, "Run-time option settings\n");
	}
	for (size_t i = 0; i < opt_table_len; i++) {
		const opt_desc_t *d = &opt_table[i];
		union {
			bool b;
			unsigned u;
			ssize_t z;
			size_t s;
			const char *str;
		} v;
		size_t len = d->type == OPT_TYPE_BOOL       ? sizeof(bool)
		             : d->type == OPT_TYPE_UNSIGNED ? sizeof(unsigned)
		             : d->type == OPT_TYPE_SSIZE    ? sizeof(ssize_t)
		             : d->type == OPT_TYPE_SIZE     ? sizeof(size_t)
		                                            : sizeof(const char *);
		if (!sp_read(&v, len, "opt.%s", d->name)) {
			continue;
		}
		char text[32];
		const char *s = text;
		switch (d->type) {
		case OPT_TYPE_BOOL:
			s = v.b ? "true" : "false";
			break;
		case OPT_TYPE_UNSIGNED:
			msg_format(text, sizeof(text), "%u", v.u);
			break;
		case OPT_TYPE_SSIZE:
			msg_format(text, sizeof(text), "%zd", v.z);
			break;
		case OPT_TYPE_SIZE:
			msg_format(text, sizeof(text), "%zu", v.s);
			break;
		case OPT_TYPE_ENUM:
		case OPT_TYPE_STRING:
			s = v.str;
			break;
		}
		bool quoted = d->type == OPT_TYPE_ENUM || d->type == OPT_TYPE_STRING;
		if (sp->json) {
			if (quoted) {
				js_string(sp, d->name, s);
			} else {
				js_key(sp, d->name);
				sp_puts(sp, s);
			}
		} else if (quoted) {
			sp_printf(sp, "  opt.%s: \"%s\"\n", d->name, s);
		} else {
			sp_printf(sp, "  opt.%s: %s\n", d->name, s);
		}
	}
	if (sp->json) {
		js_close(sp, '}');
	}

	unsigned narenas = 0, nbins = 0, nhbins = 0, nlruns = 0, nhchunks = 0;
	ssize_t lg_dirty_mult = 0, decay_time = 0, dirty_ms = 0, muzzy_ms = 0;
	size_t quantum = 0, page = 0, tcache_max = 0;
	sp_read(&narenas, sizeof(narenas), "arenas.narenas");
	sp_read(&dirty_ms, sizeof(dirty_ms), "arenas.dirty_decay_ms");
	sp_read(&muzzy_ms, sizeof(muzzy_ms), "arenas.muzzy_decay_ms");
	sp_read(&lg_dirty_mult, sizeof(lg_dirty_mult), "arenas.lg_dirty_mult");
	sp_read(&decay_time, sizeof(decay_time), "arenas.decay_time");
	sp_read(&quantum, sizeof(quantum), "arenas.quantum");
	sp_read(&page, sizeof(page), "arenas.page");
	bool have_tcache = sp_read(&tcache_max, sizeof(tcache_max), "arenas.tcache_max");
	sp_read(&nbins, sizeof(nbins), "arenas.nbins");
	sp_read(&nhbins, sizeof(nhbins), "arenas.nhbins");
	sp_read(&nlruns, sizeof(nlruns), "arenas.nlruns");
	sp_read(&nhchunks, sizeof(nhchunks), "arenas.nhchunks");
	if (!sp->json) {
		sp_printf(sp, "Arenas: %u\n", narenas);
		sp_printf(sp, "Min active:dirty page ratio per arena (lg): %zd\n", lg_dirty_mult);
		sp_printf(sp, "Unused dirty page decay time: %zd\n", decay_time);
		sp_printf(sp, "Decay time (ms): dirty %zd, muzzy %zd\n", dirty_ms, muzzy_ms);
		sp_printf(sp, "Quantum size: %zu\n", quantum);
		sp_printf(sp, "Page size: %zu\n", page);
		if (have_tcache) {
			sp_printf(sp, "Maximum thread-cached size class: %zu\n", tcache_max);
		}
		return;
	}
	js_open(sp, "arenas", '{');
	js_u64(sp, "narenas", narenas);
	js_i64(sp, "lg_dirty_mult", lg_dirty_mult);
	js_i64(sp, "decay_time", decay_time);
	js_i64(sp, "dirty_decay_ms", dirty_ms);
	js_i64(sp, "muzzy_decay_ms", muzzy_ms);
	js_u64(sp, "quantum", quantum);
	js_u64(sp, "page", page);
	if (have_tcache) {
		js_u64(sp, "tcache_max", tcache_max);
	}
	js_u64(sp, "nbins", nbins);
	js_u64(sp, "nhbins", nhbins);
	js_open(sp, "bin", '[');
	for (unsigned j = 0; j < nbins; j++) {
		size_t size = 0, run_size = 0;
		uint32_t nregs = 0;
		sp_read(&size, sizeof(size), "arenas.bin.%u.size", j);
		sp_read(&nregs, sizeof(nregs), "arenas.bin.%u.nregs", j);
		sp_read(&run_size, sizeof(run_size), "arenas.bin.%u.run_size", j);
		js_open(sp, NULL, '{');
		js_u64(sp, "size", size);
		js_u64(sp, "nregs", nregs);
		js_u64(sp, "run_size", run_size);
		js_close(sp, '}');
	}
	js_close(sp, ']');
	js_u64(sp, "nlruns", nlruns);
	js_open(sp, "lrun", '[');
	for (unsigned j = 0; j < nlruns; j++) {
		size_t size = 0;
		sp_read(&size, sizeof(size), "arenas.lrun.%u.size", j);
		js_open(sp, NULL, '{');
		js_u64(sp, "size", size);
		js_close(sp, '}');
	}
	js_close(sp, ']');
	js_u64(sp, "nhchunks", nhchunks);
	js_open(sp, "hchunk", '[');
	for (unsigned j = 0; j < nhchunks; j++) {
		size_t size = 0;
		sp_read(&size, sizeof(size), "arenas.hchunk.%u.size", j);
		js_open(sp, NULL, '{');
		js_u64(sp, "size", size);
		js_close(sp, '}');
	}
	js_close(sp, ']');
	js_close(sp, '}');
}

/* ---------------------------------------------------------------------- */
/* Totals: stats.* */

static const char *const sp_totals[] = {"allocated", "active", "metadata",
                                        "resident",  "mapped", "retained"};
#define SP_NTOTALS (sizeof(sp_totals) / sizeof(sp_totals[0]))

static void
sp_totals_print(sp_t *sp) {
	size_t v[SP_NTOTALS];
	for (size_t i = 0; i < SP_NTOTALS; i++) {
		v[i] = 0;
		sp_read(&v[i], sizeof(v[i]), "stats.%s", sp_totals[i]);
	}
	if (sp->json) {
		js_open(sp, "stats", '{');
		for (size_t i = 0; i < SP_NTOTALS; i++) {
			js_u64(sp, sp_totals[i], v[i]);
		}
		js_close(sp, '}');
		return;
	}
	sp_printf(sp,
	          "Allocated: %zu, active: %zu, metadata: %zu, resident: %zu, mapped: %zu, "
	          "retained: %zu\n",
	          v[0], v[1], v[2], v[3], v[4], v[5]);
}

/* ---------------------------------------------------------------------- */
/* One arena (or the merged view): stats.arenas.<i>.* */

typedef struct {
	size_t allocated;
	uint64_t nmalloc;
	uint64_t ndalloc;
	uint64_t nrequests;
} sp_kind_t;

static void
sp_kind_read(unsigned i, const char *kind, sp_kind_t *k) {
	memset(k, 0, sizeof(*k));
	sp_read(&k->allocated, sizeof(k->allocated), "stats.arenas.%u.%s.allocated", i, kind);
	sp_read(&k->nmalloc, sizeof(k->nmalloc), "stats.arenas.%u.%s.nmalloc", i, kind);
	sp_read(&k->ndalloc, sizeof(k->ndalloc), "stats.arenas.%u.%s.ndalloc", i, kind);
	sp_read(&k->nrequests, sizeof(k->nrequests), "stats.arenas.%u.%s.nrequests", i, kind);
}

static void
sp_bins(sp_t *sp, unsigned i, unsigned nbins) {
	if (sp->json) {
		js_open(sp, "bins", '[');
	} else {
		sp_puts(
		    sp,
		    "bins:           size ind    allocated      nmalloc      ndalloc    nrequests"
		    "      curregs      curruns regs   run_size       nfills     nflushes"
		    "      newruns       reruns\n");
	}
	for (unsigned j = 0; j < nbins; j++) {
		uint64_t nmalloc = 0, ndalloc = 0, nrequests = 0, nfills = 0, nflushes = 0;
		uint64_t nruns = 0, nreruns = 0;
		size_t curregs = 0, curruns = 0, size = 0, run_size = 0;
		uint32_t nregs = 0;
		sp_read(&size, sizeof(size), "arenas.bin.%u.size", j);
		sp_read(&nregs, sizeof(nregs), "arenas.bin.%u.nregs", j);
		sp_read(&run_size, sizeof(run_size), "arenas.bin.%u.run_size", j);
		sp_read(&nmalloc, sizeof(nmalloc), "stats.arenas.%u.bins.%u.nmalloc", i, j);
		sp_read(&ndalloc, sizeof(ndalloc), "stats.arenas.%u.bins.%u.ndalloc", i, j);
		sp_read(&nrequests, sizeof(nrequests), "stats.arenas.%u.bins.%u.nrequests", i, j);
		sp_read(&curregs, sizeof(curregs), "stats.arenas.%u.bins.%u.curregs", i, j);
		sp_read(&nfills, sizeof(nfills), "stats.arenas.%u.bins.%u.nfills", i, j);
		sp_read(&nflushes, sizeof(nflushes), "stats.arenas.%u.bins.%u.nflushes", i, j);
		sp_read(&nruns, sizeof(nruns), "stats.arenas.%u.bins.%u.nruns", i, j);
		sp_read(&nreruns, sizeof(nreruns), "stats.arenas.%u.bins.%u.nreruns", i, j);
		sp_read(&curruns, sizeof(curruns), "stats.arenas.%u.bins.%u.curruns", i, j);
		if (sp->json) {
			js_open(sp, NULL, '{');
			js_u64(sp, "nmalloc", nmalloc);
			js_u64(sp, "ndalloc", ndalloc);
			js_u64(sp, "nrequests", nrequests);
			js_u64(sp, "curregs", curregs);
			js_u64(sp, "nfills", nfills);
			js_u64(sp, "nflushes", nflushes);
			js_u64(sp, "nruns", nruns);
			js_u64(sp, "nreruns", nreruns);
			js_u64(sp, "curruns", curruns);
			js_close(sp, '}');
		} else if (nmalloc != 0) {
			sp_printf(
			    sp,
			    "%20zu %3u %12zu %12llu %12llu %12llu %12zu %12zu %4u %10zu %12llu "
			    "%12llu %12llu %12llu\n",
			    size, j, curregs * size, (unsigned long long)nmalloc,
			    (unsigned long long)ndalloc, (unsigned long long)nrequests, curregs,
			    curruns, nregs, run_size, (unsigned long long)nfills,
			    (unsigned long long)nflushes, (unsigned long long)nruns,
			    (unsigned long long)nreruns);
		}
	}
	if (sp->json) {
		js_close(sp, ']');
	}
}

/* Large runs ("lruns", "lrun", curruns) or huge chunks ("hchunks",
 * "hchunk", curhchunks): the same shape. */
static void
sp_sized(sp_t *sp, unsigned i, unsigned n, const char *stats_name, const char *class_name,
         const char *cur_name) {
	if (sp->json) {
		js_open(sp, stats_name, '[');
	} else {
		char label[24];
		msg_format(label, sizeof(label), "%s:", class_name);
		sp_printf(
		    sp, "%-20s size ind    allocated      nmalloc      ndalloc    nrequests %12s\n",
		    label, cur_name);
	}
	for (unsigned j = 0; j < n; j++) {
		uint64_t nmalloc = 0, ndalloc = 0, nrequests = 0;
		size_t cur = 0, size = 0;
		sp_read(&size, sizeof(size), "arenas.%s.%u.size", class_name, j);
		sp_read(&nmalloc, sizeof(nmalloc), "stats.arenas.%u.%s.%u.nmalloc", i, stats_name,
		        j);
		sp_read(&ndalloc, sizeof(ndalloc), "stats.arenas.%u.%s.%u.ndalloc", i, stats_name,
		        j);
		sp_read(&nrequests, sizeof(nrequests), "stats.arenas.%u.%s.%u.nrequests", i,
		        stats_name, j);
		sp_read(&cur, sizeof(cur), "stats.arenas.%u.%s.%u.%s", i, stats_name, j, cur_name);
		if (sp->json) {
			js_open(sp, NULL, '{');
			js_u64(sp, "nmalloc", nmalloc);
			js_u64(sp, "ndalloc", ndalloc);
			js_u64(sp, "nrequests", nrequests);
			js_u64(sp, cur_name, cur);
			js_close(sp, '}');
		} else if (nmalloc != 0) {
			sp_printf(sp, "%20zu %3u %12zu %12llu %12llu %12llu %12zu\n", size, j,
			          cur * size, (unsigned long long)nmalloc,
			          (unsigned long long)ndalloc, (unsigned long long)nrequests, cur);
		}
	}
	if (sp->json) {
		js_close(sp, ']');
	}
}

typedef struct {
	bool bins;
	bool large;
	bool huge;
} sp_tables_t;

static void
sp_arena(sp_t *sp, unsigned i, bool merged, const sp_tables_t *tables) {
	unsigned nthreads = 0, nbins = 0, nlruns = 0, nhchunks = 0;
	size_t pactive = 0, pdirty = 0, pmuzzy = 0, mapped = 0, retained = 0, page = 0;
	uint64_t npurge = 0, nmadvise = 0, purged = 0;
	uint64_t muzzy_npurge = 0, muzzy_nmadvise = 0, muzzy_purged = 0;
	ssize_t lg_dirty_mult = 0, decay_time = 0;
	const char *dss = NULL;
	sp_read(&page, sizeof(page), "arenas.page");
	sp_read(&nbins, sizeof(nbins), "arenas.nbins");
	sp_read(&nlruns, sizeof(nlruns), "arenas.nlruns");
	sp_read(&nhchunks, sizeof(nhchunks), "arenas.nhchunks");
	sp_read(&nthreads, sizeof(nthreads), "stats.arenas.%u.nthreads", i);
	sp_read(&pactive, sizeof(pactive), "stats.arenas.%u.pactive", i);
	sp_read(&pdirty, sizeof(pdirty), "stats.arenas.%u.pdirty", i);
	sp_read(&mapped, sizeof(mapped), "stats.arenas.%u.mapped", i);
	sp_read(&retained, sizeof(retained), "stats.arenas.%u.retained", i);
	sp_read(&npurge, sizeof(npurge), "stats.arenas.%u.npurge", i);
	sp_read(&nmadvise, sizeof(nmadvise), "stats.arenas.%u.nmadvise", i);
	sp_read(&purged, sizeof(purged), "stats.arenas.%u.purged", i);
	sp_read(&pmuzzy, sizeof(pmuzzy), "stats.arenas.%u.pmuzzy", i);
	sp_read(&muzzy_npurge, sizeof(muzzy_npurge), "stats.arenas.%u.muzzy_npurge", i);
	sp_read(&muzzy_nmadvise, sizeof(muzzy_nmadvise), "stats.arenas.%u.muzzy_nmadvise", i);
	sp_read(&muzzy_purged, sizeof(muzzy_purged), "stats.arenas.%u.muzzy_purged", i);
	bool have_settings =
	    !merged && sp_read(&dss, sizeof(dss), "stats.arenas.%u.dss", i) &&
	    sp_read(&lg_dirty_mult, sizeof(lg_dirty_mult), "stats.arenas.%u.lg_dirty_mult", i) &&
	    sp_read(&decay_time, sizeof(decay_time), "stats.arenas.%u.decay_time", i);
	sp_kind_t small, large, huge;
	sp_kind_read(i, "small", &small);
	sp_kind_read(i, "large", &large);
	sp_kind_read(i, "huge", &huge);

	if (sp->json) {
		js_u64(sp, "nthreads", nthreads);
		if (have_settings) {
			js_string(sp, "dss", dss);
			js_i64(sp, "lg_dirty_mult", lg_dirty_mult);
			js_i64(sp, "decay_time", decay_time);
		}
		js_u64(sp, "pactive", pactive);
		js_u64(sp, "pdirty", pdirty);
		js_u64(sp, "mapped", mapped);
		js_u64(sp, "retained", retained);
		js_u64(sp, "npurge", npurge);
		js_u64(sp, "nmadvise", nmadvise);
		js_u64(sp, "purged", purged);
		js_u64(sp, "pmuzzy", pmuzzy);
		js_u64(sp, "muzzy_npurge", muzzy_npurge);
		js_u64(sp, "muzzy_nmadvise", muzzy_nmadvise);
		js_u64(sp, "muzzy_purged", muzzy_purged);
		const char *kinds[] = {"small", "large", "huge"};
		const sp_kind_t *vals[] = {&small, &large, &huge};
		for (unsigned k = 0; k < 3; k++) {
			js_open(sp, kinds[k], '{');
			js_u64(sp, "allocated", vals[k]->allocated);
			js_u64(sp, "nmalloc", vals[k]->nmalloc);
			js_u64(sp, "ndalloc", vals[k]->ndalloc);
			js_u64(sp, "nrequests", vals[k]->nrequests);
			js_close(sp, '}');
		}
	} else {
		sp_printf(sp, "assigned threads: %u\n", nthreads);
		if (have_settings) {
			sp_printf(sp, "dss allocation precedence: %s\n", dss);
			sp_printf(sp, "min active:dirty page ratio (lg): %zd\n", lg_dirty_mult);
			sp_printf(sp, "decay time: %zd\n", decay_time);
		}
		sp_printf(sp, "purging: dirty: %zu, sweeps: %llu, madvises: %llu, purged: %llu\n",
		          pdirty, (unsigned long long)npurge, (unsigned long long)nmadvise,
		          (unsigned long long)purged);
		sp_printf(sp,
		          "muzzy stage: muzzy: %zu, sweeps: %llu, madvises: %llu, purged: %llu\n",
		          pmuzzy, (unsigned long long)muzzy_npurge,
		          (unsigned long long)muzzy_nmadvise, (unsigned long long)muzzy_purged);
		sp_puts(sp, "                            allocated      nmalloc      ndalloc"
		            "    nrequests\n");
		const char *labels[] = {"small:", "large:", "huge:"};
		const sp_kind_t *vals[] = {&small, &large, &huge};
		for (unsigned k = 0; k < 3; k++) {
			sp_printf(sp, "%-20s %12zu %12llu %12llu %12llu\n", labels[k],
			          vals[k]->allocated, (unsigned long long)vals[k]->nmalloc,
			          (unsigned long long)vals[k]->ndalloc,
			          (unsigned long long)vals[k]->nrequests);
		}
		sp_printf(sp, "%-20s %12zu %12llu %12llu %12llu\n",
		          "total:", small.allocated + large.allocated + huge.allocated,
		          (unsigned long long)(small.nmalloc + large.nmalloc + huge.nmalloc),
		          (unsigned long long)(small.ndalloc + large.ndalloc + huge.ndalloc),
		          (unsigned long long)(small.nrequests + large.nrequests + huge.nrequests));
		sp_printf(sp, "%-20s %12zu\n", "active:", pactive * page);
		sp_printf(sp, "%-20s %12zu\n", "mapped:", mapped);
		sp_printf(sp, "%-20s %12zu\n", "retained:", retained);
	}
	if (tables->bins) {
		sp_bins(sp, i, nbins);
	}
	if (tables->large) {
		sp_sized(sp, i, nlruns, "lruns", "lrun", "curruns");
	}
	if (tables->huge) {
		sp_sized(sp, i, nhchunks, "hchunks", "hchunk", "curhchunks");
	}
}

/* ---------------------------------------------------------------------- */
/* The entry points. */

static void
sp_write_default(void *cbopaque, const char *s) {
	(void)cbopaque;
	msg_write(s);
}

/* The totals and the arenas (merged and/or one by one). */
static void
sp_stats_print(sp_t *sp, bool merged, bool unmerged, const sp_tables_t *tables) {
	sp_totals_print(sp);

	unsigned narenas = 0;
	sp_read(&narenas, sizeof(narenas), "arenas.narenas");
	if (merged || unmerged) {
		if (sp->json) {
			js_open(sp, "stats.arenas", '{');
		}
		if (merged) {
			if (sp->json) {
				js_open(sp, "merged", '{');
			} else {
				sp_puts(sp, "Merged arenas stats:\n");
			}
			sp_arena(sp, narenas, true, tables);
			if (sp->json) {
				js_close(sp, '}');
			}
		}
		for (unsigned i = 0; unmerged && i < narenas; i++) {
			/* Arenas that do not exist have no stats node. */
			unsigned nthreads;
			if (!sp_read(&nthreads, sizeof(nthreads), "stats.arenas.%u.nthreads", i)) {
				continue;
			}
			if (sp->json) {
				char key[16];
				msg_format(key, sizeof(key), "%u", i);
				js_open(sp, key, '{');
			} else {
				sp_printf(sp, "arenas[%u]:\n", i);
			}
			sp_arena(sp, i, false, tables);
			if (sp->json) {
				js_close(sp, '}');
			}
		}
		if (sp->json) {
			js_close(sp, '}');
		}
	}
}

static void
stats_print(void (*write_cb)(void *, const char *), void *cbopaque, const char *opts) {
	bool general = true, merged = true, unmerged = true;
	sp_tables_t tables = {true, true, true};
	/* The emitter's buffer is big; it lives on the stack only for this
	 * call, never on the program's heap. */
	sp_t sp;
	sp.write_cb = write_cb != NULL ? write_cb : sp_write_default;
	sp.cbopaque = cbopaque;
	sp.len = 0;
	sp.json = false;
	sp.depth = 0;
	sp.first[0] = true;
	for (const char *o = opts; o != NULL && *o != '\0'; o++) {
		switch (*o) {
		case 'J':
			sp.json = true;
			break;
		case 'g':
			general = false;
			break;
		case 'm':
			merged = false;
			break;
		case 'a':
			unmerged = false;
			break;
		case 'b':
			tables.bins = false;
			break;
		case 'l':
			tables.large = false;
			break;
		case 'h':
			tables.huge = false;
			break;
		default:
			break;
		}
	}
	/* One refresh, so every number below comes from the same snapshot. */
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);
	ctl_byname("epoch", &epoch, &len, &epoch, sizeof(epoch));

	if (sp.json) {
		sp_puts(&sp, "{");
		sp.depth = 1;
		sp.first[1] = true;
		js_open(&sp, "jemalloc", '{');
	} else {
		sp_puts(&sp, "___ Begin liballoc statistics ___\n");
	}
	if (general) {
		sp_general(&sp);
	}
	/* A --disable-stats build has no stats.* nodes: the general part is
	 * all there is to print (jemalloc does the same). */
	if (config_stats) {
		sp_stats_print(&sp, merged, unmerged, &tables);
	}
	if (sp.json) {
		js_close(&sp, '}');
		sp_puts(&sp, "\n}\n");
	} else {
		sp_puts(&sp, "--- End liballoc statistics ---\n");
	}
	sp_flush(&sp);
}

ALLOC_EXPORT void
ALLOC_NAME(malloc_stats_print)(void (*write_cb)(void *, const char *), void *cbopaque,
                               const char *opts) {
	if (ctl_tsd() == NULL) {
		return;
	}
	stats_print(write_cb, cbopaque, opts);
}

char opt_stats_print_opts[OPT_STRING_MAX + 1];

static void
stats_print_atexit(void) {
	stats_print(NULL, NULL, opt_stats_print_opts);
}

void
stats_print_atexit_boot(void) {
	if (opt_stats_print) {
		atexit(stats_print_atexit);
	}
}
