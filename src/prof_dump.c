/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Heap profile writers (see prof_dump.h): mmap'd output buffers, jemalloc's
 * heap_v2 text for jeprof, and pprof's profile.proto through a small
 * protobuf encoder of our own.
 */
#include "alloc/internal/prof_dump.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "alloc/internal/message.h"

/* ---------------------------------------------------------------------- */
/* Buffers. */

/* Makes room for `more` bytes; false (and the buffer failed) when mmap
 * refuses. */
static bool
prof_buf_reserve(prof_buf_t *b, size_t more) {
	if (b->failed) {
		return false;
	}
	if (b->len + more <= b->cap) {
		return true;
	}
	size_t cap = b->cap == 0 ? 65536 : b->cap;
	while (cap < b->len + more) {
		cap *= 2;
	}
	void *p = b->p == NULL
	              ? mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
	              : mremap(b->p, b->cap, cap, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void
prof_buf_append(prof_buf_t *b, const void *data, size_t len) {
	if (len == 0 || !prof_buf_reserve(b, len)) {
		return;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void
prof_buf_printf(prof_buf_t *b, const char *fmt, ...) {
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	size_t n = msg_vformat(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n >= sizeof(line)) {
		/* Only thread names and paths get long; cut, never overflow. */
		n = sizeof(line) - 1;
	}
	prof_buf_append(b, line, n);
}

void
prof_buf_free(prof_buf_t *b) {
	if (b->p != NULL) {
		munmap(b->p, b->cap);
	}
	b->p = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

bool
prof_buf_read_file(prof_buf_t *b, const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return true;
	}
	for (;;) {
		if (!prof_buf_reserve(b, 4096)) {
			close(fd);
			return true;
		}
		ssize_t n = read(fd, b->p + b->len, b->cap - b->len);
		if (n < 0) {
			close(fd);
			return true;
		}
		if (n == 0) {
			break;
		}
		b->len += (size_t)n;
	}
	close(fd);
	return false;
}

bool
prof_buf_write_file(const prof_buf_t *b, const char *path) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		return true;
	}
	size_t off = 0;
	while (off < b->len) {
		ssize_t n = write(fd, b->p + off, b->len - off);
		if (n <= 0) {
			close(fd);
			return true;
		}
		off += (size_t)n;
	}
	return close(fd) != 0;
}

/* ---------------------------------------------------------------------- */
/* heap_v2. */

static void
prof_dump_cnt_line(prof_buf_t *b, const char *indent, const char *who, uint64_t uid,
                   const prof_cnt_t *c, bool accum) {
	char id[32];
	if (who != NULL) {
		msg_format(id, sizeof(id), "%s", who);
	} else {
		msg_format(id, sizeof(id), "%llu", (unsigned long long)uid);
	}
	prof_buf_printf(b, "%st%s: %llu: %llu [%llu: %llu]", indent, id,
	                (unsigned long long)c->curobjs, (unsigned long long)c->curbytes,
	                (unsigned long long)(accum ? c->accumobjs : 0),
	                (unsigned long long)(accum ? c->accumbytes : 0));
}

static void
prof_cnt_merge(prof_cnt_t *sum, const prof_cnt_t *c) {
	sum->curobjs += c->curobjs;
	sum->curbytes += c->curbytes;
	sum->accumobjs += c->accumobjs;
	sum->accumbytes += c->accumbytes;
}

static bool
prof_cnt_empty(const prof_cnt_t *c, bool accum) {
	return c->curobjs == 0 && (!accum || c->accumobjs == 0);
}

void
prof_dump_heap_v2(prof_buf_t *b, const prof_dump_src_t *src) {
	prof_cnt_t total = {0, 0, 0, 0};
	for (const prof_tdata_t *td = src->tdatas; td != NULL; td = td->next) {
		prof_cnt_merge(&total, &td->cnt);
	}
	prof_buf_printf(b, "heap_v2/%llu\n", (unsigned long long)((uint64_t)1 << src->lg_sample));
	prof_dump_cnt_line(b, "  ", "*", 0, &total, src->accum);
	prof_buf_append(b, "\n", 1);
	for (const prof_tdata_t *td = src->tdatas; td != NULL; td = td->next) {
		if (prof_cnt_empty(&td->cnt, src->accum)) {
			continue;
		}
		prof_dump_cnt_line(b, "  ", NULL, td->uid, &td->cnt, src->accum);
		if (td->name[0] != '\0') {
			prof_buf_printf(b, " %s", td->name);
		}
		prof_buf_append(b, "\n", 1);
	}
	for (const prof_bt_t *bt = src->bts; bt != NULL; bt = bt->next) {
		prof_cnt_t sum = {0, 0, 0, 0};
		for (const prof_tctx_t *t = bt->tctxs; t != NULL; t = t->next) {
			prof_cnt_merge(&sum, &t->cnt);
		}
		if (prof_cnt_empty(&sum, src->accum)) {
			continue;
		}
		prof_buf_append(b, "@", 1);
		for (unsigned i = 0; i < bt->nframes; i++) {
			/* jeprof takes one off every address but the first to
			 * land inside the call instruction; the first is a
			 * return address too (liballoc's frames are gone). */
			prof_buf_printf(b, " 0x%lx", (unsigned long)(bt->pcs[i] - (i == 0)));
		}
		prof_buf_append(b, "\n", 1);
		prof_dump_cnt_line(b, "  ", "*", 0, &sum, src->accum);
		prof_buf_append(b, "\n", 1);
		for (const prof_tctx_t *t = bt->tctxs; t != NULL; t = t->next) {
			if (prof_cnt_empty(&t->cnt, src->accum)) {
				continue;
			}
			prof_dump_cnt_line(b, "  ", NULL, t->tdata->uid, &t->cnt, src->accum);
			prof_buf_append(b, "\n", 1);
		}
	}
	prof_buf_printf(b, "\nMAPPED_LIBRARIES:\n");
	prof_buf_append(b, src->maps, src->maps_len);
}

/* ---------------------------------------------------------------------- */
/* The protobuf encoder. */

void
pb_varint(prof_buf_t *b, uint64_t v) {
	uint8_t bytes[10];
	size_t n = 0;
	do {
		uint8_t byte = v & 0x7f;
		v >>= 7;
		bytes[n++] = byte | (v != 0 ? 0x80 : 0);
	} while (v != 0);
	prof_buf_append(b, bytes, n);
}

static void
pb_tag(prof_buf_t *b, unsigned field, unsigned wire) {
	pb_varint(b, ((uint64_t)field << 3) | wire);
}

void
pb_uint(prof_buf_t *b, unsigned field, uint64_t v) {
	pb_tag(b, field, PB_VARINT);
	pb_varint(b, v);
}

void
pb_bytes(prof_buf_t *b, unsigned field, const void *data, size_t len) {
	pb_tag(b, field, PB_LEN);
	pb_varint(b, len);
	prof_buf_append(b, data, len);
}

void
pb_packed(prof_buf_t *b, prof_buf_t *scratch, unsigned field, const uint64_t *v, size_t n) {
	scratch->len = 0;
	for (size_t i = 0; i < n; i++) {
		pb_varint(scratch, v[i]);
	}
	pb_bytes(b, field, scratch->p, scratch->len);
}

/* ---------------------------------------------------------------------- */
/* profile.proto. Field numbers of perftools.profiles.Profile and its
 * messages. */

#define PPROF_SAMPLE_TYPE         1
#define PPROF_SAMPLE              2
#define PPROF_MAPPING             3
#define PPROF_LOCATION            4
#define PPROF_STRING_TABLE        6
#define PPROF_TIME_NANOS          9
#define PPROF_PERIOD_TYPE         11
#define PPROF_PERIOD              12
#define PPROF_DEFAULT_SAMPLE_TYPE 14

/* Fixed strings, at these indexes of the string table. */
static const char *const pprof_strings[] = {
    "", "inuse_objects", "count", "inuse_space", "bytes", "alloc_objects", "alloc_space", "space",
};
enum {
	PPROF_S_INUSE_OBJECTS = 1,
	PPROF_S_COUNT = 2,
	PPROF_S_INUSE_SPACE = 3,
	PPROF_S_BYTES = 4,
	PPROF_S_ALLOC_OBJECTS = 5,
	PPROF_S_ALLOC_SPACE = 6,
	PPROF_S_SPACE = 7,
	PPROF_NFIXED = 8,
};

typedef struct {
	uint64_t start;
	uint64_t limit;
	uint64_t offset;
	const char *name;
	size_t name_len;
	/* Index of the name in the string table. */
	uint64_t name_str;
} pprof_mapping_t;

static uint64_t
pprof_hex(const char **p, const char *end) {
	uint64_t v = 0;
	while (*p < end) {
		char c = **p;
		unsigned d;
		if (c >= '0' && c <= '9') {
			d = (unsigned)(c - '0');
		} else if (c >= 'a' && c <= 'f') {
			d = (unsigned)(c - 'a' + 10);
		} else {
			break;
		}
		v = v * 16 + d;
		(*p)++;
	}
	return v;
}

/* The executable, file-backed lines of /proc/self/maps, into m[] (at most
 * max); returns how many. Lines look like
 * "start-end perms offset dev inode   path". */
static size_t
pprof_parse_maps(const char *maps, size_t len, pprof_mapping_t *m, size_t max) {
	size_t n = 0;
	const char *p = maps, *end = maps + len;
	while (p < end && n < max) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL) {
			eol = end;
		}
		const char *q = p;
		uint64_t start = pprof_hex(&q, eol);
		q++;
		uint64_t limit = pprof_hex(&q, eol);
		q++;
		bool exec = q + 3 < eol && q[2] == 'x';
		q += 5;
		uint64_t offset = pprof_hex(&q, eol);
		/* dev and inode, then the path. */
		for (int fields = 0; fields < 2 && q < eol; fields++) {
			while (q < eol && *q == ' ') {
				q++;
			}
			while (q < eol && *q != ' ') {
				q++;
			}
		}
		while (q < eol && *q == ' ') {
			q++;
		}
		if (exec && q < eol && *q == '/') {
			m[n] = (pprof_mapping_t){start, limit, offset, q, (size_t)(eol - q), 0};
			n++;
		}
		p = eol + 1;
	}
	return n;
}

