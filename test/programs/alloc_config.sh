#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# alloc-config's answers match the build:
#   - the build tree's alloc-config: --version is the Makefile's VERSION,
#     --config is what config.status --config reports, --cc, --cflags and
#     --ldflags are the Makefile's CC, CFLAGS and LDFLAGS, --revision is the
#     source tree's git commit (or "unknown" outside git);
#   - `make install prefix=P` (into a scratch directory): the installed
#     alloc-config reports P, P/bin, P/share, P/include, P/lib and
#     P/share/man, and its --cc, --cppflags and --libs compile and link a
#     program that runs on the installed library (mallctl "version",
#     malloc from liballoc, the library mapped from P/lib);
#   - a bad option: usage on stderr, exit 1.
#
# Needs LIBALLOC (make check sets it; exit 77 = skip).
set -u

. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc
cfg=$build/alloc-config
if [ ! -x "$cfg" ]; then
	echo "FAIL: $cfg was not made by configure"
	exit 1
fi
prog_workdir alloc-config

status=0
fail() {
	echo "FAIL: $*"
	status=1
}
# expect OPTION WANT: the build tree's alloc-config answers WANT.
expect() {
	local got
	got=$("$cfg" "$1")
	if [ "$got" != "$2" ]; then
		fail "alloc-config $1: '$got', expected '$2'"
	fi
}
make_var() {
	sed -n "s/^$1 = //p" "$build/Makefile"
}

expect --version "$(make_var VERSION)"
[ -n "$("$cfg" --version)" ] || fail "alloc-config --version is empty"
# --config: the same words as config.status --config (quoting may differ).
words() {
	eval "set -- $1"
	printf '%s\n' "$@"
}
if [ "$(words "$("$cfg" --config)")" != "$(words "$(cd "$build" && ./config.status --config)")" ]; then
	fail "alloc-config --config: '$("$cfg" --config)', config.status: '$(cd "$build" && ./config.status --config)'"
fi
expect --cc "$(make_var CC)"
expect --cflags "$(make_var CFLAGS)"
expect --ldflags "$(make_var LDFLAGS)"
rev=$(git -C "$src" rev-parse HEAD 2>/dev/null) || rev=unknown
# configure ran at some commit; the tree may have moved on since.
got=$("$cfg" --revision)
if [ "$rev" = unknown ]; then
	[ "$got" = unknown ] || fail "--revision '$got' outside a git checkout"
elif ! git -C "$src" cat-file -e "$got^{commit}" 2>/dev/null; then
	fail "--revision '$got' is not a commit of $src"
fi
[ $status = 0 ] && echo "ok: build tree: --version $("$cfg" --version), --config, --cc, --cflags, --ldflags, --revision ${got:0:12}"

# Installed into a scratch prefix.
p=$work/prefix
if ! make -s -C "$build" --no-print-directory install prefix="$p" >"$work/install.log" 2>&1; then
	fail "make install prefix=$p:"
	cat "$work/install.log"
	exit 1
fi
icfg=$p/bin/alloc-config
for pair in "--prefix $p" "--bindir $p/bin" "--datadir $p/share" "--includedir $p/include" \
	"--libdir $p/lib" "--mandir $p/share/man" "--cppflags -I$p/include" \
	"--libs -L$p/lib -lalloc -pthread"; do
	opt=${pair%% *}
	want=${pair#* }
	got=$("$icfg" "$opt")
	[ "$got" = "$want" ] || fail "installed alloc-config $opt: '$got', expected '$want'"
done
[ "$("$icfg" --config)" = "$("$cfg" --config)" ] || fail "installed --config differs"
[ -e "$p/include/alloc.h" ] && [ -e "$p/lib/liballoc.so" ] || fail "install incomplete: $(ls -R "$p")"

cat >"$work/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <alloc.h>

int main(void) {
	const char *v = NULL;
	size_t len = sizeof(v);
	if (ALLOC_API(mallctl)("version", &v, &len, NULL, 0) != 0 || v == NULL) {
		puts("mallctl version failed");
		return 1;
	}
	char *p = ALLOC_API(malloc)(100);
	if (p == NULL || ALLOC_API(malloc_usable_size)(p) < 100) {
		puts("malloc failed");
		return 1;
	}
	strcpy(p, "liballoc");
	printf("%s %s\n", p, v);
	ALLOC_API(free)(p);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "liballoc.so") != NULL) {
			fputs(strchr(line, '/'), stdout);
			break;
		}
	}
	return 0;
}
C
# shellcheck disable=SC2046
if ! $("$icfg" --cc) $("$icfg" --cppflags) -o "$work/prog" "$work/prog.c" $("$icfg" --libs) \
	-Wl,-rpath,"$("$icfg" --libdir)" 2>"$work/cc.err"; then
	fail "cc \$(alloc-config --cppflags) prog.c \$(alloc-config --libs): $(cat "$work/cc.err")"
else
	out=$("$work/prog")
	if [[ $out != "liballoc "*"$p/lib/liballoc.so"* ]]; then
		fail "the linked program: $out"
	else
		echo "ok: installed with prefix=P: every path, and \$(alloc-config --cc --cppflags ... --libs) links a program that runs on P/lib/liballoc.so"
	fi
fi

# Bad option.
if "$cfg" --nonsense >/dev/null 2>"$work/err" || ! grep -q '^Usage: alloc-config' "$work/err"; then
	fail "a bad option: no usage or exit 0"
fi
exit $status
