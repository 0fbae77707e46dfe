/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the option table (opt.h, opt.c) and the MALLOC_CONF parser
 * and sources (conf.h, conf.c).
 *
 * Messages are captured by replacing malloc_message. For every option the
 * table lists: valid values (bounds, middle, hex and octal forms) are
 * stored without a warning; invalid ones (out of range by one, garbage,
 * signs, whitespace, overflow, wrong case) give exactly one warning naming
 * the source, the option and the value, and leave the option alone. Then
 * the exact ranges the options must have, unknown keys, malformed strings,
 * long and unprintable keys and values, the order of the four sources and
 * their names, enums, the build-time lg_chunk, the jemalloc 5 aliases, and
 * abort_conf / abort (in forked children). Every test starts from the
 * default option values.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/conf.h"
#include "alloc/internal/config.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/chunk.h"
#include "alloc/internal/background_thread.h"
#include "alloc/internal/base.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/export.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/opt.h"
#include "alloc/internal/prof.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/timeline.h"

/* malloc_message lives in message.c; the program's malloc_conf is this
 * strong definition, which replaces conf.c's weak one. */
extern void (*ALLOC_NAME(malloc_message))(void *cbopaque, const char *s);
const char *ALLOC_NAME(malloc_conf) = NULL;

#define SOURCE "test"
#define PREFIX "<liballoc>: " SOURCE ": "

/* ---------------------------------------------------------------------- */
/* Captured messages. */

static char cap_buf[1 << 16];
static size_t cap_len;

static void
capture(void *cbopaque, const char *s) {
	(void)cbopaque;
	size_t n = strlen(s);
	assert_true(cap_len + n < sizeof(cap_buf));
	memcpy(cap_buf + cap_len, s, n + 1);
	cap_len += n;
}

static void
cap_reset(void) {
	cap_len = 0;
	cap_buf[0] = '\0';
}

static unsigned
cap_lines(void) {
	unsigned n = 0;
	for (size_t i = 0; i < cap_len; i++) {
		n += cap_buf[i] == '\n';
	}
	return n;
}

/* Fails unless the capture holds `needle`, showing what it holds. */
static void
cap_expect(const char *needle) {
	if (strstr(cap_buf, needle) == NULL) {
		fail_msg("expected \"%s\" in the messages:\n%s", needle, cap_buf);
	}
}

/* ---------------------------------------------------------------------- */
/* Option values, read and written through the table. */

static const opt_desc_t *
opt(const char *name) {
	const opt_desc_t *d = opt_find(name, strlen(name));
	assert_non_null(d);
	return d;
}

#define TEST_MAX_OPTS 64
static int64_t test_defaults[TEST_MAX_OPTS];

static char test_link[256];
static const char *test_no_link = "/nonexistent/liballoc-unit-test/malloc.conf";

static int
setup(void **state) {
	(void)state;
	for (size_t i = 0; i < opt_table_len; i++) {
		opt_value_set(&opt_table[i], test_defaults[i]);
	}
	cap_reset();
	ALLOC_NAME(malloc_message) = capture;
	ALLOC_NAME(malloc_conf) = NULL;
	conf_link_path = test_no_link;
	unsetenv("MALLOC_CONF");
	return 0;
}

static int
teardown(void **state) {
	(void)state;
	if (test_link[0] != '\0') {
		unlink(test_link);
	}
	ALLOC_NAME(malloc_message) = NULL;
	return 0;
}

/*
 * Parses `s` as source "test" and checks that exactly `nwarn` warnings came
 * out, one line each, each starting with the prefix and the source name.
 */
static void
parse_expect(const char *s, unsigned nwarn) {
	cap_reset();
	unsigned n = conf_parse(s, SOURCE);
	if (n != nwarn || cap_lines() != nwarn) {
		fail_msg("\"%s\": %u errors, %u lines, expected %u:\n%s", s, n, cap_lines(), nwarn,
		         cap_buf);
	}
	for (const char *line = cap_buf; *line != '\0'; line = strchr(line, '\n') + 1) {
		assert_memory_equal(line, PREFIX, strlen(PREFIX));
	}
}

/* "name:value" into buf. */
static const char *
pair(char *buf, size_t size, const char *name, const char *value) {
	snprintf(buf, size, "%s:%s", name, value);
	return buf;
}

/* ---------------------------------------------------------------------- */
/* The table. */

