/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Configuration (see conf.h): reads the four option sources at start-up,
 * parses jemalloc's "key:value,..." syntax, validates every value against
 * opt_table and stores it, and warns once about every piece it rejects.
 *
 * It owns the exported malloc_conf global (a weak NULL that a program's own
 * definition replaces) and the jemalloc 5 alias table. It runs inside the
 * first allocation of the process, so it allocates nothing: no stdio, no
 * strdup, no strtol locale machinery; the link target is read into a stack
 * buffer and messages go through message.h.
 */
#include "alloc/internal/conf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "alloc/internal/config.h"
#include "alloc/internal/export.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/message.h"
#include "alloc/internal/opt.h"
#include "alloc/internal/util.h"

/*
 * Options a program compiles in (jemalloc's malloc_conf). Weak, so that a
 * program's own `const char *malloc_conf = "...";` takes its place: when
 * the program links with -lalloc (shared or static), its definition wins.
 * Under LD_PRELOAD the dynamic linker binds this name to the program's
 * definition only if the executable exports it in its dynamic symbol table
 * (it does when linked with -rdynamic, or against any library that
 * defines malloc_conf); otherwise liballoc sees its own NULL.
 */
ALLOC_EXPORT const char *ALLOC_NAME(malloc_conf) __attribute__((weak)) = NULL;

const char *conf_link_path = "/etc/malloc.conf";

const conf_alias_t conf_aliases[] = {
    /* jemalloc 4 counts the decay time of dirty pages in seconds. */
    {"decay_time", "dirty_decay_ms", CONF_ALIAS_MULTIPLY, 1000,
     "alias of dirty_decay_ms in whole seconds"},
    /* Not a jemalloc option, but the jemalloc-sys README's example
     * ("decay_ms:30000" for a decay time of 30 s): the decay time of dirty
     * pages, which is what that sentence means. */
    {"decay_ms", "dirty_decay_ms", CONF_ALIAS_SCALE, 1, "alias of dirty_decay_ms"},
    /* jemalloc 5 gives the largest cached size in bytes. */
    {"tcache_max", "lg_tcache_max", CONF_ALIAS_LOG2, 0,
     "alias of lg_tcache_max, the size being 2^lg_tcache_max"},
};

const size_t conf_aliases_len = ARRAY_SIZE(conf_aliases);

#define CONF_STR2(x) #x
#define CONF_STR(x)  CONF_STR2(x)

const char *
conf_source_name(conf_source_t source) {
	switch (source) {
	case CONF_SOURCE_BUILD:
		return "configure --with-malloc-conf";
	case CONF_SOURCE_PROGRAM:
		return CONF_STR(ALLOC_NAME(malloc_conf));
	case CONF_SOURCE_LINK:
		return conf_link_path;
	case CONF_SOURCE_ENV:
		return "MALLOC_CONF";
	default:
		return "?";
	}
}

const char *
conf_source_read(conf_source_t source, char *buf, size_t size) {
	switch (source) {
	case CONF_SOURCE_BUILD:
		return config_malloc_conf;
	case CONF_SOURCE_PROGRAM:
		return ALLOC_NAME(malloc_conf);
	case CONF_SOURCE_LINK: {
		if (size == 0) {
			return NULL;
		}
		ssize_t n = readlink(conf_link_path, buf, size);
		if (n < 0) {
			/* No link (or not a link): no options. */
			return NULL;
		}
		if ((size_t)n >= size) {
			msg_warn("%s: link target longer than %zu bytes, ignored", conf_link_path,
			         size - 1);
			return NULL;
		}
		buf[n] = '\0';
		return buf;
	}
	case CONF_SOURCE_ENV:
		/* Like jemalloc: a set-user-ID program does not take tuning
		 * from whoever runs it. Neither getenv allocates. */
		return secure_getenv("MALLOC_CONF");
	default:
		return NULL;
	}
}

/* ---------------------------------------------------------------------- */
/* Warnings. */

/* Parsing state of one options string. */
typedef struct {
	const char *source;
	unsigned nerrors;
} conf_ctx_t;

/* How much of a key or value a warning quotes; the rest shows as "...". */
#define CONF_SHOW_MAX 64
/* Room for CONF_SHOW_MAX bytes shown as \xNN, the "..." and the NUL. */
#define CONF_SHOW_SIZE (CONF_SHOW_MAX * 4 + 4)

/*
 * Copies s[0, len) into buf (CONF_SHOW_SIZE bytes) for quoting in a
 * warning: at most CONF_SHOW_MAX bytes, '"' and '\' escaped, anything not
 * printable ASCII as \xNN, so the warning stays on one line.
 */
