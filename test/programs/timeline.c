/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helper of timeline.sh (the stats timeline). Built on the C library and
 * run with LD_PRELOAD=$LIBALLOC, it finds mallctl with dlsym (exit 77 when
 * there is none). One mode per run:
 *
 *   busy SECONDS       allocates and frees a mix of sizes (a working set of
 *                      about 20 MiB) for SECONDS, then exits; with
 *                      TL_STALLS=FILE set, writes there the stalls it saw:
 *                      one line "START END" (CLOCK_REALTIME seconds, the
 *                      clock of the timeline's "time") per gap of more than
 *                      5 ms between two of its rounds of 1,000 calls, when
 *                      it made no allocator call (descheduled on a loaded
 *                      machine), so the test can tell them from late lines
 *   sleep SECONDS      allocates 8 MiB once, then makes no allocator call
 *                      for SECONDS (only a background thread writes)
 *   agree              allocates, asks for a line (timeline.flush), then
 *                      prints what stats.* read at that epoch as one JSON
 *                      object: the epoch, the totals, dirty bytes, threads,
 *                      and per arena threads/active/dirty
 *   fork SECONDS       busy for SECONDS, forks a child that is busy for
 *                      SECONDS and exits through exit(); waits for it
 *   ramp SECONDS       allocates 1 MiB blocks, 64 in all, spread over
 *                      SECONDS, frees half of them, waits a little, exits
 *   threads            prints the number of threads of the process after
 *                      some allocations (/proc/self/task)
 *   ctl DIR            drives timeline.* (start, flush, interval, path,
 *                      stop, the errors) with files in DIR; prints "ok" or
 *                      the first failure
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int mallctl_fn(const char *, void *, size_t *, void *, size_t);
static mallctl_fn *ctl;

static double
now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
realtime_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The stalls busy() saw (see the top); the longest ones are kept when
 * there are more. */
#define STALL_MIN_S 0.005
#define NSTALLS_MAX 4096
static double stall_start[NSTALLS_MAX], stall_end[NSTALLS_MAX];
static unsigned nstalls;

static void
stall_note(double start, double end) {
	if (end - start <= STALL_MIN_S) {
		return;
	}
	unsigned at = nstalls;
	if (at == NSTALLS_MAX) {
		/* Full: replace the shortest, if this one is longer. */
		at = 0;
		for (unsigned k = 1; k < NSTALLS_MAX; k++) {
			if (stall_end[k] - stall_start[k] < stall_end[at] - stall_start[at]) {
				at = k;
			}
		}
		if (stall_end[at] - stall_start[at] >= end - start) {
			return;
		}
	} else {
		nstalls++;
	}
	stall_start[at] = start;
	stall_end[at] = end;
}

static int
stalls_write(void) {
	const char *path = getenv("TL_STALLS");
	if (path == NULL) {
		return 0;
	}
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	for (unsigned k = 0; k < nstalls; k++) {
		fprintf(f, "%.6f %.6f\n", stall_start[k], stall_end[k]);
	}
	return fclose(f) == 0 ? 0 : 1;
}

/* Churns a working set of 1,000 blocks of 16 B to 40 KiB for `seconds`. */
static void
busy(double seconds) {
	static void *keep[1000];
	double end = now_s() + seconds;
	double last = realtime_s();
	unsigned i = 0;
	do {
		for (int k = 0; k < 1000; k++, i++) {
			size_t size = 16 + (size_t)(i * 7919u) % 40000;
			free(keep[i % 1000]);
			keep[i % 1000] = malloc(size);
			memset(keep[i % 1000], 1, size < 64 ? size : 64);
		}
		double t = realtime_s();
		stall_note(last, t);
		last = t;
	} while (now_s() < end);
	for (int k = 0; k < 1000; k++) {
		free(keep[k]);
		keep[k] = NULL;
	}
}

static size_t
read_size(const char *name) {
	size_t v = 0, len = sizeof(v);
	if (ctl(name, &v, &len, NULL, 0) != 0) {
		fprintf(stderr, "mallctl %s failed\n", name);
		exit(1);
	}
	return v;
}

static unsigned
read_unsigned(const char *name) {
	unsigned v = 0;
	size_t len = sizeof(v);
	if (ctl(name, &v, &len, NULL, 0) != 0) {
		fprintf(stderr, "mallctl %s failed\n", name);
		exit(1);
	}
	return v;
}

static int
mode_agree(void) {
	void *blocks[300];
	for (int i = 0; i < 300; i++) {
		blocks[i] = malloc(i % 50 == 0 ? (size_t)3 << 20 : (size_t)(i * 97 + 1));
	}
	for (int i = 0; i < 300; i += 3) {
		free(blocks[i]);
	}
	if (ctl("timeline.flush", NULL, NULL, NULL, 0) != 0) {
		fprintf(stderr, "timeline.flush failed\n");
		return 1;
	}
	/* Read the epoch without refreshing: the one the flush made. */
	uint64_t epoch = 0;
	size_t len = sizeof(epoch);
	ctl("epoch", &epoch, &len, NULL, 0);
	size_t page = read_size("arenas.page");
	unsigned narenas = read_unsigned("arenas.narenas");
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", narenas);
	size_t dirty = read_size(name) * page;
	snprintf(name, sizeof(name), "stats.arenas.%u.nthreads", narenas);
	unsigned threads = read_unsigned(name);
	printf("{\"epoch\":%llu,\"allocated\":%zu,\"active\":%zu,\"resident\":%zu,\"mapped\":%zu,"
	       "\"retained\":%zu,\"metadata\":%zu,\"dirty\":%zu,\"threads\":%u,\"arenas\":[",
	       (unsigned long long)epoch, read_size("stats.allocated"), read_size("stats.active"),
	       read_size("stats.resident"), read_size("stats.mapped"), read_size("stats.retained"),
	       read_size("stats.metadata"), dirty, threads);
	bool first = true;
	for (unsigned i = 0; i < narenas; i++) {
		size_t pactive, pdirty;
		unsigned nthreads;
		len = sizeof(pactive);
		snprintf(name, sizeof(name), "stats.arenas.%u.pactive", i);
		if (ctl(name, &pactive, &len, NULL, 0) != 0) {
			continue; /* no such arena */
		}
		snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", i);
		pdirty = read_size(name);
		snprintf(name, sizeof(name), "stats.arenas.%u.nthreads", i);
		nthreads = read_unsigned(name);
		printf("%s{\"arena\":%u,\"threads\":%u,\"active\":%zu,\"dirty\":%zu}",
		       first ? "" : ",", i, nthreads, pactive * page, pdirty * page);
		first = false;
	}
	printf("]}\n");
	for (int i = 1; i < 300; i++) {
		if (i % 3 != 0) {
			free(blocks[i]);
		}
	}
	return 0;
}

static int
mode_fork(double seconds) {
	busy(seconds);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		busy(seconds);
		exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("child %d\n", (int)pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static int
mode_threads(void) {
	busy(0.2);
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		n += e->d_name[0] != '.';
	}
	if (d != NULL) {
		closedir(d);
	}
	printf("%d\n", n);
	return 0;
}

static int
lines_of(const char *path) {
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return -1;
	}
	int n = 0, c;
	while ((c = fgetc(f)) != EOF) {
		n += c == '\n';
	}
	fclose(f);
	return n;
}

#define CHECK(cond)                                                                           \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			printf("FAIL: line %d: %s (errno value %d)\n", __LINE__, #cond, err); \
			return 1;                                                             \
		}                                                                             \
	} while (0)