/* What the table must say, option by option. */
static const struct {
	const char *name;
	opt_type_t type;
	void *ptr;
	int64_t min;
	int64_t max;
	bool build_time;
} test_expected_table[] = {
    {"abort", OPT_TYPE_BOOL, &opt_abort, 0, 1, false},
    {"abort_conf", OPT_TYPE_BOOL, &opt_abort_conf, 0, 1, false},
    {"confirm_conf", OPT_TYPE_BOOL, &opt_confirm_conf, 0, 1, false},
    {"narenas", OPT_TYPE_UNSIGNED, &opt_narenas, 1, 4096, false},
    {"percpu_arena", OPT_TYPE_ENUM, &opt_percpu_arena, 0, 2, false},
    {"percpu_arena_waits", OPT_TYPE_UNSIGNED, &opt_percpu_arena_waits, 0, UINT32_MAX, false},
    {"tcache", OPT_TYPE_BOOL, &opt_tcache, 0, 1, false},
    {"lg_tcache_max", OPT_TYPE_SIZE, &opt_lg_tcache_max, 0, LG_CHUNK - 1, false},
    {"stats_print", OPT_TYPE_BOOL, &opt_stats_print, 0, 1, false},
    {"stats_print_opts", OPT_TYPE_STRING, opt_stats_print_opts, 0, OPT_STRING_MAX, false},
    {"lg_chunk", OPT_TYPE_SIZE, NULL, LG_CHUNK, LG_CHUNK, true},
    {"dirty_decay_ms", OPT_TYPE_SSIZE, &opt_dirty_decay_ms, -1, DECAY_MS_MAX, false},
    {"muzzy_decay_ms", OPT_TYPE_SSIZE, &opt_muzzy_decay_ms, -1, DECAY_MS_MAX, false},
    {"lg_dirty_mult", OPT_TYPE_SSIZE, &opt_lg_dirty_mult, -1, 63, false},
    {"lg_dirty_bound", OPT_TYPE_SSIZE, &opt_lg_dirty_bound, -1, 63, false},
    {"purge", OPT_TYPE_ENUM, &opt_purge, 0, 1, false},
    {"purge_madvise", OPT_TYPE_ENUM, &opt_purge_madvise, 0, 1, false},
    {"retain", OPT_TYPE_BOOL, &opt_retain, 0, 1, false},
    {"max_bytes", OPT_TYPE_SIZE, &opt_max_bytes, 0, INT64_MAX, false},
    {"thp", OPT_TYPE_ENUM, &opt_thp, 0, 2, false},
    {"background_thread", OPT_TYPE_BOOL, &opt_background_thread, 0, 1, false},
    {"max_background_threads", OPT_TYPE_SIZE, &opt_max_background_threads, 1,
     BACKGROUND_THREADS_MAX, false},
    {"metadata_thp", OPT_TYPE_ENUM, &opt_metadata_thp, 0, 2, false},
    {"oversize_threshold", OPT_TYPE_SIZE, &opt_oversize_threshold, 0, (int64_t)SZ_HUGE_MAXCLASS,
     false},
    {"dss", OPT_TYPE_ENUM, NULL, 0, 0, false},
    {"zero_realloc", OPT_TYPE_ENUM, &opt_zero_realloc, 0, 2, false},
    {"junk", OPT_TYPE_ENUM, &opt_junk, 0, 3, false},
    {"zero", OPT_TYPE_BOOL, &opt_zero, 0, 1, false},
    {"redzone", OPT_TYPE_BOOL, &opt_redzone, 0, 1, false},
    {"quarantine", OPT_TYPE_SIZE, &opt_quarantine, 0, (int64_t)SZ_HUGE_MAXCLASS, false},
    {"xmalloc", OPT_TYPE_BOOL, &opt_xmalloc, 0, 1, false},
    {"stats_timeline", OPT_TYPE_STRING, opt_stats_timeline, 0, OPT_STRING_MAX, false},
    {"stats_interval_ms", OPT_TYPE_SIZE, &opt_stats_interval_ms, 1, 86400000, false},
    {"prof", OPT_TYPE_BOOL, &opt_prof, 0, 1, false},
    {"prof_prefix", OPT_TYPE_STRING, opt_prof_prefix, 0, OPT_STRING_MAX, false},
    {"prof_active", OPT_TYPE_BOOL, &opt_prof_active, 0, 1, false},
    {"prof_thread_active_init", OPT_TYPE_BOOL, &opt_prof_thread_active_init, 0, 1, false},
    {"lg_prof_sample", OPT_TYPE_SIZE, &opt_lg_prof_sample, 0, 62, false},
    {"prof_accum", OPT_TYPE_BOOL, &opt_prof_accum, 0, 1, false},
    {"lg_prof_interval", OPT_TYPE_SSIZE, &opt_lg_prof_interval, -1, 62, false},
    {"prof_gdump", OPT_TYPE_BOOL, &opt_prof_gdump, 0, 1, false},
    {"prof_final", OPT_TYPE_BOOL, &opt_prof_final, 0, 1, false},
    {"prof_leak", OPT_TYPE_BOOL, &opt_prof_leak, 0, 1, false},
    {"prof_format", OPT_TYPE_ENUM, &opt_prof_format, 0, 1, false},
};

static void
test_table(void **state) {
	(void)state;
	size_t n = sizeof(test_expected_table) / sizeof(test_expected_table[0]);
	assert_int_equal(opt_table_len, n);
	for (size_t i = 0; i < n; i++) {
		const opt_desc_t *d = &opt_table[i];
		assert_string_equal(d->name, test_expected_table[i].name);
		assert_int_equal(d->type, test_expected_table[i].type);
		if (test_expected_table[i].ptr != NULL) {
			assert_ptr_equal(d->ptr, test_expected_table[i].ptr);
		}
		assert_non_null(d->ptr);
		assert_true(d->min == test_expected_table[i].min);
		assert_true(d->max == test_expected_table[i].max);
		assert_int_equal(d->build_time, test_expected_table[i].build_time);
		if (d->type == OPT_TYPE_ENUM) {
			assert_non_null(d->enum_names);
			int64_t k = 0;
			while (d->enum_names[k] != NULL) {
				k++;
			}
			assert_true(k == d->max + 1);
		} else {
			assert_null(d->enum_names);
		}
		/* opt_find: exact names only, by length. */
		assert_ptr_equal(opt_find(d->name, strlen(d->name)), d);
		char buf[64];
		snprintf(buf, sizeof(buf), "%s:1", d->name);
		assert_ptr_equal(opt_find(buf, strlen(d->name)), d);
		assert_null(opt_find(buf, strlen(d->name) + 1));
		assert_null(opt_find(d->name, strlen(d->name) - 1));
		/* Names are unique. */
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(opt_table[j].name, d->name);
		}
	}
	assert_null(opt_find("", 0));
	assert_null(opt_find("pro", 3));
	assert_null(opt_find("prof_", 5));

	const opt_desc_t *d = opt("percpu_arena");
	assert_string_equal(d->enum_names[PERCPU_ARENA_PERCPU], "percpu");
	assert_string_equal(d->enum_names[PERCPU_ARENA_PHYCPU], "phycpu");
	assert_string_equal(d->enum_names[PERCPU_ARENA_DISABLED], "disabled");
	d = opt("purge");
	assert_string_equal(d->enum_names[PURGE_MODE_DECAY], "decay");
	assert_string_equal(d->enum_names[PURGE_MODE_RATIO], "ratio");

	/* Aliases name real options and do not shadow one. */
	assert_true(conf_aliases_len >= 1);
	for (size_t i = 0; i < conf_aliases_len; i++) {
		assert_non_null(opt_find(conf_aliases[i].target, strlen(conf_aliases[i].target)));
		assert_null(opt_find(conf_aliases[i].name, strlen(conf_aliases[i].name)));
	}
}

