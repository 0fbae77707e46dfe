/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the stats timeline (timeline.h, timeline.c) on the unit-test
 * objects: the allocator is started through ctl_tsd(), the timeline driven
 * through its functions, the files read back.
 *
 * Checked: "%p" and "%%" in the path; the first line at start, one per
 * flush, a final one at stop and none after; the keys of a line in their
 * order, its epoch equal to the snapshot's; the errors (no path, a path
 * over 255 bytes, an interval out of range, a flush while stopped); a
 * shorter interval taking effect at once; and four threads ticking at the
 * same time with a 1 ms interval: whole lines only, epochs increasing, at
 * most one line per interval (plus the first and the final one). Under
 * ThreadSanitizer (make check-tsan) the last one checks the locking.
 *
 * Every test skips in a --disable-stats build, where the timeline.*
 * actions answer ENOENT.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/timeline.h"

static char dir[256];

static int
group_setup(void **state) {
	(void)state;
	if (ctl_tsd() == NULL) {
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/liballoc-unit-timeline.XXXXXX",
	         getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state) {
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
skip_without_stats(void) {
	if (!config_stats) {
		assert_int_equal(timeline_start(), ENOENT);
		skip();
	}
}

/* The lines of file path (at most max), each without its newline; returns
 * how many. Fails on a line without its newline. */
static int
read_lines(const char *path, char lines[][8192], int max) {
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return -1;
	}
	int n = 0;
	char buf[8192];
	while (n < max && fgets(buf, sizeof(buf), f) != NULL) {
		size_t len = strlen(buf);
		assert_true(len > 0 && buf[len - 1] == '\n');
		buf[len - 1] = '\0';
		memcpy(lines[n++], buf, len);
	}
	fclose(f);
	return n;
}

static uint64_t
line_epoch(const char *line) {
	const char *e = strstr(line, "\"epoch\":");
	assert_non_null(e);
	return strtoull(e + 8, NULL, 10);
}

static char lines[2048][8192];

static void
test_path_and_lines(void **state) {
	(void)state;
	skip_without_stats();
	char path[300], file[300];
	snprintf(path, sizeof(path), "%s/a.%%p.%%%%.json", dir);
	snprintf(file, sizeof(file), "%s/a.%d.%%.json", dir, (int)getpid());
	assert_int_equal(timeline_path_set(path), 0);
	char got[OPT_STRING_MAX + 1];
	timeline_path_get(got);
	assert_string_equal(got, path);
	assert_int_equal(timeline_interval_ms_set(100000), 0);
	uint64_t before = timeline_lines_get();
	assert_int_equal(timeline_start(), 0);
	assert_true(__atomic_load_n(&timeline_running, __ATOMIC_RELAXED));
	assert_int_equal(read_lines(file, lines, 16), 1);
	assert_int_equal(timeline_flush(), 0);
	assert_int_equal(timeline_flush(), 0);
	assert_int_equal(timeline_stop(), 0);
	assert_false(__atomic_load_n(&timeline_running, __ATOMIC_RELAXED));
	assert_true(timeline_lines_get() == before + 4);
	assert_int_equal(timeline_flush(), EINVAL);
	/* Not due (100 s): a tick writes nothing, and stopped nothing at all. */
	timeline_tick();
	assert_int_equal(read_lines(file, lines, 16), 4);
	static const char *const keys[] = {
	    "{\"time\":",
	    ",\"pid\":",
	    ",\"ppid\":",
	    ",\"program\":\"timeline\"",
	    ",\"epoch\":",
	    ",\"final\":",
	    ",\"interval_ms\":100000",
	    ",\"allocated\":",
	    ",\"active\":",
	    ",\"resident\":",
	    ",\"mapped\":",
	    ",\"retained\":",
	    ",\"metadata\":",
	    ",\"dirty\":",
	    ",\"threads\":",
	    ",\"arenas\":[{\"arena\":",
	    ",\"arenas_left\":0",
	    ",\"top_classes\":[",
	};
	for (int i = 0; i < 4; i++) {
		const char *p = lines[i];
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			const char *q = strstr(p, keys[k]);
			if (q == NULL) {
				fail_msg("line %d: no %s after offset %zu: %s", i, keys[k],
				         (size_t)(p - lines[i]), lines[i]);
			}
			p = q + strlen(keys[k]);
		}
		assert_string_equal(lines[i] + strlen(lines[i]) - 2, "]}");
		assert_non_null(strstr(lines[i], i == 3 ? "\"final\":true" : "\"final\":false"));
		if (i > 0) {
			assert_true(line_epoch(lines[i]) > line_epoch(lines[i - 1]));
		}
	}
	/* The last line's epoch is the snapshot's. */
	uint64_t epoch = 0;
	size_t len = sizeof(epoch);
	assert_int_equal(ctl_byname("epoch", &epoch, &len, NULL, 0), 0);
	assert_true(epoch == line_epoch(lines[3]));
}

