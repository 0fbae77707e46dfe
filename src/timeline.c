/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The stats timeline (see timeline.h): the options, the writer and the
 * actions behind the timeline.* mallctl nodes. It owns the timeline file
 * and the line buffer; the figures come from the mallctl snapshot
 * (ctl_stats_sample).
 *
 * A line (one JSON object, keys in this order; sizes in bytes):
 *   time        wall-clock seconds since the epoch, to the millisecond
 *   pid, ppid, program  the process, its parent and its name
 *               (/proc/self/comm)
 *   epoch       the mallctl epoch of the snapshot the line shows
 *   final       true on the line written at exit or by a stop
 *   interval_ms the interval in force
 *   allocated active resident mapped retained metadata  stats.<name>
 *   dirty       dirty pages of all arenas, in bytes
 *   threads     threads bound to an arena
 *   arenas      [{"arena": i, "threads", "active", "dirty"}] per arena
 *   arenas_left arenas beyond the first CTL_SAMPLE_ARENAS, not listed
 *   top_classes [{"size", "objects", "bytes"}] the classes holding the
 *               most bytes, most first
 */
#include "alloc/internal/timeline.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc/internal/background_thread.h"
#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/message.h"
#include "alloc/internal/mutex.h"

char opt_stats_timeline[OPT_STRING_MAX + 1];
size_t opt_stats_interval_ms = TIMELINE_INTERVAL_MS_DEFAULT;

bool timeline_running;

/* When the next line is due (decay_now_ns clock), and the interval; atomic
 * (timeline_tick_slow reads them without tl_lock), written under it. */
static uint64_t tl_due_ns;
static uint64_t tl_interval_ns = (uint64_t)TIMELINE_INTERVAL_MS_DEFAULT * 1000 * 1000;

/*
 * Protects everything below and the writes to the file. Lock order: after
 * bg_lock, before init_lock and ctl_lock (mutex.h). Held across write(2);
 * allocation paths only try it.
 */
static mutex_t tl_lock = MUTEX_INITIALIZER;
static char tl_path[OPT_STRING_MAX + 1];
/* The open file, or -1: opened at the next line. */
static int tl_fd = -1;
static uint64_t tl_lines;
static bool tl_atexit_registered;
static char tl_program[64];
/* Told the user once that writing failed. */
static bool tl_warned;
static ctl_sample_t tl_sample;
#define TL_LINE_MAX 32768
static char tl_line[TL_LINE_MAX];

/* ---------------------------------------------------------------------- */
/* Formatting. */

typedef struct {
	char *buf;
	size_t size;
	size_t len;
} tl_out_t;