static void
test_defaults_documented(void **state) {
	(void)state;
	/* The defaults doc/options.md gives. */
	assert_false(opt_abort);
	assert_false(opt_abort_conf);
	assert_int_equal(opt_narenas, 0);
	assert_int_equal(opt_percpu_arena, PERCPU_ARENA_PERCPU);
	assert_true(opt_tcache);
	assert_int_equal(opt_lg_tcache_max, 15);
	assert_false(opt_stats_print);
	assert_true(opt_value_get(opt("lg_chunk")) == LG_CHUNK);
	assert_true(opt_dirty_decay_ms == 10000);
	assert_true(opt_muzzy_decay_ms == 0);
	assert_true(opt_lg_dirty_mult == 3);
	assert_true(opt_lg_dirty_bound == -1);
	assert_int_equal(opt_purge, PURGE_MODE_DECAY);
	assert_true(opt_max_bytes == 0);
	/* Every default is in range, except narenas' internal 0 ("choose"). */
	for (size_t i = 0; i < opt_table_len; i++) {
		const opt_desc_t *d = &opt_table[i];
		int64_t v = opt_value_get(d);
		if (strcmp(d->name, "narenas") == 0) {
			continue;
		}
		assert_true(v >= d->min && v <= d->max);
	}
}

/* ---------------------------------------------------------------------- */
/* Every option, driven by the table. */

/* Parses name:text, expects no warning and the value v stored. */
static void
expect_valid(const opt_desc_t *d, const char *text, int64_t v) {
	char buf[128];
	setup(NULL);
	parse_expect(pair(buf, sizeof(buf), d->name, text), 0);
	if (opt_value_get(d) != v) {
		fail_msg("%s: stored %lld, expected %lld", buf, (long long)opt_value_get(d),
		         (long long)v);
	}
}

/* Parses name:text, expects one warning naming option and value, and the
 * option unchanged. */
static void
expect_invalid(const opt_desc_t *d, const char *text) {
	char buf[256];
	char quoted[160];
	setup(NULL);
	int64_t before = opt_value_get(d);
	parse_expect(pair(buf, sizeof(buf), d->name, text), 1);
	snprintf(quoted, sizeof(quoted), "invalid value \"%s\" for option %s (", text, d->name);
	cap_expect(quoted);
	assert_true(opt_value_get(d) == before);
}

static void
test_every_option_valid(void **state) {
	(void)state;
	char num[64];
	for (size_t i = 0; i < opt_table_len; i++) {
		const opt_desc_t *d = &opt_table[i];
		if (!config_fill && fill_option_is_fill(d->ptr)) {
			/* Warned about and ignored (test_enums). */
			continue;
		}
		if (!config_prof && opt_is_prof(d->ptr)) {
			/* Likewise (test_prof_options). */
			continue;
		}
		switch (d->type) {
		case OPT_TYPE_BOOL:
			expect_valid(d, "true", 1);
			expect_valid(d, "false", 0);
			break;
		case OPT_TYPE_STRING: {
			/* Any text up to max bytes, stored as given; "" too. */
			static const char *const texts[] = {"/tmp/x.%p.json", "", "a:b", " 1",
			                                    "true"};
			for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
				expect_valid(d, texts[k], (int64_t)strlen(texts[k]));
				assert_string_equal((const char *)d->ptr, texts[k]);
			}
			char longest[OPT_STRING_MAX + 80];
			setup(NULL);
			snprintf(longest, sizeof(longest), "%s:", d->name);
			size_t klen = strlen(longest);
			memset(longest + klen, 'x', (size_t)d->max);
			longest[klen + (size_t)d->max] = '\0';
			parse_expect(longest, 0);
			assert_true(opt_value_get(d) == d->max);
			break;
		}
		case OPT_TYPE_ENUM:
			for (int64_t k = 0; d->enum_names[k] != NULL; k++) {
				expect_valid(d, d->enum_names[k], k);
			}
			break;
		default: {
			int64_t vals[] = {d->min, d->max, d->min + (d->max - d->min) / 2};
			for (size_t k = 0; k < 3; k++) {
				snprintf(num, sizeof(num), "%lld", (long long)vals[k]);
				expect_valid(d, num, vals[k]);
			}
			/* The same number in hex and octal. */
			snprintf(num, sizeof(num), "0x%llx", (unsigned long long)d->max);
			expect_valid(d, num, d->max);
			snprintf(num, sizeof(num), "0X%llX", (unsigned long long)d->max);
			expect_valid(d, num, d->max);
			snprintf(num, sizeof(num), "0%llo", (unsigned long long)d->max);
			expect_valid(d, num, d->max);
			if (d->min < 0) {
				snprintf(num, sizeof(num), "-0x%llx", (unsigned long long)-d->min);
				expect_valid(d, num, d->min);
			}
			break;
		}
		}
	}
}