static void
test_errors(void **state) {
	(void)state;
	skip_without_stats();
	char toolong[OPT_STRING_MAX + 2];
	memset(toolong, 'x', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = '\0';
	assert_int_equal(timeline_path_set(toolong), EINVAL);
	assert_int_equal(timeline_interval_ms_set(0), EINVAL);
	assert_int_equal(timeline_interval_ms_set((size_t)TIMELINE_INTERVAL_MS_MAX + 1), EINVAL);
	assert_int_equal(timeline_interval_ms_set((size_t)TIMELINE_INTERVAL_MS_MAX), 0);
	assert_true(timeline_interval_ms_get() == (size_t)TIMELINE_INTERVAL_MS_MAX);
	assert_int_equal(timeline_path_set(""), 0);
	assert_int_equal(timeline_start(), EINVAL);
	assert_int_equal(timeline_flush(), EINVAL);
	/* A path that cannot be opened: EFAULT, stopped. */
	char path[300];
	snprintf(path, sizeof(path), "%s/no/such/dir.json", dir);
	assert_int_equal(timeline_path_set(path), 0);
	assert_int_equal(timeline_start(), EFAULT);
	assert_false(__atomic_load_n(&timeline_running, __ATOMIC_RELAXED));
}

static void
sleep_ms(unsigned ms) {
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void
test_shorter_interval(void **state) {
	(void)state;
	skip_without_stats();
	char path[300];
	snprintf(path, sizeof(path), "%s/b.json", dir);
	assert_int_equal(timeline_path_set(path), 0);
	assert_int_equal(timeline_interval_ms_set(100000), 0);
	assert_int_equal(timeline_start(), 0);
	sleep_ms(5);
	timeline_tick();
	assert_int_equal(read_lines(path, lines, 16), 1);
	assert_int_equal(timeline_interval_ms_set(1), 0);
	sleep_ms(5);
	timeline_tick();
	assert_int_equal(read_lines(path, lines, 16), 2);
	assert_int_equal(timeline_stop(), 0);
	assert_int_equal(read_lines(path, lines, 16), 3);
}

static volatile int ticking;

static void *
ticker(void *arg) {
	(void)arg;
	while (__atomic_load_n(&ticking, __ATOMIC_ACQUIRE)) {
		timeline_tick();
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static double
now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
test_concurrent_ticks(void **state) {
	(void)state;
	skip_without_stats();
	char path[300];
	snprintf(path, sizeof(path), "%s/c.json", dir);
	assert_int_equal(timeline_path_set(path), 0);
	assert_int_equal(timeline_interval_ms_set(1), 0);
	double start = now_ms();
	assert_int_equal(timeline_start(), 0);
	__atomic_store_n(&ticking, 1, __ATOMIC_RELEASE);
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, ticker, NULL), 0);
	}
	sleep_ms(200);
	assert_int_equal(timeline_flush(), 0);
	sleep_ms(100);
	__atomic_store_n(&ticking, 0, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
	}
	assert_int_equal(timeline_stop(), 0);
	double elapsed = now_ms() - start;
	int n = read_lines(path, lines, 2048);
	/* The first, at most one per ms (and the flush), the final one. */
	assert_true(n >= 3);
	if ((double)n > elapsed + 3) {
		fail_msg("%d lines in %.1f ms at 1 ms", n, elapsed);
	}
	for (int i = 0; i < n; i++) {
		assert_memory_equal(lines[i], "{\"time\":", 8);
		assert_string_equal(lines[i] + strlen(lines[i]) - 2, "]}");
		if (i > 0) {
			assert_true(line_epoch(lines[i]) > line_epoch(lines[i - 1]));
		}
	}
	printf("# %d lines in %.1f ms from 4 ticking threads at 1 ms\n", n, elapsed);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_and_lines),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_shorter_interval),
	    cmocka_unit_test(test_concurrent_ticks),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
