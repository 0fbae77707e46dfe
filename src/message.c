/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Message formatting and output that never allocates: the small printf
 * behind every warning and error liballoc prints, the default
 * malloc_message, and the assertion failure handler.
 */
#include "alloc/internal/message.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/export.h"
#include "alloc/internal/opt.h"

static void
msg_write_stderr(void *cbopaque, const char *s) {
	(void)cbopaque;
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, s, len);
		if (n <= 0) {
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

/*
 * The jemalloc API lets a program replace this pointer to redirect every
 * message liballoc prints.
 */
ALLOC_EXPORT void (*ALLOC_NAME(malloc_message))(void *cbopaque, const char *s) = NULL;

void
msg_write(const char *s) {
	void (*cb)(void *, const char *) = ALLOC_NAME(malloc_message);
	if (cb != NULL) {
		cb(NULL, s);
	} else {
		msg_write_stderr(NULL, s);
	}
}

/* Output cursor: writes what fits, counts everything. */
typedef struct {
	char *buf;
	size_t size;
	size_t len;
} msg_out_t;

static void
out_char(msg_out_t *out, char c) {
	if (out->len + 1 < out->size) {
		out->buf[out->len] = c;
	}
	out->len++;
}

static void
out_padded(msg_out_t *out, const char *s, size_t len, unsigned width, bool left, char pad) {
	size_t fill = width > len ? width - len : 0;
	if (!left) {
		for (size_t i = 0; i < fill; i++) {
			out_char(out, pad);
		}
	}
	for (size_t i = 0; i < len; i++) {
		out_char(out, s[i]);
	}
	if (left) {
		for (size_t i = 0; i < fill; i++) {
			out_char(out, ' ');
		}
	}
}

/* Renders v in `base` into the end of tmp; returns the start. */
static char *
render_unsigned(char *end, unsigned long long v, unsigned base, bool upper) {
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;
	do {
		*--p = digits[v % base];
		v /= base;
	} while (v != 0);
	return p;
}

size_t
msg_vformat(char *buf, size_t size, const char *fmt, va_list ap) {
	msg_out_t out = {buf, size, 0};
	char tmp[32];
	for (const char *f = fmt; *f != '\0'; f++) {
		if (*f != '%') {
			out_char(&out, *f);
			continue;
		}
		f++;
		bool left = false;
		char pad = ' ';
		unsigned width = 0;
		if (*f == '-') {
			left = true;
			f++;
		}
		if (*f == '0') {
			pad = '0';
			f++;
		}
		while (*f >= '0' && *f <= '9') {
			width = width * 10 + (unsigned)(*f - '0');
			f++;
		}
		/* Length modifier: 0 int, 1 long, 2 long long, 3 size_t. */
		int lenmod = 0;
		if (*f == 'z') {
			lenmod = 3;
			f++;
		} else if (*f == 'l') {
			lenmod = 1;
			f++;
			if (*f == 'l') {
				lenmod = 2;
				f++;
			}
		}
		char *end = tmp + sizeof(tmp);
		char *s;
		switch (*f) {
		case 'd': {
			long long v;
			if (lenmod == 0) {
				v = va_arg(ap, int);
			} else if (lenmod == 1) {
				v = va_arg(ap, long);
			} else if (lenmod == 2) {
				v = va_arg(ap, long long);
			} else {
				v = va_arg(ap, ssize_t);
			}
			unsigned long long mag =
			    v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
			s = render_unsigned(end, mag, 10, false);
			if (v < 0) {
				*--s = '-';
			}
			out_padded(&out, s, (size_t)(end - s), width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			unsigned long long v;
			if (lenmod == 0) {
				v = va_arg(ap, unsigned);
			} else if (lenmod == 1) {
				v = va_arg(ap, unsigned long);
			} else if (lenmod == 2) {
				v = va_arg(ap, unsigned long long);
			} else {
				v = va_arg(ap, size_t);
			}
			s = render_unsigned(end, v, *f == 'u' ? 10 : 16, *f == 'X');
			out_padded(&out, s, (size_t)(end - s), width, left, pad);
			break;
		}
		case 'p': {
			uintptr_t v = (uintptr_t)va_arg(ap, void *);
			s = render_unsigned(end, v, 16, false);
			*--s = 'x';
			*--s = '0';
			out_padded(&out, s, (size_t)(end - s), width, left, pad);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (str == NULL) {
				str = "(null)";
			}
			out_padded(&out, str, strlen(str), width, left, pad);
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			out_padded(&out, &c, 1, width, left, pad);
			break;
		}
		case '%':
			out_char(&out, '%');
			break;
		case '\0':
			f--;
			break;
		default:
			/* Unknown conversion: print it literally. */
			out_char(&out, '%');
			out_char(&out, *f);
			break;
		}
	}
	if (size > 0) {
		buf[out.len < size ? out.len : size - 1] = '\0';
	}
	return out.len;
}

size_t
msg_format(char *buf, size_t size, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	size_t n = msg_vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

size_t
msg_json_char(unsigned char c, char out[7]) {
	if (c == '"' || c == '\\') {
		out[0] = '\\';
		out[1] = (char)c;
		out[2] = '\0';
		return 2;
	}
	if (c < 0x20) {
		return msg_format(out, 7, "\\u%04x", c);
	}
	out[0] = (char)c;
	out[1] = '\0';
	return 1;
}

void
msg_printf(const char *fmt, ...) {
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	msg_vformat(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	msg_write(buf);
}

static void
msg_vprefixed(const char *fmt, va_list ap) {
	char buf[1024];
	size_t n = msg_format(buf, sizeof(buf), "<liballoc>: ");
	n += msg_vformat(buf + n, sizeof(buf) - n, fmt, ap);
	if (n > sizeof(buf) - 2) {
		n = sizeof(buf) - 2;
	}
	buf[n] = '\n';
	buf[n + 1] = '\0';
	msg_write(buf);
}

void
msg_fatal(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	msg_vprefixed(fmt, ap);
	va_end(ap);
	abort();
}

void
msg_warn(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	msg_vprefixed(fmt, ap);
	va_end(ap);
	if (opt_abort) {
		abort();
	}
}

void
assert_fail(const char *file, int line, const char *expr) {
	msg_fatal("%s:%d: failed assertion: %s", file, line, expr);
}