static void
test_every_option_invalid(void **state) {
	(void)state;
	static const char *const common[] = {
	    "", "garbage", " 1", "1 ", "+1", "1x", "\t", "true1", "0x", "-", "--1",
	};
	char num[64];
	for (size_t i = 0; i < opt_table_len; i++) {
		const opt_desc_t *d = &opt_table[i];
		if (d->type == OPT_TYPE_STRING) {
			/* Every text is valid except one over max bytes. */
			char toolong[OPT_STRING_MAX + 80];
			setup(NULL);
			snprintf(toolong, sizeof(toolong), "%s:", d->name);
			size_t klen = strlen(toolong);
			memset(toolong + klen, 'y', (size_t)d->max + 1);
			toolong[klen + (size_t)d->max + 1] = '\0';
			int64_t before = opt_value_get(d);
			parse_expect(toolong, 1);
			char msg[128];
			snprintf(msg, sizeof(msg), "for option %s (expected at most %lld bytes)",
			         d->name, (long long)d->max);
			cap_expect(msg);
			/* Unchanged (prof_prefix's default is not empty). */
			assert_true(opt_value_get(d) == before);
			continue;
		}
		for (size_t k = 0; k < sizeof(common) / sizeof(common[0]); k++) {
			if (strchr(common[k], '\t') != NULL) {
				/* Shown escaped; checked in test_malformed. */
				setup(NULL);
				char buf[64];
				parse_expect(pair(buf, sizeof(buf), d->name, common[k]), 1);
				continue;
			}
			expect_invalid(d, common[k]);
		}
		switch (d->type) {
		case OPT_TYPE_BOOL:
			expect_invalid(d, "1");
			expect_invalid(d, "0");
			expect_invalid(d, "TRUE");
			expect_invalid(d, "False");
			expect_invalid(d, "yes");
			expect_invalid(d, "on");
			break;
		case OPT_TYPE_ENUM:
			for (int64_t k = 0; d->enum_names[k] != NULL; k++) {
				char up[32];
				snprintf(up, sizeof(up), "%s", d->enum_names[k]);
				up[0] = (char)(up[0] - 'a' + 'A');
				expect_invalid(d, up);
				snprintf(up, sizeof(up), "%sx", d->enum_names[k]);
				expect_invalid(d, up);
				snprintf(num, sizeof(num), "%lld", (long long)k);
				expect_invalid(d, num);
			}
			break;
		default:
			snprintf(num, sizeof(num), "%lld", (long long)d->min - 1);
			expect_invalid(d, num);
			snprintf(num, sizeof(num), "%llu", (unsigned long long)d->max + 1);
			expect_invalid(d, num);
			snprintf(num, sizeof(num), "0x%llx", (unsigned long long)d->max + 1);
			expect_invalid(d, num);
			expect_invalid(d, "08");
			expect_invalid(d, "0x1g");
			expect_invalid(d, "1.0");
			expect_invalid(d, "1e3");
			/* Overflows uint64_t / int64_t. */
			expect_invalid(d, "18446744073709551616");
			expect_invalid(d, "99999999999999999999999999");
			expect_invalid(d, "0xffffffffffffffffff");
			expect_invalid(d, "9223372036854775808");
			if (d->type == OPT_TYPE_SSIZE) {
				expect_invalid(d, "-9223372036854775808");
				expect_invalid(d, "-9223372036854775809");
			} else {
				/* No sign at all on unsigned options. */
				expect_invalid(d, "-1");
				expect_invalid(d, "-0");
			}
			break;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Specific options. */

static void
test_ranges(void **state) {
	(void)state;
	parse_expect("narenas:abc", 1);
	assert_string_equal(cap_buf, PREFIX "invalid value \"abc\" for option narenas (expected an "
	                                    "unsigned integer in [1, 4096])\n");

	parse_expect("narenas:0", 1);
	assert_int_equal(opt_narenas, 0);
	parse_expect("narenas:4097", 1);
	parse_expect("narenas:1", 0);
	assert_int_equal(opt_narenas, 1);
	parse_expect("narenas:4096", 0);
	assert_int_equal(opt_narenas, 4096);
	assert_int_equal(ARENAS_MAX, 4096);
	parse_expect("narenas:0x10", 0);
	assert_int_equal(opt_narenas, 16);
	parse_expect("narenas:010", 0);
	assert_int_equal(opt_narenas, 8);
	parse_expect("narenas:0X1f", 0);
	assert_int_equal(opt_narenas, 31);
	parse_expect("narenas:00", 1);
	assert_int_equal(opt_narenas, 31);

	char buf[64];
	snprintf(buf, sizeof(buf), "lg_tcache_max:%d", LG_CHUNK - 1);
	parse_expect(buf, 0);
	assert_int_equal(opt_lg_tcache_max, LG_CHUNK - 1);
	snprintf(buf, sizeof(buf), "lg_tcache_max:%d", LG_CHUNK);
	parse_expect(buf, 1);
	parse_expect("lg_tcache_max:0", 0);
	assert_int_equal(opt_lg_tcache_max, 0);

	/* decay_time (4.x) sets dirty_decay_ms in seconds. */
	parse_expect("decay_time:-1", 0);
	assert_true(opt_dirty_decay_ms == -1);
	parse_expect("decay_time:0", 0);
	assert_true(opt_dirty_decay_ms == 0);
	parse_expect("decay_time:-0", 0);
	assert_true(opt_dirty_decay_ms == 0);
	parse_expect("decay_time:2147483647", 0);
	assert_true(opt_dirty_decay_ms == DECAY_MS_MAX);
	parse_expect("decay_time:2147483648", 1);
	parse_expect("decay_time:-2", 1);
	cap_expect("(alias of dirty_decay_ms in whole seconds: expected an integer in [-1, "
	           "2147483647])");
	assert_true(opt_dirty_decay_ms == DECAY_MS_MAX);
	parse_expect("muzzy_decay_ms:-1", 0);
	assert_true(opt_muzzy_decay_ms == -1);
	parse_expect("muzzy_decay_ms:2500", 0);
	assert_true(opt_muzzy_decay_ms == 2500);
	parse_expect("muzzy_decay_ms:-2", 1);
	cap_expect("(expected an integer in [-1, 2147483647000])");
	assert_true(opt_muzzy_decay_ms == 2500);

	parse_expect("lg_dirty_mult:-1", 0);
	assert_true(opt_lg_dirty_mult == -1);
	parse_expect("lg_dirty_mult:63", 0);
	assert_true(opt_lg_dirty_mult == 63);
	parse_expect("lg_dirty_mult:64", 1);
	parse_expect("lg_dirty_mult:-2", 1);

	parse_expect("lg_dirty_bound:6", 0);
	assert_true(opt_lg_dirty_bound == 6);
	parse_expect("lg_dirty_bound:-1", 0);
	assert_true(opt_lg_dirty_bound == -1);
	parse_expect("lg_dirty_bound:64", 1);
	parse_expect("lg_dirty_bound:-2", 1);

	parse_expect("tcache:false,stats_print:true,abort_conf:false", 0);
	assert_false(opt_tcache);
	assert_true(opt_stats_print);
}

static void
test_enums(void **state) {
	(void)state;
	parse_expect("percpu_arena:phycpu", 0);
	assert_int_equal(opt_percpu_arena, PERCPU_ARENA_PHYCPU);
	parse_expect("percpu_arena:disabled", 0);
	assert_int_equal(opt_percpu_arena, PERCPU_ARENA_DISABLED);
	parse_expect("percpu_arena:percpu", 0);
	assert_int_equal(opt_percpu_arena, PERCPU_ARENA_PERCPU);
	parse_expect("percpu_arena:per_phycpu", 1);
	cap_expect("(expected one of percpu, phycpu, disabled)");
	assert_int_equal(opt_percpu_arena, PERCPU_ARENA_PERCPU);

	parse_expect("purge:ratio", 0);
	assert_int_equal(opt_purge, PURGE_MODE_RATIO);
	parse_expect("purge:decay", 0);
	assert_int_equal(opt_purge, PURGE_MODE_DECAY);
	parse_expect("purge:Ratio", 1);
	assert_string_equal(cap_buf, PREFIX "invalid value \"Ratio\" for option purge (expected "
	                                    "one of decay, ratio)\n");
	assert_int_equal(opt_purge, PURGE_MODE_DECAY);

	/* opt.junk: jemalloc 4's four values. With --disable-fill every fill
	 * option parses but warns and is ignored. */
	if (config_fill) {
		parse_expect("junk:alloc", 0);
		assert_int_equal(opt_junk, FILL_JUNK_ALLOC);
		parse_expect("junk:free", 0);
		assert_int_equal(opt_junk, FILL_JUNK_FREE);
		parse_expect("junk:true", 0);
		assert_int_equal(opt_junk, FILL_JUNK_TRUE);
		parse_expect("junk:false", 0);
		assert_int_equal(opt_junk, FILL_JUNK_FALSE);
		parse_expect("junk:1", 1);
		assert_string_equal(cap_buf, PREFIX "invalid value \"1\" for option junk (expected "
		                                    "one of false, true, alloc, free)\n");
	} else {
		parse_expect("junk:true", 1);
		assert_string_equal(cap_buf, PREFIX "option junk is not compiled in (configure "
		                                    "--disable-fill), ignored\n");
		assert_int_equal(opt_junk, FILL_JUNK_FALSE);
	}
}

/* The profiling options: parsed in every build, stored only in
 * --enable-prof builds (elsewhere warned about and ignored). */
static void
test_prof_options(void **state) {
	(void)state;
	if (!config_prof) {
		parse_expect("prof:true", 1);
		assert_string_equal(cap_buf,
		                    PREFIX "option prof is not compiled in (heap profiling "
		                           "needs configure --enable-prof), ignored\n");
		assert_false(opt_prof);
		parse_expect("prof_prefix:/tmp/x", 1);
		cap_expect("option prof_prefix is not compiled in");
		assert_string_equal(opt_prof_prefix, "jeprof");
		/* A bad value is still reported as one. */
		parse_expect("lg_prof_sample:63", 1);
		cap_expect("invalid value \"63\" for option lg_prof_sample");
		return;
	}
	parse_expect("prof:true,lg_prof_sample:10,prof_format:pprof,prof_prefix:/tmp/a b", 0);
	assert_true(opt_prof);
	assert_int_equal(opt_lg_prof_sample, 10);
	assert_int_equal(opt_prof_format, PROF_FORMAT_PPROF);
	assert_string_equal(opt_prof_prefix, "/tmp/a b");
	parse_expect("prof_prefix:", 0);
	assert_string_equal(opt_prof_prefix, "");
	char buf[PROF_PREFIX_MAX + 32];
	int n = snprintf(buf, sizeof(buf), "prof_prefix:");
	memset(buf + n, 'x', PROF_PREFIX_MAX);
	buf[n + PROF_PREFIX_MAX] = '\0';
	parse_expect(buf, 1);
	cap_expect("for option prof_prefix (expected at most 255 bytes)");
	assert_string_equal(opt_prof_prefix, "");
	parse_expect("prof_prefix:jeprof", 0);
	parse_expect("prof_format:jeprof", 0);
	parse_expect("lg_prof_sample:19,prof:false", 0);
}

static void
test_build_time(void **state) {
	(void)state;
	const opt_desc_t *d = opt("lg_chunk");
	char buf[64];
	char msg[160];
	snprintf(buf, sizeof(buf), "lg_chunk:%d", LG_CHUNK);
	parse_expect(buf, 0);
	snprintf(buf, sizeof(buf), "lg_chunk:0x%x", LG_CHUNK);
	parse_expect(buf, 0);
	snprintf(msg, sizeof(msg),
	         "for option lg_chunk (fixed at build time by configure --with-lg-chunk: only %d "
	         "is accepted)\n",
	         LG_CHUNK);
	int bad[] = {LG_CHUNK - 1, LG_CHUNK + 1, 0, 30};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i] == LG_CHUNK) {
			continue;
		}
		snprintf(buf, sizeof(buf), "lg_chunk:%d", bad[i]);
		parse_expect(buf, 1);
		cap_expect(msg);
		assert_true(opt_value_get(d) == LG_CHUNK);
	}
	parse_expect("lg_chunk:big", 1);
	cap_expect("invalid value \"big\" for option lg_chunk (fixed at build time");
	assert_true(opt_value_get(d) == LG_CHUNK);
}

