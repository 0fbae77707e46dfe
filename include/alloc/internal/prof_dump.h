/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Heap profile writers (prof_dump.c) and the records they read, which
 * prof.c keeps.
 *
 * Two formats:
 *   jemalloc's heap_v2 text, read by jeprof: a header with the sample
 *   period, one line per thread, one block per backtrace ("@ pc pc ...",
 *   then the totals and one line per thread), then MAPPED_LIBRARIES with
 *   /proc/self/maps. Counts are the raw sampled ones: jeprof unbiases them.
 *   pprof's profile.proto (uncompressed; go tool pprof reads it as is):
 *   sample types inuse_objects, inuse_space, alloc_objects, alloc_space
 *   (unbiased estimates), one location per distinct address, the
 *   executable mappings of /proc/self/maps so pprof symbolises from the
 *   files, and no functions.
 *
 * Writers fill a prof_buf_t, whose memory comes from mmap, never from the
 * program's heap; prof.c writes it out with write(2) once its lock is
 * released. A buffer that cannot grow is marked failed and the dump fails.
 */
#ifndef ALLOC_INTERNAL_PROF_DUMP_H
#define ALLOC_INTERNAL_PROF_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/prof.h"

/* Sampled counts: current objects and bytes, and cumulative ones (kept
 * only under prof_accum). */
typedef struct {
	uint64_t curobjs;
	uint64_t curbytes;
	uint64_t accumobjs;
	uint64_t accumbytes;
} prof_cnt_t;

/* The same, unbiased (each sample weighted by prof_unbias_factor), for the
 * pprof writer. */
typedef struct {
	double curobjs;
	double curbytes;
	double accumobjs;
	double accumbytes;
} prof_est_t;

typedef struct prof_bt_s prof_bt_t;
typedef struct prof_tctx_s prof_tctx_t;

struct prof_tdata_s {
	/* Thread number in dumps (t<uid>), unique for the process. */
	uint64_t uid;
	/* thread.prof.name; empty when unset. */
	char name[PROF_THREAD_NAME_MAX];
	/* thread.prof.active. */
	bool active;
	/* The thread exited; the record stays while it has samples. */
	bool dead;
	/* A backtrace record counts for this thread (so the record is never
	 * recycled). */
	bool has_tctx;
	/* Bytes left on the countdown of allocations no bin counts. */
	int64_t bytes_left;
	uint64_t prng;
	/* Totals over the thread's samples. */
	prof_cnt_t cnt;
	/* All records (prof_lock). */
	prof_tdata_t *next;
	/* The thread's counts, one per backtrace (linked by tdata_next), and
	 * how many: a lookup walks this list or the backtrace's, whichever is
	 * shorter. */
	prof_tctx_t *tctxs;
	unsigned ntctx;
};

/* The counts of one backtrace for one thread. */
struct prof_tctx_s {
	prof_bt_t *bt;
	prof_tdata_t *tdata;
	prof_cnt_t cnt;
	prof_est_t est;
	/* The backtrace's other threads. */
	prof_tctx_t *next;
	/* The thread's other backtraces. */
	prof_tctx_t *tdata_next;
};

/* An interned backtrace: return addresses, innermost first, liballoc's
 * own frames removed. */
struct prof_bt_s {
	uint64_t hash;
	unsigned nframes;
	/* Per-thread counts, and how many. */
	prof_tctx_t *tctxs;
	unsigned ntctx;
	/* All records (prof_lock), and the chain of its hash slot. */
	prof_bt_t *next;
	prof_bt_t *chain;
	uintptr_t pcs[];
};

/* A growing byte buffer in mmap'd memory. */
typedef struct {
	char *p;
	size_t len;
	size_t cap;
	/* mmap refused more memory: the contents are incomplete. */
	bool failed;
} prof_buf_t;

void prof_buf_append(prof_buf_t *b, const void *data, size_t len);
/* Appends formatted text (the message.h printf subset). */
void prof_buf_printf(prof_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Releases the memory; the buffer is empty again. */
void prof_buf_free(prof_buf_t *b);
/* Appends the contents of a file (e.g. /proc/self/maps); true on failure. */
bool prof_buf_read_file(prof_buf_t *b, const char *path);
/* Writes the buffer to `path` (created or truncated, mode 0644) with
 * write(2); true on failure. */
bool prof_buf_write_file(const prof_buf_t *b, const char *path);

/* What a dump covers: every backtrace record, every thread record, the
 * sample rate, the process's maps. */
typedef struct {
	const prof_bt_t *bts;
	const prof_tdata_t *tdatas;
	unsigned lg_sample;
	/* Include the cumulative counts (prof_accum). */
	bool accum;
	const char *maps;
	size_t maps_len;
} prof_dump_src_t;

/* jemalloc's heap_v2 text. */
void prof_dump_heap_v2(prof_buf_t *b, const prof_dump_src_t *src);
/* pprof's profile.proto. */
void prof_dump_pprof(prof_buf_t *b, const prof_dump_src_t *src);

/* ---------------------------------------------------------------------- */
/* The protobuf encoder (exposed for the unit test). */

/* Wire types. */
#define PB_VARINT 0
#define PB_LEN    2

void pb_varint(prof_buf_t *b, uint64_t v);
/* Field `field` as a varint (int64 / uint64 / bool). */
void pb_uint(prof_buf_t *b, unsigned field, uint64_t v);
/* Field `field` as length-delimited bytes (string, packed array, or an
 * embedded message already encoded into `data`). */
void pb_bytes(prof_buf_t *b, unsigned field, const void *data, size_t len);
/* A packed repeated varint field. */
void pb_packed(prof_buf_t *b, prof_buf_t *scratch, unsigned field, const uint64_t *v, size_t n);

#endif
