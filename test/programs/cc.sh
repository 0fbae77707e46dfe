#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The C compiler on liballoc. A C file with a few hundred generated
# functions is compiled with `cc -O2 -c` on the system allocator and with
# LD_PRELOAD=$LIBALLOC (the variable is inherited by the driver's children,
# so cc1, as and ld all run on liballoc). The disassembly (objdump -d) and
# section sizes (size -A) of the two objects must be identical, as must the
# compiler's own stdout/stderr/status. The file is also compiled, linked and
# run as a program (itself once plain and once preloaded), and its output
# compared.
#
# Needs LIBALLOC=/abs/path/liballoc.so (exit 77 = skip without it or
# without cc/objdump/size).
set -u

. "$(dirname "$0")/lib/compare.sh"
CC=${CC:-cc}
compare_setup cc "$CC" objdump size awk
export LC_ALL=C

# A deterministic C file: NFUNC functions with loops, switches, arrays and
# string handling (so the optimiser has work), and a main calling them all.
NFUNC=300
awk -v n=$NFUNC 'BEGIN {
	print "#include <stdio.h>"
	print "#include <string.h>"
	print "#include <stdlib.h>"
	for (i = 0; i < n; i++) {
		printf "unsigned long f%d(unsigned long x) {\n", i
		printf "\tunsigned long a[%d];\n", 8 + i % 24
		printf "\tchar buf[64];\n"
		printf "\tfor (int k = 0; k < %d; k++) a[k] = x * %d + k * (x ^ %d);\n", 8 + i % 24, i + 3, i * 7
		printf "\tswitch (x %% %d) {\n", 3 + i % 9
		for (c = 0; c < 3 + i % 9; c++)
			printf "\tcase %d: x += a[%d] >> %d; break;\n", c, c % (8 + i % 24), c % 13
		printf "\tdefault: x ^= 0x%x;\n\t}\n", i * 2654435761 % 4294967296
		printf "\tsnprintf(buf, sizeof buf, \"%%lu-%d\", x);\n", i
		printf "\tfor (size_t k = 0; k < strlen(buf); k++) x = x * 31 + (unsigned char)buf[k];\n"
		printf "\treturn x;\n}\n"
	}
	print "int main(void) {"
	print "\tunsigned long acc = 1;"
	for (i = 0; i < n; i++)
		printf "\tacc = acc * 1000003 + f%d(acc %% 100003);\n", i
	print "\tprintf(\"%lu\\n\", acc);"
	print "\treturn 0;"
	print "}"
}' >"$work/gen.c"

# Compile: the same relative file names in both directories, so objdump's
# header lines match.
for d in plain preload; do
	mkdir -p "$work/$d"
	cp "$work/gen.c" "$work/$d/gen.c"
done
run compile "$CC" -O2 -c gen.c -o gen.o
for d in plain preload; do
	(cd "$work/$d" && objdump -d gen.o >gen.dis 2>&1 && size -A gen.o >gen.size 2>&1)
done
for f in gen.dis gen.size; do
	if ! cmp -s "$work/plain/$f" "$work/preload/$f"; then
		echo "FAIL: $f of the object differs when cc runs on liballoc:"
		diff -u "$work/plain/$f" "$work/preload/$f" | head -40
		status=1
	fi
done
if [ ! -s "$work/plain/gen.dis" ] || ! grep -q "<f$((NFUNC - 1))>:" "$work/plain/gen.dis"; then
	echo "FAIL: the plain compile did not produce the expected object"
	status=1
fi

# Link (collect2 and ld on liballoc too), then run the programs.
run link "$CC" gen.o -o prog
run program ./prog
if [ -x "$work/preload/prog" ]; then
	a=$("$work/plain/prog" 2>&1)
	b=$("$work/preload/prog" 2>&1)
	if [ "$a" != "$b" ]; then
		echo "FAIL: the program linked on liballoc prints '$b', the plain one '$a'"
		status=1
	fi
fi

[ $status -eq 0 ] && echo "PASS: $CC gives identical objects and output on liballoc"
exit $status