static void
test_aliases(void **state) {
	(void)state;
	/* dirty_decay_ms is the option; decay_time (seconds) and decay_ms
	 * (the jemalloc-sys README's spelling) set it too. */
	parse_expect("dirty_decay_ms:2500", 0);
	assert_true(opt_dirty_decay_ms == 2500);
	parse_expect("decay_time:5", 0);
	assert_true(opt_dirty_decay_ms == 5000);
	parse_expect("decay_ms:30000", 0);
	assert_true(opt_dirty_decay_ms == 30000);
	parse_expect("decay_ms:-1", 0);
	assert_true(opt_dirty_decay_ms == -1);
	parse_expect("decay_ms:1", 0);
	assert_true(opt_dirty_decay_ms == 1);
	parse_expect("decay_time:10", 0);

	parse_expect("decay_ms:-2", 1);
	assert_string_equal(cap_buf, PREFIX "invalid value \"-2\" for option decay_ms (alias "
	                                    "of dirty_decay_ms: expected an integer in [-1, "
	                                    "2147483647000])\n");
	const char *bad_ms[] = {"-2", "-1000", "2147483648000", "abc", "", "1000 "};
	for (size_t i = 0; i < sizeof(bad_ms) / sizeof(bad_ms[0]); i++) {
		char buf[64];
		parse_expect(pair(buf, sizeof(buf), "decay_ms", bad_ms[i]), 1);
		cap_expect("for option decay_ms (alias of dirty_decay_ms");
		assert_true(opt_dirty_decay_ms == 10000);
		parse_expect(pair(buf, sizeof(buf), "decay_time", bad_ms[i]), 1);
		cap_expect("for option decay_time (alias of dirty_decay_ms in whole seconds");
		assert_true(opt_dirty_decay_ms == 10000);
	}

	parse_expect("tcache_max:4096", 0);
	assert_int_equal(opt_lg_tcache_max, 12);
	parse_expect("tcache_max:1", 0);
	assert_int_equal(opt_lg_tcache_max, 0);
	parse_expect("tcache_max:0x8000", 0);
	assert_int_equal(opt_lg_tcache_max, 15);
	char buf[64];
	snprintf(buf, sizeof(buf), "tcache_max:%zu", (size_t)1 << (LG_CHUNK - 1));
	parse_expect(buf, 0);
	assert_int_equal(opt_lg_tcache_max, LG_CHUNK - 1);
	snprintf(buf, sizeof(buf), "tcache_max:%zu", (size_t)1 << LG_CHUNK);
	parse_expect(buf, 1);
	cap_expect("for option tcache_max (alias of lg_tcache_max");
	const char *bad_sz[] = {"3000", "0", "-4096", "x", "4097"};
	for (size_t i = 0; i < sizeof(bad_sz) / sizeof(bad_sz[0]); i++) {
		parse_expect(pair(buf, sizeof(buf), "tcache_max", bad_sz[i]), 1);
		cap_expect("expected a power of two in [1, ");
		assert_int_equal(opt_lg_tcache_max, LG_CHUNK - 1);
	}
}

