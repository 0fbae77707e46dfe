/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target "conf": the MALLOC_CONF parser (conf.h).
 *
 * Each input is used twice.
 *   1. As an options string (an exact-size, NUL-terminated copy, so ASan
 *      sees any read past its end), given to conf_parse(), or through the
 *      MALLOC_CONF variable to conf_apply_sources() when the first byte is
 *      odd. It must not crash; it warns exactly once per invalid piece it
 *      counts, on lines of printable ASCII; afterwards every option lies
 *      within its table range, and each option's value, written back as
 *      "name:value" (decimal, hexadecimal and octal for numbers, the name
 *      for enums), parses without a warning and leaves it unchanged; the
 *      opt.<name> mallctl reads the same value.
 *   2. Its first 10 bytes pick an option and a 64-bit value, written in
 *      decimal, hexadecimal or octal: the value is stored, without a
 *      warning, exactly when it lies in the option's range, and is
 *      otherwise refused with one warning, the option untouched.
 * The key "abort" is defused (to "abOrt") in the inputs: abort:true or
 * abort_conf:true would end the process at the next invalid piece, as
 * documented. Options are reset to their defaults after every input.
 */
#define FUZZ_TARGET "conf"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "alloc/internal/conf.h"
#include "alloc/internal/export.h"
#include "alloc/internal/opt.h"
#define ALLOC_PREFIXED_BUILD 1
#include "alloc.h"

#include "fuzz_driver.h"

#define MAX_OPTS 64

/* Messages: the number of lines, and whether all were printable. */
static unsigned msg_lines;
static bool msg_bad;
static char msg_last[1024];

static void
capture(void *cbopaque, const char *s) {
	(void)cbopaque;
	for (const char *c = s; *c != '\0'; c++) {
		if (*c == '\n') {
			msg_lines++;
		} else if (*c < 0x20 || *c > 0x7e) {
			msg_bad = true;
		}
	}
	snprintf(msg_last, sizeof(msg_last), "%s", s);
}

static void
msg_reset(void) {
	msg_lines = 0;
	msg_bad = false;
	msg_last[0] = '\0';
}

static void
fail(const char *what, const char *opts) {
	fprintf(stderr, "conf fuzz: %s\n  options: \"%s\"\n  last message: %s\n", what,
	        opts != NULL ? opts : "", msg_last);
	abort();
}

static int64_t defaults[MAX_OPTS];

/* Parses opts and checks the warnings against the count returned. */
static unsigned
parse(const char *opts, bool via_env) {
	msg_reset();
	unsigned n;
	if (via_env) {
		setenv("MALLOC_CONF", opts, 1);
		n = conf_apply_sources();
		unsetenv("MALLOC_CONF");
	} else {
		n = conf_parse(opts, "fuzz");
	}
	if (msg_lines != n) {
		fail("number of warning lines != number of invalid pieces", opts);
	}
	if (msg_bad) {
		fail("a warning holds an unprintable byte", opts);
	}
	return n;
}

/* Writes d's value in one of the syntaxes the parser takes. */
static void
format_value(const opt_desc_t *d, int64_t v, unsigned form, char *buf, size_t size) {
	if (d->type == OPT_TYPE_STRING) {
		/* The stored text itself (v is its length). */
		snprintf(buf, size, "%s:%s", d->name, (const char *)d->ptr);
	} else if (d->type == OPT_TYPE_BOOL) {
		snprintf(buf, size, "%s:%s", d->name, v ? "true" : "false");
	} else if (d->type == OPT_TYPE_ENUM) {
		snprintf(buf, size, "%s:%s", d->name, d->enum_names[v]);
	} else if (v < 0 || form % 3 == 0) {
		snprintf(buf, size, "%s:%" PRId64, d->name, v);
	} else if (form % 3 == 1) {
		snprintf(buf, size, "%s:0x%" PRIx64, d->name, (uint64_t)v);
	} else {
		snprintf(buf, size, "%s:0%" PRIo64, d->name, (uint64_t)v);
	}
}

/* Every option in range, written back unchanged, and read back by
 * mallctl opt.<name>. */