__attribute__((format(printf, 2, 3))) static void
tl_put(tl_out_t *o, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	size_t n = msg_vformat(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	o->len += n < o->size - o->len ? n : o->size - o->len - 1;
}

/* s as a JSON string (quotes, backslashes and control characters escaped). */
static void
tl_put_string(tl_out_t *o, const char *s) {
	tl_put(o, "\"");
	for (; *s != '\0'; s++) {
		char e[7];
		msg_json_char((unsigned char)*s, e);
		tl_put(o, "%s", e);
	}
	tl_put(o, "\"");
}

/* Formats the line for tl_sample into tl_line; returns its length. */
static size_t
tl_format_locked(bool final) {
	const ctl_sample_t *s = &tl_sample;
	tl_out_t o = {tl_line, sizeof(tl_line), 0};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	tl_put(&o, "{\"time\":%llu.%03u,\"pid\":%d,\"ppid\":%d,\"program\":",
	       (unsigned long long)ts.tv_sec, (unsigned)(ts.tv_nsec / 1000000), (int)getpid(),
	       (int)getppid());
	tl_put_string(&o, tl_program);
	tl_put(&o, ",\"epoch\":%llu,\"final\":%s,\"interval_ms\":%llu",
	       (unsigned long long)s->epoch, final ? "true" : "false",
	       (unsigned long long)(__atomic_load_n(&tl_interval_ns, __ATOMIC_RELAXED) / 1000000));
	tl_put(&o,
	       ",\"allocated\":%zu,\"active\":%zu,\"resident\":%zu,\"mapped\":%zu,\"retained\":%zu,"
	       "\"metadata\":%zu,\"dirty\":%zu,\"threads\":%u,\"arenas\":[",
	       s->allocated, s->active, s->resident, s->mapped, s->retained, s->metadata, s->dirty,
	       s->nthreads);
	for (unsigned i = 0; i < s->narenas; i++) {
		tl_put(&o, "%s{\"arena\":%u,\"threads\":%u,\"active\":%zu,\"dirty\":%zu}",
		       i == 0 ? "" : ",", s->arenas[i].index, s->arenas[i].nthreads,
		       s->arenas[i].active, s->arenas[i].dirty);
	}
	tl_put(&o, "],\"arenas_left\":%u,\"top_classes\":[", s->narenas_left);
	for (unsigned i = 0; i < s->nclasses; i++) {
		tl_put(&o, "%s{\"size\":%zu,\"objects\":%zu,\"bytes\":%zu}", i == 0 ? "" : ",",
		       s->classes[i].size, s->classes[i].objects, s->classes[i].bytes);
	}
	tl_put(&o, "]}\n");
	return o.len;
}

/* ---------------------------------------------------------------------- */
/* The file. */

/* tl_path with "%p" replaced by the pid and "%%" by "%", into buf. */
static void
tl_expand_path(char *buf, size_t size) {
	tl_out_t o = {buf, size, 0};
	for (const char *p = tl_path; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == 'p') {
			tl_put(&o, "%d", (int)getpid());
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			tl_put(&o, "%%");
			p++;
		} else {
			tl_put(&o, "%c", *p);
		}
	}
}

static void
tl_read_program(void) {
	tl_program[0] = '\0';
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return;
	}
	ssize_t n = read(fd, tl_program, sizeof(tl_program) - 1);
	close(fd);
	n = n < 0 ? 0 : n;
	while (n > 0 && tl_program[n - 1] == '\n') {
		n--;
	}
	tl_program[n] = '\0';
}

COLD static void
tl_warn_once(const char *what, const char *path, int err) {
	if (!tl_warned) {
		tl_warned = true;
		msg_warn("stats_timeline: cannot %s \"%s\" (errno %d); the timeline stops", what,
		         path, err);
	}
}

static void
tl_close_locked(void) {
	if (tl_fd >= 0) {
		close(tl_fd);
		tl_fd = -1;
	}
}

/* The timeline stops (no final line): tl_lock held. */
static void
tl_halt_locked(void) {
	tl_close_locked();
	__atomic_store_n(&timeline_running, false, __ATOMIC_RELAXED);
}

/*
 * Samples, formats and appends one line; tl_lock held. With !wait it gives
 * up when the snapshot is busy. Returns false when no line was written (an
 * error stops the timeline, with one warning).
 */
static bool
tl_write_locked(bool final, bool wait) {
	if (!ctl_stats_sample(&tl_sample, wait)) {
		return false;
	}
	char path[PATH_MAX];
	if (tl_fd < 0) {
		tl_expand_path(path, sizeof(path));
		if (tl_program[0] == '\0') {
			tl_read_program();
		}
		tl_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (tl_fd < 0) {
			tl_warn_once("open", path, errno);
			tl_halt_locked();
			return false;
		}
	}
	size_t len = tl_format_locked(final);
	/* One write(2) per line, so lines of two processes appending to
	 * one file do not interleave. */
	for (size_t off = 0; off < len;) {
		ssize_t n = write(tl_fd, tl_line + off, len - off);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			tl_expand_path(path, sizeof(path));
			tl_warn_once("write to", path, n < 0 ? errno : ENOSPC);
			tl_halt_locked();
			return false;
		}
		off += (size_t)n;
	}
	tl_lines++;
	return true;
}