/* ---------------------------------------------------------------------- */
/* Syntax. */

static void
test_unknown_keys(void **state) {
	(void)state;
	parse_expect("foo:1", 1);
	assert_string_equal(cap_buf, PREFIX "unknown option \"foo\" (value \"1\")\n");
	const char *unknown[] = {"NARENAS:2",   "narena:2",      "narenas_:2",  "narenas2:2",
	                         "prof_x:true", "muzzy_decay:0", "lg_chunk_:21"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		parse_expect(unknown[i], 1);
		cap_expect("unknown option \"");
	}
	assert_int_equal(opt_narenas, 0);
	/* The good pairs around an unknown one still apply. */
	parse_expect("narenas:3,bogus:x,tcache:false", 1);
	cap_expect("unknown option \"bogus\" (value \"x\")");
	assert_int_equal(opt_narenas, 3);
	assert_false(opt_tcache);
}

static void
test_malformed(void **state) {
	(void)state;
	parse_expect(NULL, 0);
	parse_expect("", 0);

	parse_expect("narenas", 1);
	cap_expect("malformed option \"narenas\" (expected key:value");
	parse_expect(":1", 1);
	cap_expect("malformed option \":1\"");
	parse_expect(":", 1);
	parse_expect("a:1,,b:2", 3);
	cap_expect("unknown option \"a\"");
	cap_expect("empty option at offset 4");
	cap_expect("unknown option \"b\"");

	parse_expect("narenas:2,,tcache:false", 1);
	assert_int_equal(opt_narenas, 2);
	assert_false(opt_tcache);
	parse_expect("narenas:5,", 1);
	assert_string_equal(cap_buf, PREFIX "options end with a comma\n");
	assert_int_equal(opt_narenas, 5);
	parse_expect(",narenas:6", 1);
	cap_expect("empty option at offset 0");
	assert_int_equal(opt_narenas, 6);
	parse_expect(",", 2);
	parse_expect(",,", 3);

	/* Whitespace is an error wherever it is. */
	parse_expect("narenas: 2", 1);
	cap_expect("invalid value \" 2\" for option narenas");
	parse_expect(" narenas:2", 1);
	cap_expect("malformed option \" narenas:2\"");
	parse_expect("narenas :2", 1);
	parse_expect("narenas:2 ", 1);
	parse_expect("tcache:false, narenas:2", 1);
	parse_expect("narenas:2\n", 1);
	cap_expect("invalid value \"2\\x0a\" for option narenas");
	parse_expect("narenas:7\t", 1);
	assert_int_equal(opt_narenas, 6);

	parse_expect("narenas:1:2", 1);
	cap_expect("invalid value \"1:2\"");
	parse_expect("tcache:\"true\"", 1);
	cap_expect("invalid value \"\\\"true\\\"\" for option tcache");
	parse_expect("na-renas:1", 1);
	parse_expect("narenas:\xff", 1);
	cap_expect("invalid value \"\\xff\"");
	parse_expect("k\x01:1", 1);
	cap_expect("malformed option \"k\\x01:1\"");
}