static const char *
conf_show(char *buf, const char *s, size_t len) {
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (i == CONF_SHOW_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 0xf];
		}
	}
	buf[o] = '\0';
	return buf;
}

/* Warns "<source>: <message>" and counts it; aborts when abort_conf is set
 * (msg_warn itself aborts when abort is). */
COLD __attribute__((format(printf, 2, 3))) static void
conf_error(conf_ctx_t *ctx, const char *fmt, ...) {
	char buf[900];
	va_list ap;
	va_start(ap, fmt);
	msg_vformat(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ctx->nerrors++;
	msg_warn("%s: %s", ctx->source, buf);
	if (opt_abort_conf) {
		abort();
	}
}

/* What option d accepts, for a warning ("an integer in [-1, 10]"). */
static void
conf_expected(const opt_desc_t *d, char *buf, size_t size) {
	switch (d->type) {
	case OPT_TYPE_BOOL:
		msg_format(buf, size, "true or false");
		break;
	case OPT_TYPE_UNSIGNED:
	case OPT_TYPE_SIZE:
		msg_format(buf, size, "an unsigned integer in [%lld, %lld]", (long long)d->min,
		           (long long)d->max);
		break;
	case OPT_TYPE_SSIZE:
		msg_format(buf, size, "an integer in [%lld, %lld]", (long long)d->min,
		           (long long)d->max);
		break;
	case OPT_TYPE_STRING:
		msg_format(buf, size, "at most %lld bytes", (long long)d->max);
		break;
	case OPT_TYPE_ENUM: {
		size_t n = msg_format(buf, size, "one of");
		for (size_t i = 0; d->enum_names[i] != NULL && n < size; i++) {
			n += msg_format(buf + n, size - n, "%s %s", i == 0 ? "" : ",",
			                d->enum_names[i]);
		}
		break;
	}
	default:
		msg_format(buf, size, "?");
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* Values. */

static bool
conf_equals(const char *s, size_t len, const char *word) {
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

static int
conf_digit(char c) {
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return 99;
}

/*
 * Parses s[0, len) as an integer in C syntax: decimal, 0x/0X hexadecimal,
 * or octal with a leading 0, preceded by '-' only when `sign` (signed
 * options). No whitespace, no '+', nothing after the digits. False on
 * anything else and when the number does not fit in int64_t.
 */
static bool
conf_parse_int(const char *s, size_t len, bool sign, int64_t *out) {
	size_t i = 0;
	bool neg = false;
	if (sign && len > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	unsigned base = 10;
	if (len - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
		base = 16;
		i += 2;
	} else if (len - i >= 2 && s[i] == '0') {
		base = 8;
		i += 1;
	}
	if (i == len) {
		return false;
	}
	uint64_t mag = 0;
	for (; i < len; i++) {
		unsigned d = (unsigned)conf_digit(s[i]);
		if (d >= base || mag > (UINT64_MAX - d) / base) {
			return false;
		}
		mag = mag * base + d;
	}
	if (neg) {
		if (mag > (uint64_t)INT64_MAX + 1) {
			return false;
		}
		*out = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
	} else {
		if (mag > (uint64_t)INT64_MAX) {
			return false;
		}
		*out = (int64_t)mag;
	}
	return true;
}

/* Converts the text of a value for option d; false unless it is valid and
 * in range. */
static bool
conf_value(const opt_desc_t *d, const char *v, size_t len, int64_t *out) {
	switch (d->type) {
	case OPT_TYPE_BOOL:
		if (conf_equals(v, len, "true")) {
			*out = 1;
		} else if (conf_equals(v, len, "false")) {
			*out = 0;
		} else {
			return false;
		}
		break;
	case OPT_TYPE_ENUM:
		for (int64_t i = 0;; i++) {
			if (d->enum_names[i] == NULL) {
				return false;
			}
			if (conf_equals(v, len, d->enum_names[i])) {
				*out = i;
				break;
			}
		}
		break;
	case OPT_TYPE_UNSIGNED:
	case OPT_TYPE_SIZE:
	case OPT_TYPE_SSIZE:
		if (!conf_parse_int(v, len, d->type == OPT_TYPE_SSIZE, out)) {
			return false;
		}
		break;
	case OPT_TYPE_STRING:
		/* Any text; conf_pair stores it. */
		*out = (int64_t)len;
		break;
	default:
		return false;
	}
	return *out >= d->min && *out <= d->max;
}

static const conf_alias_t *
conf_alias_find(const char *name, size_t len) {
	for (size_t i = 0; i < conf_aliases_len; i++) {
		if (conf_equals(name, len, conf_aliases[i].name)) {
			return &conf_aliases[i];
		}
	}
	return NULL;
}

/* Sets option d from the value of alias a; false if the value does not
 * convert exactly into d's range. */
static bool
conf_alias_value(const conf_alias_t *a, const opt_desc_t *d, const char *v, size_t len,
                 int64_t *out) {
	int64_t x;
	if (!conf_parse_int(v, len, d->type == OPT_TYPE_SSIZE, &x)) {
		return false;
	}
	switch (a->kind) {
	case CONF_ALIAS_SCALE:
		if (x >= 0) {
			if (x % a->scale != 0) {
				return false;
			}
			x /= a->scale;
		}
		break;
	case CONF_ALIAS_LOG2:
		if (x <= 0 || (x & (x - 1)) != 0) {
			return false;
		}
		x = (int64_t)ctz_u64((uint64_t)x);
		break;
	case CONF_ALIAS_MULTIPLY:
		if (x >= 0 && __builtin_mul_overflow(x, a->scale, &x)) {
			return false;
		}
		break;
	}
	*out = x;
	return x >= d->min && x <= d->max;
}

/* What alias a accepts, for a warning. */
static void
conf_alias_expected(const conf_alias_t *a, const opt_desc_t *d, char *buf, size_t size) {
	switch (a->kind) {
	case CONF_ALIAS_SCALE: {
		if (a->scale == 1) {
			msg_format(buf, size, "an integer in [%lld, %lld]", (long long)d->min,
			           (long long)d->max);
			break;
		}
		int64_t max = d->max > INT64_MAX / a->scale ? INT64_MAX : d->max * a->scale;
		if (d->min < 0) {
			msg_format(buf, size, "%lld or a multiple of %lld in [0, %lld]",
			           (long long)d->min, (long long)a->scale, (long long)max);
		} else {
			msg_format(buf, size, "a multiple of %lld in [%lld, %lld]",
			           (long long)a->scale, (long long)(d->min * a->scale),
			           (long long)max);
		}
		break;
	}
	case CONF_ALIAS_LOG2:
		msg_format(buf, size, "a power of two in [%llu, %llu]",
		           1ULL << (d->min < 63 ? d->min : 63),
		           1ULL << (d->max < 63 ? d->max : 63));
		break;
	case CONF_ALIAS_MULTIPLY:
		msg_format(buf, size, "an integer in [%lld, %lld]", (long long)d->min,
		           (long long)(d->max / a->scale));
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* Pairs. */

static bool
conf_is_key_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* Applies one "key:value" pair whose key has the right syntax. */
static void
conf_pair(conf_ctx_t *ctx, const char *k, size_t klen, const char *v, size_t vlen) {
	char kshow[CONF_SHOW_SIZE];
	char vshow[CONF_SHOW_SIZE];
	char expected[256];
	int64_t x;

	const opt_desc_t *d = opt_find(k, klen);
	if (d != NULL) {
		if (!conf_value(d, v, vlen, &x)) {
			if (d->build_time) {
				/* configure's option is named like this one, with
				 * dashes. */
				char flag[64];
				size_t n = msg_format(flag, sizeof(flag), "%s", d->name);
				for (size_t i = 0; i < n && i < sizeof(flag); i++) {
					flag[i] = flag[i] == '_' ? '-' : flag[i];
				}
				conf_error(
				    ctx,
				    "invalid value \"%s\" for option %s (fixed at build time by "
				    "configure --with-%s: only %lld is accepted)",
				    conf_show(vshow, v, vlen), d->name, flag, (long long)d->min);
			} else {
				conf_expected(d, expected, sizeof(expected));
				conf_error(ctx, "invalid value \"%s\" for option %s (expected %s)",
				           conf_show(vshow, v, vlen), d->name, expected);
			}
			return;
		}
		if (!config_fill && fill_option_is_fill(d->ptr)) {
			conf_error(
			    ctx, "option %s is not compiled in (configure --disable-fill), ignored",
			    d->name);
			return;
		}
		if (!config_prof && opt_is_prof(d->ptr)) {
			conf_error(ctx,
			           "option %s is not compiled in (heap profiling needs configure "
			           "--enable-prof), ignored",
			           d->name);
			return;
		}
		if (d->type == OPT_TYPE_STRING) {
			opt_string_set(d, v, vlen);
		} else if (!d->build_time) {
			opt_value_set(d, x);
		}
		return;
	}

	const conf_alias_t *a = conf_alias_find(k, klen);
	if (a != NULL) {
		const opt_desc_t *t = opt_find(a->target, strlen(a->target));
		if (t == NULL) {
			/* Only if the two tables disagree. */
			conf_error(ctx, "option %s is not available", a->name);
			return;
		}
		if (!conf_alias_value(a, t, v, vlen, &x)) {
			conf_alias_expected(a, t, expected, sizeof(expected));
			conf_error(ctx, "invalid value \"%s\" for option %s (%s: expected %s)",
			           conf_show(vshow, v, vlen), a->name, a->note, expected);
			return;
		}
		opt_value_set(t, x);
		return;
	}

	conf_error(ctx, "unknown option \"%s\" (value \"%s\")", conf_show(kshow, k, klen),
	           conf_show(vshow, v, vlen));
}

unsigned
conf_parse(const char *opts, const char *source) {
	conf_ctx_t ctx = {source, 0};
	if (opts == NULL || *opts == '\0') {
		return 0;
	}
	/* Every comma-separated piece, empty ones included. */
	const char *p = opts;
	for (;;) {
		const char *piece = p;
		while (*p != '\0' && *p != ',') {
			p++;
		}
		size_t len = (size_t)(p - piece);
		bool last = *p == '\0';
		size_t klen = 0;
		while (klen < len && conf_is_key_char(piece[klen])) {
			klen++;
		}
		if (len == 0) {
			if (last) {
				conf_error(&ctx, "options end with a comma");
			} else {
				conf_error(&ctx,
				           "empty option at offset %zu (a leading comma or two "
				           "commas in a row)",
				           (size_t)(piece - opts));
			}
		} else if (klen == 0 || klen == len || piece[klen] != ':') {
			char show[CONF_SHOW_SIZE];
			conf_error(&ctx,
			           "malformed option \"%s\" (expected key:value, the key made of "
			           "letters, digits and _, no spaces)",
			           conf_show(show, piece, len));
		} else {
			conf_pair(&ctx, piece, klen, piece + klen + 1, len - klen - 1);
		}
		if (last) {
			break;
		}
		p++;
	}
	return ctx.nerrors;
}

/*
 * The buffer conf_source_read reads the malloc.conf link into, for
 * conf_apply_sources and conf_confirm, which run at start-up under the init
 * lock (or in a single-threaded unit test). Static rather than on the
 * stack: PATH_MAX bytes there, mostly unwritten, would push every call made
 * below them, and so the deepest stack page the process ever touches, a
 * page or two further (doc/design.md, "Footprint").
 */
static char conf_link_buf[PATH_MAX];

/* opt.confirm_conf: every source that gave options, then every option's
 * value in force, one line each (jemalloc 5 prints the same facts). */
static NOINLINE void
conf_confirm(void) {
	char value[OPT_STRING_MAX + 8];
	for (int s = 0; s < CONF_NSOURCES; s++) {
		const char *opts =
		    conf_source_read((conf_source_t)s, conf_link_buf, sizeof(conf_link_buf));
		if (opts != NULL && *opts != '\0') {
			msg_printf("<liballoc>: options from %s: \"%s\"\n",
			           conf_source_name((conf_source_t)s), opts);
		}
	}
	for (size_t i = 0; i < opt_table_len; i++) {
		const opt_desc_t *d = &opt_table[i];
		int64_t v = opt_value_get(d);
		switch (d->type) {
		case OPT_TYPE_BOOL:
			msg_format(value, sizeof(value), "%s", v != 0 ? "true" : "false");
			break;
		case OPT_TYPE_ENUM:
			msg_format(value, sizeof(value), "%s", d->enum_names[v]);
			break;
		case OPT_TYPE_STRING:
			msg_format(value, sizeof(value), "\"%s\"", (const char *)d->ptr);
			break;
		default:
			msg_format(value, sizeof(value), "%lld", (long long)v);
			break;
		}
		msg_printf("<liballoc>: opt.%s: %s\n", d->name, value);
	}
}

unsigned
conf_apply_sources(void) {
	int saved_errno = errno;
	unsigned nerrors = 0;
	for (int s = 0; s < CONF_NSOURCES; s++) {
		const char *opts =
		    conf_source_read((conf_source_t)s, conf_link_buf, sizeof(conf_link_buf));
		nerrors += conf_parse(opts, conf_source_name((conf_source_t)s));
	}
	if (opt_confirm_conf) {
		conf_confirm();
	}
	errno = saved_errno;
	if (nerrors > 0 && (opt_abort_conf || opt_abort)) {
		/* Set by a pair after the invalid one. */
		msg_fatal("aborting: %u invalid option%s (see above) and %s:true", nerrors,
		          nerrors == 1 ? "" : "s", opt_abort_conf ? "abort_conf" : "abort");
	}
	return nerrors;
}

void
conf_boot(void) {
	static bool booted;
	if (booted) {
		return;
	}
	booted = true;
	conf_apply_sources();
}