static int
mode_ctl(const char *dir) {
	int err = 0;
	bool on = true, off = false, b;
	size_t len = sizeof(b);
	char a[512], bpath[512], toolong[400];
	snprintf(a, sizeof(a), "%s/a.%%p.json", dir);
	snprintf(bpath, sizeof(bpath), "%s/b.json", dir);
	busy(0.05);
	/* Nothing set: not running, no path, starting needs one. */
	err = ctl("timeline.active", &b, &len, NULL, 0);
	CHECK(err == 0 && !b);
	const char *p = NULL;
	len = sizeof(p);
	err = ctl("timeline.path", &p, &len, NULL, 0);
	CHECK(err == 0 && p != NULL && p[0] == '\0');
	err = ctl("timeline.active", NULL, NULL, &on, sizeof(on));
	CHECK(err == EINVAL);
	err = ctl("timeline.flush", NULL, NULL, NULL, 0);
	CHECK(err == EINVAL);
	size_t ms = 0;
	len = sizeof(ms);
	err = ctl("timeline.interval_ms", &ms, &len, NULL, 0);
	CHECK(err == 0 && ms == 1000);
	/* Bad values. */
	ms = 0;
	err = ctl("timeline.interval_ms", NULL, NULL, &ms, sizeof(ms));
	CHECK(err == EINVAL);
	ms = 86400001;
	err = ctl("timeline.interval_ms", NULL, NULL, &ms, sizeof(ms));
	CHECK(err == EINVAL);
	memset(toolong, 'x', 256);
	toolong[256] = '\0';
	p = toolong;
	err = ctl("timeline.path", NULL, NULL, &p, sizeof(p));
	CHECK(err == EINVAL);
	p = NULL;
	err = ctl("timeline.path", NULL, NULL, &p, sizeof(p));
	CHECK(err == EINVAL);
	err = ctl("timeline.lines", NULL, NULL, &ms, sizeof(ms));
	CHECK(err == EPERM);
	/* Path, interval, start: the first line at once. */
	p = a;
	err = ctl("timeline.path", NULL, NULL, &p, sizeof(p));
	CHECK(err == 0);
	len = sizeof(p);
	err = ctl("timeline.path", &p, &len, NULL, 0);
	CHECK(err == 0 && strcmp(p, a) == 0);
	ms = 100000;
	err = ctl("timeline.interval_ms", NULL, NULL, &ms, sizeof(ms));
	CHECK(err == 0);
	len = sizeof(b);
	err = ctl("timeline.active", &b, &len, &on, sizeof(on));
	CHECK(err == 0 && !b);
	char a_file[600];
	snprintf(a_file, sizeof(a_file), "%s/a.%d.json", dir, (int)getpid());
	CHECK(lines_of(a_file) == 1);
	err = ctl("timeline.flush", NULL, NULL, NULL, 0);
	CHECK(err == 0 && lines_of(a_file) == 2);
	uint64_t lines = 0;
	len = sizeof(lines);
	err = ctl("timeline.lines", &lines, &len, NULL, 0);
	CHECK(err == 0 && lines == 2);
	/* A new path while running: the next line goes there. */
	p = bpath;
	err = ctl("timeline.path", NULL, NULL, &p, sizeof(p));
	CHECK(err == 0);
	err = ctl("timeline.flush", NULL, NULL, NULL, 0);
	CHECK(err == 0 && lines_of(bpath) == 1 && lines_of(a_file) == 2);
	/* Stop: a final line, then nothing more. */
	len = sizeof(b);
	err = ctl("timeline.active", &b, &len, &off, sizeof(off));
	CHECK(err == 0 && b);
	CHECK(lines_of(bpath) == 2);
	err = ctl("timeline.flush", NULL, NULL, NULL, 0);
	CHECK(err == EINVAL);
	busy(0.05);
	CHECK(lines_of(bpath) == 2);
	/* A path that cannot be opened: EFAULT, not running. */
	char bad[600];
	snprintf(bad, sizeof(bad), "%s/no/such/dir/x.json", dir);
	p = bad;
	err = ctl("timeline.path", NULL, NULL, &p, sizeof(p));
	CHECK(err == 0);
	err = ctl("timeline.active", NULL, NULL, &on, sizeof(on));
	CHECK(err == EFAULT);
	len = sizeof(b);
	err = ctl("timeline.active", &b, &len, NULL, 0);
	CHECK(err == 0 && !b);
	printf("ok\n");
	return 0;
}