static void
test_long(void **state) {
	(void)state;
	static char s[40000];
	/* A 10,000-byte key, then a good pair. */
	memset(s, 'k', 10000);
	strcpy(s + 10000, ":1,narenas:3");
	parse_expect(s, 1);
	assert_true(cap_len < 300);
	cap_expect("unknown option \"kkkkkkkk");
	cap_expect("...\" (value \"1\")");
	assert_int_equal(opt_narenas, 3);

	/* A 10,000-digit value. */
	strcpy(s, "narenas:");
	memset(s + 8, '9', 10000);
	s[10008] = '\0';
	parse_expect(s, 1);
	assert_true(cap_len < 300);
	cap_expect("99...\" for option narenas");
	assert_int_equal(opt_narenas, 3);

	/* Leading zeros do not overflow. */
	strcpy(s, "narenas:");
	memset(s + 8, '0', 5000);
	strcpy(s + 5008, "7");
	parse_expect(s, 0);
	assert_int_equal(opt_narenas, 7);

	/* 2,000 pairs. */
	size_t n = 0;
	for (int i = 0; i < 2000; i++) {
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%snarenas:%d", i ? "," : "", i + 1);
	}
	parse_expect(s, 0);
	assert_int_equal(opt_narenas, 2000);

	/* Unprintable bytes everywhere stay on one line each. */
	for (int i = 0; i < 255; i++) {
		s[i] = (char)(i + 1);
	}
	s[255] = '\0';
	cap_reset();
	unsigned errs = conf_parse(s, SOURCE);
	assert_int_equal(cap_lines(), errs);
	assert_true(errs >= 1);
}

/* ---------------------------------------------------------------------- */
/* Sources. */

/* The source tests assume no options built in with configure
 * --with-malloc-conf (they would add to every result). */
static void
skip_if_built_in_conf(void) {
	if (config_malloc_conf[0] != '\0') {
		print_message("# built with --with-malloc-conf=\"%s\": skipped\n",
		              config_malloc_conf);
		skip();
	}
}

static void
make_link(const char *target) {
	snprintf(test_link, sizeof(test_link), "/tmp/liballoc-conf-test.%ld", (long)getpid());
	unlink(test_link);
	assert_int_equal(symlink(target, test_link), 0);
	conf_link_path = test_link;
}

static void
test_order(void **state) {
	(void)state;
	skip_if_built_in_conf();
	/* Within a string and across strings, the later value wins. */
	parse_expect("narenas:2,narenas:5", 0);
	assert_int_equal(opt_narenas, 5);
	parse_expect("narenas:7", 0);
	assert_int_equal(opt_narenas, 7);
	parse_expect("narenas:8,narenas:bad", 1);
	assert_int_equal(opt_narenas, 8);

	/* The sources: built-in, program, link, environment. */
	assert_string_equal(conf_source_read(CONF_SOURCE_BUILD, NULL, 0), config_malloc_conf);
	assert_string_equal(conf_source_name(CONF_SOURCE_BUILD), "configure --with-malloc-conf");
	assert_string_equal(conf_source_name(CONF_SOURCE_PROGRAM), "unittest_malloc_conf");
	assert_string_equal(conf_source_name(CONF_SOURCE_ENV), "MALLOC_CONF");

	setup(NULL);
	ALLOC_NAME(malloc_conf) = "narenas:2,tcache:false,decay_time:5,lg_tcache_max:9";
	make_link("narenas:3,decay_time:6,lg_dirty_mult:4");
	setenv("MALLOC_CONF", "narenas:4,lg_tcache_max:11", 1);
	assert_string_equal(conf_source_name(CONF_SOURCE_LINK), test_link);
	cap_reset();
	assert_int_equal(conf_apply_sources(), 0);
	assert_int_equal(cap_len, 0);
	assert_int_equal(opt_narenas, 4);
	assert_false(opt_tcache);
	assert_true(opt_dirty_decay_ms == 6000);
	assert_true(opt_lg_dirty_mult == 4);
	assert_int_equal(opt_lg_tcache_max, 11);

	/* Without the environment the link wins; without it, the program. */
	setup(NULL);
	ALLOC_NAME(malloc_conf) = "narenas:2";
	make_link("narenas:3");
	assert_int_equal(conf_apply_sources(), 0);
	assert_int_equal(opt_narenas, 3);
	setup(NULL);
	ALLOC_NAME(malloc_conf) = "narenas:2";
	assert_int_equal(conf_apply_sources(), 0);
	assert_int_equal(opt_narenas, 2);

	/* Each warning names its source. */
	setup(NULL);
	ALLOC_NAME(malloc_conf) = "bogus:1";
	make_link("bogus:2");
	setenv("MALLOC_CONF", "bogus:3", 1);
	assert_int_equal(conf_apply_sources(), 3);
	char expect[512];
	snprintf(expect, sizeof(expect),
	         "<liballoc>: unittest_malloc_conf: unknown option \"bogus\" (value \"1\")\n"
	         "<liballoc>: %s: unknown option \"bogus\" (value \"2\")\n"
	         "<liballoc>: MALLOC_CONF: unknown option \"bogus\" (value \"3\")\n",
	         test_link);
	assert_string_equal(cap_buf, expect);
}