static void
check_options(const char *opts) {
	/* Room for a string option's longest text after its name. */
	char buf[OPT_STRING_MAX + 64];
	for (size_t i = 0; i < opt_table_len; i++) {
		const opt_desc_t *d = &opt_table[i];
		if (!config_prof && opt_is_prof(d->ptr)) {
			/* Not compiled in: warned about, ignored, ENOENT. */
			continue;
		}
		int64_t v = opt_value_get(d);
		/* A default may lie outside the range (narenas 0: "as many
		 * as the percpu mode wants"); it cannot be written back. */
		bool settable = v >= d->min && v <= d->max;
		if (!settable && v != defaults[i]) {
			snprintf(buf, sizeof(buf), "%s = %" PRId64 " is out of range", d->name, v);
			fail(buf, opts);
		}
		for (unsigned form = 0; settable && form < 3; form++) {
			format_value(d, v, form, buf, sizeof(buf));
			if (parse(buf, false) != 0 || opt_value_get(d) != v) {
				fail("a value does not round-trip", buf);
			}
		}
		snprintf(buf, sizeof(buf), "opt.%s", d->name);
		int64_t got;
		union {
			bool b;
			unsigned u;
			ssize_t ss;
			size_t sz;
			const char *name;
		} val;
		size_t len;
		switch (d->type) {
		case OPT_TYPE_BOOL:
			len = sizeof(val.b);
			break;
		case OPT_TYPE_UNSIGNED:
			len = sizeof(val.u);
			break;
		case OPT_TYPE_SSIZE:
			len = sizeof(val.ss);
			break;
		case OPT_TYPE_SIZE:
			len = sizeof(val.sz);
			break;
		default:
			len = sizeof(val.name);
			break;
		}
		if (ALLOC_API(mallctl)(buf, &val, &len, NULL, 0) != 0) {
			fail("mallctl opt.<name> failed", buf);
		}
		switch (d->type) {
		case OPT_TYPE_BOOL:
			got = val.b;
			break;
		case OPT_TYPE_UNSIGNED:
			got = val.u;
			break;
		case OPT_TYPE_SSIZE:
			got = val.ss;
			break;
		case OPT_TYPE_SIZE:
			got = (int64_t)val.sz;
			break;
		case OPT_TYPE_STRING:
			got = strcmp(val.name, (const char *)d->ptr) == 0 ? v : INT64_MIN;
			break;
		default:
			got = strcmp(val.name, d->enum_names[v]) == 0 ? v : INT64_MIN;
			break;
		}
		if (got != v) {
			fail("mallctl opt.<name> differs from the option", buf);
		}
	}
}

/* Part 2: one option, one value, in a form the input picks. */
static void
check_value(const uint8_t *data, size_t size) {
	if (size < 10) {
		return;
	}
	const opt_desc_t *d = &opt_table[data[0] % opt_table_len];
	if (d->type == OPT_TYPE_BOOL || d->type == OPT_TYPE_ENUM || d->type == OPT_TYPE_STRING ||
	    (!config_prof && opt_is_prof(d->ptr))) {
		return;
	}
	int64_t v;
	memcpy(&v, data + 2, sizeof(v));
	/* Mostly small values, near the ranges. */
	if ((data[1] & 0xc) != 0 && d->max < INT64_MAX / 8) {
		v %= 4 * (d->max + 2);
	}
	char buf[128];
	format_value(d, v, data[1], buf, sizeof(buf));
	int64_t before = opt_value_get(d);
	bool valid = v >= d->min && v <= d->max;
	unsigned n = parse(buf, false);
	if (valid && (n != 0 || opt_value_get(d) != v)) {
		fail("a value in range was not stored", buf);
	}
	if (!valid && (n != 1 || opt_value_get(d) != before)) {
		fail("a value out of range was not refused with one warning", buf);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static bool init;
	if (!init) {
		init = true;
		/* Start the allocator first (it reads the real sources once),
		 * so that mallctl works; then note the defaults. */
		size_t len = sizeof(bool);
		bool b;
		ALLOC_API(mallctl)("opt.abort", &b, &len, NULL, 0);
		conf_link_path = "/nonexistent/liballoc-fuzz/malloc.conf";
		ALLOC_NAME(malloc_message) = capture;
		if (opt_table_len > MAX_OPTS) {
			abort();
		}
		for (size_t i = 0; i < opt_table_len; i++) {
			defaults[i] = opt_value_get(&opt_table[i]);
		}
	}
	char *opts = malloc(size + 1);
	memcpy(opts, data, size);
	opts[size] = '\0';
	for (char *p = opts; (p = strstr(p, "abort")) != NULL; p += 5) {
		p[2] = 'O';
	}
	parse(opts, size > 0 && (data[0] & 1));
	check_options(opts);
	free(opts);
	check_value(data, size);
	for (size_t i = 0; i < opt_table_len; i++) {
		opt_value_set(&opt_table[i], defaults[i]);
	}
	return 0;
}