int
main(int argc, char **argv) {
	ctl = (mallctl_fn *)dlsym(RTLD_DEFAULT, "mallctl");
	if (ctl == NULL) {
		fprintf(stderr, "mallctl not found\n");
		return 77;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s busy|sleep|agree|fork|threads|ctl [ARG]\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	double arg = argc > 2 ? atof(argv[2]) : 1.0;
	if (strcmp(mode, "busy") == 0) {
		busy(arg);
		return stalls_write();
	}
	if (strcmp(mode, "sleep") == 0) {
		/* volatile: the compiler may not drop the pair. */
		char *volatile p = malloc((size_t)8 << 20);
		memset(p, 1, (size_t)8 << 20);
		struct timespec ts = {(time_t)arg, (long)((arg - (double)(time_t)arg) * 1e9)};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
		}
		free(p);
		return 0;
	}
	if (strcmp(mode, "ramp") == 0) {
		static char *blocks[64];
		for (int i = 0; i < 64; i++) {
			blocks[i] = malloc((size_t)1 << 20);
			memset(blocks[i], 1, (size_t)1 << 20);
			busy(arg / 64);
		}
		for (int i = 0; i < 64; i += 2) {
			free(blocks[i]);
		}
		busy(0.3);
		return 0;
	}
	if (strcmp(mode, "agree") == 0) {
		return mode_agree();
	}
	if (strcmp(mode, "fork") == 0) {
		return mode_fork(arg);
	}
	if (strcmp(mode, "threads") == 0) {
		return mode_threads();
	}
	if (strcmp(mode, "ctl") == 0 && argc > 2) {
		return mode_ctl(argv[2]);
	}
	fprintf(stderr, "unknown mode %s\n", mode);
	return 2;
}