static void
test_link_source(void **state) {
	(void)state;
	skip_if_built_in_conf();
	char buf[64];
	/* Missing: nothing, and errno is kept. */
	assert_null(conf_source_read(CONF_SOURCE_LINK, buf, sizeof(buf)));
	errno = 4321;
	assert_int_equal(conf_apply_sources(), 0);
	assert_int_equal(errno, 4321);
	assert_int_equal(cap_len, 0);

	/* A plain file is not a link: no options. */
	snprintf(test_link, sizeof(test_link), "/tmp/liballoc-conf-test.%ld", (long)getpid());
	FILE *f = fopen(test_link, "w");
	assert_non_null(f);
	fputs("narenas:9", f);
	fclose(f);
	conf_link_path = test_link;
	assert_null(conf_source_read(CONF_SOURCE_LINK, buf, sizeof(buf)));
	unlink(test_link);

	/* A target that fills the buffer is refused with a warning. */
	make_link("narenas:12345678");
	assert_string_equal(conf_source_read(CONF_SOURCE_LINK, buf, 17), "narenas:12345678");
	cap_reset();
	assert_null(conf_source_read(CONF_SOURCE_LINK, buf, 16));
	assert_int_equal(cap_lines(), 1);
	cap_expect("link target longer than 15 bytes");

	/* The empty environment variable is fine. */
	setenv("MALLOC_CONF", "", 1);
	make_link("tcache:false");
	cap_reset();
	assert_int_equal(conf_apply_sources(), 0);
	assert_false(opt_tcache);
}

/* ---------------------------------------------------------------------- */
/* abort_conf and abort, in children. */

/* Runs fn in a child with stderr (and malloc_message) going to a pipe;
 * returns its wait status and leaves its stderr in cap_buf. */
static int
run_child(void (*fn)(void)) {
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		ALLOC_NAME(malloc_message) = NULL;
		fn();
		_exit(0);
	}
	close(fds[1]);
	cap_reset();
	ssize_t n;
	while ((n = read(fds[0], cap_buf + cap_len, sizeof(cap_buf) - 1 - cap_len)) > 0) {
		cap_len += (size_t)n;
	}
	cap_buf[cap_len] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
child_abort_conf_first(void) {
	conf_parse("abort_conf:true,narenas:abc,narenas:5", "MALLOC_CONF");
}

static void
child_abort_first(void) {
	conf_parse("abort:true,bogus:1,narenas:5", "MALLOC_CONF");
}

static void
child_abort_conf_later(void) {
	setenv("MALLOC_CONF", "narenas:abc,abort_conf:true,narenas:5", 1);
	conf_apply_sources();
}

static void
child_abort_conf_clean(void) {
	setenv("MALLOC_CONF", "abort_conf:true,narenas:5", 1);
	if (conf_apply_sources() != 0 || opt_narenas != 5) {
		_exit(3);
	}
}

static void
child_no_abort(void) {
	setenv("MALLOC_CONF", "narenas:abc,narenas:5", 1);
	if (conf_apply_sources() != 1 || opt_narenas != 5) {
		_exit(3);
	}
}

static void
expect_abort(int status) {
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
		fail_msg("expected SIGABRT, got status 0x%x; stderr:\n%s", status, cap_buf);
	}
}

static void
test_abort_conf(void **state) {
	(void)state;
	skip_if_built_in_conf();
	int status = run_child(child_abort_conf_first);
	expect_abort(status);
	assert_string_equal(cap_buf, "<liballoc>: MALLOC_CONF: invalid value \"abc\" for option "
	                             "narenas (expected an unsigned integer in [1, 4096])\n");

	status = run_child(child_abort_first);
	expect_abort(status);
	assert_string_equal(cap_buf,
	                    "<liballoc>: MALLOC_CONF: unknown option \"bogus\" (value \"1\")\n");

	/* abort_conf set after the bad pair: abort once every source is read. */
	status = run_child(child_abort_conf_later);
	expect_abort(status);
	assert_int_equal(cap_lines(), 2);
	cap_expect("<liballoc>: MALLOC_CONF: invalid value \"abc\" for option narenas");
	cap_expect("<liballoc>: aborting: 1 invalid option (see above) and abort_conf:true\n");

	status = run_child(child_abort_conf_clean);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(cap_len, 0);

	status = run_child(child_no_abort);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(cap_lines(), 1);
}

int
main(void) {
	assert_true(opt_table_len <= TEST_MAX_OPTS);
	for (size_t i = 0; i < opt_table_len; i++) {
		test_defaults[i] = opt_value_get(&opt_table[i]);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults_documented, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_option_valid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_option_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_build_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prof_options, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_source, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_conf, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