/* The mapping holding addr (1-based id), or 0. */
static uint64_t
pprof_mapping_of(const pprof_mapping_t *m, size_t n, uint64_t addr) {
	for (size_t i = 0; i < n; i++) {
		if (addr >= m[i].start && addr < m[i].limit) {
			return i + 1;
		}
	}
	return 0;
}

/* Address -> location id, open addressing (ids from 1). */
typedef struct {
	uint64_t addr;
	uint64_t id;
} pprof_loc_t;

static uint64_t
pprof_loc_id(pprof_loc_t *locs, size_t cap, uint64_t addr, uint64_t *next_id, bool *fresh) {
	size_t i = (size_t)((addr * 0x9e3779b97f4a7c15ULL) >> 17) & (cap - 1);
	while (locs[i].id != 0) {
		if (locs[i].addr == addr) {
			*fresh = false;
			return locs[i].id;
		}
		i = (i + 1) & (cap - 1);
	}
	locs[i].addr = addr;
	locs[i].id = (*next_id)++;
	*fresh = true;
	return locs[i].id;
}

static void
pprof_value_type(prof_buf_t *b, prof_buf_t *msg, unsigned field, uint64_t type, uint64_t unit) {
	msg->len = 0;
	pb_uint(msg, 1, type);
	pb_uint(msg, 2, unit);
	pb_bytes(b, field, msg->p, msg->len);
}