static void
tl_schedule_locked(uint64_t now) {
	__atomic_store_n(&tl_due_ns, now + __atomic_load_n(&tl_interval_ns, __ATOMIC_RELAXED),
	                 __ATOMIC_RELAXED);
}

/* Final line and close; tl_lock held. */
static void
tl_stop_locked(void) {
	if (__atomic_load_n(&timeline_running, __ATOMIC_RELAXED)) {
		tl_write_locked(true, true);
		tl_halt_locked();
	}
}

static void
tl_atexit(void) {
	int saved = errno;
	mutex_lock(&tl_lock);
	tl_stop_locked();
	mutex_unlock(&tl_lock);
	errno = saved;
}

/* Outside tl_lock: atexit may allocate. */
static void
tl_register_atexit(void) {
	mutex_lock(&tl_lock);
	bool first = !tl_atexit_registered;
	tl_atexit_registered = true;
	mutex_unlock(&tl_lock);
	if (first) {
		atexit(tl_atexit);
	}
}

/* ---------------------------------------------------------------------- */
/* Ticks. */

void
timeline_boot(void) {
	if (opt_stats_timeline[0] == '\0') {
		return;
	}
	if (!config_stats) {
		msg_warn("stats_timeline: this build keeps no statistics (configure "
		         "--disable-stats); no timeline is written");
		return;
	}
	mutex_lock(&tl_lock);
	memcpy(tl_path, opt_stats_timeline, sizeof(tl_path));
	__atomic_store_n(&tl_interval_ns, (uint64_t)opt_stats_interval_ms * 1000 * 1000,
	                 __ATOMIC_RELAXED);
	/* The first line at the first tick. */
	__atomic_store_n(&tl_due_ns, decay_now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&timeline_running, true, __ATOMIC_RELAXED);
	mutex_unlock(&tl_lock);
	tl_register_atexit();
}

void
timeline_tick_slow(void) {
	/* The background thread writes when one runs. */
	if (background_thread_running()) {
		return;
	}
	uint64_t now = decay_now_ns();
	if (likely(now < __atomic_load_n(&tl_due_ns, __ATOMIC_RELAXED))) {
		return;
	}
	if (!mutex_trylock(&tl_lock)) {
		return;
	}
	int saved = errno;
	if (__atomic_load_n(&timeline_running, __ATOMIC_RELAXED) &&
	    now >= __atomic_load_n(&tl_due_ns, __ATOMIC_RELAXED) && tl_write_locked(false, false)) {
		tl_schedule_locked(now);
	}
	mutex_unlock(&tl_lock);
	errno = saved;
}

uint64_t
timeline_background(void) {
	if (!__atomic_load_n(&timeline_running, __ATOMIC_RELAXED)) {
		return UINT64_MAX;
	}
	uint64_t now = decay_now_ns();
	if (now >= __atomic_load_n(&tl_due_ns, __ATOMIC_RELAXED)) {
		int saved = errno;
		mutex_lock(&tl_lock);
		if (__atomic_load_n(&timeline_running, __ATOMIC_RELAXED) &&
		    now >= __atomic_load_n(&tl_due_ns, __ATOMIC_RELAXED)) {
			tl_write_locked(false, true);
			tl_schedule_locked(now);
		}
		mutex_unlock(&tl_lock);
		errno = saved;
	}
	if (!__atomic_load_n(&timeline_running, __ATOMIC_RELAXED)) {
		return UINT64_MAX;
	}
	uint64_t due = __atomic_load_n(&tl_due_ns, __ATOMIC_RELAXED);
	now = decay_now_ns();
	return due > now ? due - now : 0;
}

/* ---------------------------------------------------------------------- */
/* The mallctl actions. */