static uint64_t
pprof_round(double v) {
	return v <= 0 ? 0 : (uint64_t)(v + 0.5);
}

void
prof_dump_pprof(prof_buf_t *b, const prof_dump_src_t *src) {
	prof_buf_t msg = {0}, scratch = {0}, mapbuf = {0}, locbuf = {0};
	pprof_value_type(b, &msg, PPROF_SAMPLE_TYPE, PPROF_S_INUSE_OBJECTS, PPROF_S_COUNT);
	pprof_value_type(b, &msg, PPROF_SAMPLE_TYPE, PPROF_S_INUSE_SPACE, PPROF_S_BYTES);
	pprof_value_type(b, &msg, PPROF_SAMPLE_TYPE, PPROF_S_ALLOC_OBJECTS, PPROF_S_COUNT);
	pprof_value_type(b, &msg, PPROF_SAMPLE_TYPE, PPROF_S_ALLOC_SPACE, PPROF_S_BYTES);

	/* Mappings, their names deduplicated into the string table. */
	size_t max_maps = 4096;
	prof_buf_reserve(&mapbuf, max_maps * sizeof(pprof_mapping_t));
	pprof_mapping_t *maps = (pprof_mapping_t *)mapbuf.p;
	size_t nmaps =
	    maps == NULL ? 0 : pprof_parse_maps(src->maps, src->maps_len, maps, max_maps);
	uint64_t nstrings = PPROF_NFIXED;
	for (size_t i = 0; i < nmaps; i++) {
		maps[i].name_str = 0;
		for (size_t j = 0; j < i; j++) {
			if (maps[j].name_len == maps[i].name_len &&
			    memcmp(maps[j].name, maps[i].name, maps[i].name_len) == 0) {
				maps[i].name_str = maps[j].name_str;
				break;
			}
		}
		if (maps[i].name_str == 0) {
			maps[i].name_str = nstrings++;
		}
		msg.len = 0;
		pb_uint(&msg, 1, i + 1);
		pb_uint(&msg, 2, maps[i].start);
		pb_uint(&msg, 3, maps[i].limit);
		pb_uint(&msg, 4, maps[i].offset);
		pb_uint(&msg, 5, maps[i].name_str);
		pb_bytes(b, PPROF_MAPPING, msg.p, msg.len);
	}

	/* Samples, and a location for each new address. */
	size_t nframes = 0;
	for (const prof_bt_t *bt = src->bts; bt != NULL; bt = bt->next) {
		nframes += bt->nframes;
	}
	size_t cap = 1024;
	while (cap < nframes * 2) {
		cap *= 2;
	}
	prof_buf_reserve(&locbuf, cap * sizeof(pprof_loc_t));
	pprof_loc_t *locs = (pprof_loc_t *)locbuf.p;
	if (locs == NULL) {
		b->failed = true;
	}
	uint64_t next_id = 1;
	for (const prof_bt_t *bt = src->bts; bt != NULL && locs != NULL; bt = bt->next) {
		prof_est_t sum = {0, 0, 0, 0};
		bool any = false;
		for (const prof_tctx_t *t = bt->tctxs; t != NULL; t = t->next) {
			sum.curobjs += t->est.curobjs;
			sum.curbytes += t->est.curbytes;
			sum.accumobjs += t->est.accumobjs;
			sum.accumbytes += t->est.accumbytes;
			any = any || t->cnt.curobjs != 0 || (src->accum && t->cnt.accumobjs != 0);
		}
		if (!any) {
			continue;
		}
		uint64_t ids[PROF_BT_MAX];
		for (unsigned i = 0; i < bt->nframes; i++) {
			/* A return address: the call is the byte before. */
			uint64_t addr = bt->pcs[i] - 1;
			bool fresh;
			ids[i] = pprof_loc_id(locs, cap, addr, &next_id, &fresh);
			if (fresh) {
				msg.len = 0;
				pb_uint(&msg, 1, ids[i]);
				uint64_t mapping = pprof_mapping_of(maps, nmaps, addr);
				if (mapping != 0) {
					pb_uint(&msg, 2, mapping);
				}
				pb_uint(&msg, 3, addr);
				pb_bytes(b, PPROF_LOCATION, msg.p, msg.len);
			}
		}
		uint64_t values[4] = {pprof_round(sum.curobjs), pprof_round(sum.curbytes),
		                      pprof_round(sum.accumobjs), pprof_round(sum.accumbytes)};
		msg.len = 0;
		pb_packed(&msg, &scratch, 1, ids, bt->nframes);
		pb_packed(&msg, &scratch, 2, values, 4);
		pb_bytes(b, PPROF_SAMPLE, msg.p, msg.len);
	}

	/* The string table: the fixed strings, then the mapping names in
	 * the order their indexes were given. */
	for (size_t i = 0; i < PPROF_NFIXED; i++) {
		pb_bytes(b, PPROF_STRING_TABLE, pprof_strings[i], strlen(pprof_strings[i]));
	}
	uint64_t next_str = PPROF_NFIXED;
	for (size_t i = 0; i < nmaps; i++) {
		if (maps[i].name_str == next_str) {
			pb_bytes(b, PPROF_STRING_TABLE, maps[i].name, maps[i].name_len);
			next_str++;
		}
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pb_uint(b, PPROF_TIME_NANOS, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
	pprof_value_type(b, &msg, PPROF_PERIOD_TYPE, PPROF_S_SPACE, PPROF_S_BYTES);
	pb_uint(b, PPROF_PERIOD, (uint64_t)1 << src->lg_sample);
	pb_uint(b, PPROF_DEFAULT_SAMPLE_TYPE, PPROF_S_INUSE_SPACE);
	b->failed = b->failed || msg.failed || scratch.failed || mapbuf.failed;
	prof_buf_free(&msg);
	prof_buf_free(&scratch);
	prof_buf_free(&mapbuf);
	prof_buf_free(&locbuf);
}