int
timeline_start(void) {
	if (!config_stats) {
		return ENOENT;
	}
	mutex_lock(&tl_lock);
	if (tl_path[0] == '\0') {
		mutex_unlock(&tl_lock);
		return EINVAL;
	}
	int err = 0;
	if (!__atomic_load_n(&timeline_running, __ATOMIC_RELAXED)) {
		__atomic_store_n(&timeline_running, true, __ATOMIC_RELAXED);
		tl_warned = false;
		/* The first line now, so the file exists on return. */
		if (tl_write_locked(false, true)) {
			tl_schedule_locked(decay_now_ns());
		} else {
			err = EFAULT;
		}
	}
	mutex_unlock(&tl_lock);
	if (err == 0) {
		tl_register_atexit();
	}
	return err;
}

int
timeline_stop(void) {
	if (!config_stats) {
		return ENOENT;
	}
	mutex_lock(&tl_lock);
	tl_stop_locked();
	mutex_unlock(&tl_lock);
	return 0;
}

int
timeline_flush(void) {
	if (!config_stats) {
		return ENOENT;
	}
	mutex_lock(&tl_lock);
	int err = EINVAL;
	if (__atomic_load_n(&timeline_running, __ATOMIC_RELAXED)) {
		err = tl_write_locked(false, true) ? 0 : EFAULT;
		tl_schedule_locked(decay_now_ns());
	}
	mutex_unlock(&tl_lock);
	return err;
}

void
timeline_path_get(char *buf) {
	mutex_lock(&tl_lock);
	memcpy(buf, tl_path, sizeof(tl_path));
	mutex_unlock(&tl_lock);
}

int
timeline_path_set(const char *path) {
	if (!config_stats) {
		return ENOENT;
	}
	size_t len = strnlen(path, OPT_STRING_MAX + 1);
	if (len > OPT_STRING_MAX) {
		return EINVAL;
	}
	mutex_lock(&tl_lock);
	if (len == 0) {
		tl_stop_locked();
	}
	tl_close_locked();
	memcpy(tl_path, path, len + 1);
	mutex_unlock(&tl_lock);
	return 0;
}

size_t
timeline_interval_ms_get(void) {
	return (size_t)(__atomic_load_n(&tl_interval_ns, __ATOMIC_RELAXED) / 1000000);
}

int
timeline_interval_ms_set(size_t ms) {
	if (!config_stats) {
		return ENOENT;
	}
	if (ms < 1 || (int64_t)ms > TIMELINE_INTERVAL_MS_MAX) {
		return EINVAL;
	}
	mutex_lock(&tl_lock);
	uint64_t interval = (uint64_t)ms * 1000 * 1000;
	__atomic_store_n(&tl_interval_ns, interval, __ATOMIC_RELAXED);
	/* A shorter interval takes effect now. */
	uint64_t due = decay_now_ns() + interval;
	if (due < __atomic_load_n(&tl_due_ns, __ATOMIC_RELAXED)) {
		__atomic_store_n(&tl_due_ns, due, __ATOMIC_RELAXED);
	}
	mutex_unlock(&tl_lock);
	return 0;
}

uint64_t
timeline_lines_get(void) {
	mutex_lock(&tl_lock);
	uint64_t n = tl_lines;
	mutex_unlock(&tl_lock);
	return n;
}

/* ---------------------------------------------------------------------- */
/* Fork. */

void
timeline_prefork(void) {
	mutex_prefork(&tl_lock);
}

void
timeline_postfork_parent(void) {
	mutex_postfork_parent(&tl_lock);
}

void
timeline_postfork_child(void) {
	/* The child's copy of the file closes; its first line opens the
	 * path for its own pid, at its first tick. */
	if (tl_fd >= 0) {
		close(tl_fd);
		tl_fd = -1;
	}
	tl_lines = 0;
	tl_program[0] = '\0';
	__atomic_store_n(&tl_due_ns, decay_now_ns(), __ATOMIC_RELAXED);
	mutex_postfork_child(&tl_lock);
}
