#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# scripts/run on a machine without autoconf (the README's first command on a
# fresh Debian 12): it must install the package as root with apt-get, or,
# as another user, print the exact apt-get line and exit non-zero, before
# it tries to build. scripts/run and scripts/lib/deps.sh are copied into a
# scratch tree whose scripts/build is a stand-in (it puts $LIBALLOC at
# lib/liballoc.so and notes that it ran), so the real tree is left alone.
# PATH is a farm of links to every command of the real PATH but autoconf,
# in front of it stand-ins for id (root or not) and apt-get (records its
# arguments; `install` makes an autoconf appear).
#
# Needs LIBALLOC=/abs/path/liballoc.so (exit 77 = skip).
set -u

. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc
prog_workdir run-deps

tree=$work/tree
mkdir -p "$tree/scripts/lib" "$work/farm" "$work/shim"
cp "$src/scripts/run" "$tree/scripts/run"
cp "$src/scripts/lib/deps.sh" "$tree/scripts/lib/deps.sh"
cat >"$tree/scripts/build" <<EOS
mkdir -p "$tree/lib" && cp "$LIBALLOC" "$tree/lib/liballoc.so" && echo built >>"$work/build.called"
EOS

# The farm: every command of PATH except autoconf.
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
	for f in "$d"/*; do
		n=${f##*/}
		[ -x "$f" ] && [ ! -d "$f" ] && [ "$n" != autoconf ] && [ ! -e "$work/farm/$n" ] &&
			ln -s "$f" "$work/farm/$n"
	done
done
if PATH=$work/farm command -v autoconf >/dev/null; then
	echo "FAIL: the farm still has autoconf"
	exit 1
fi
cat >"$work/shim/apt-get" <<EOS
#!/bin/sh
echo "\$*" >>"$work/apt.log"
case " \$* " in
*" install "*" autoconf "* | *" install "*" autoconf") printf '#!/bin/sh\necho "autoconf (stand-in)"\n' >"$work/shim/autoconf"; chmod +x "$work/shim/autoconf" ;;
esac
exit 0
EOS
chmod +x "$work/shim/apt-get"

status=0
fail() {
	echo "FAIL: $*"
	status=1
}
# as UID: runs the scratch scripts/run with id -u answering UID.
as() {
	printf '#!/bin/sh\n[ "$1" = -u ] && echo %s && exit 0\nexec /usr/bin/id "$@"\n' "$1" >"$work/shim/id"
	chmod +x "$work/shim/id"
	rm -f "$work/apt.log" "$work/build.called" "$work/shim/autoconf"
	PATH=$work/shim:$work/farm bash "$tree/scripts/run" sh -c 'echo "hello from $0"' run-test \
		>"$work/out" 2>"$work/err"
	echo $? >"$work/rc"
}

# Not root: the exact line, a non-zero exit, no build, no apt-get.
as 1000
if [ "$(cat "$work/rc")" = 0 ]; then
	fail "not root: scripts/run exited 0 without autoconf"
fi
if ! grep -qx '  sudo apt-get install -y autoconf' "$work/err"; then
	fail "not root: no 'sudo apt-get install -y autoconf' line; stderr:"
	cat "$work/err"
fi
[ -e "$work/build.called" ] && fail "not root: the build ran anyway"
[ -e "$work/apt.log" ] && fail "not root: apt-get ran: $(cat "$work/apt.log")"
[ $status = 0 ] && echo "ok: not root: prints '$(sed -n 2p "$work/err" | sed 's/^ *//')' and exits $(cat "$work/rc")"

# Root: apt-get update, then install of autoconf, then the build and the
# program on liballoc.
as 0
if [ "$(cat "$work/rc")" != 0 ]; then
	fail "root: scripts/run exited $(cat "$work/rc"); stderr:"
	cat "$work/err"
fi
if [ "$(cat "$work/apt.log" 2>/dev/null)" != "$(printf 'update -q\ninstall -y -q --no-install-recommends autoconf')" ]; then
	fail "root: apt-get was not called as expected:"
	cat "$work/apt.log"
fi
[ -e "$work/build.called" ] || fail "root: the build did not run after the install"
grep -qx 'hello from run-test' "$work/out" || fail "root: the program did not run: $(cat "$work/out")"
[ $status = 0 ] && echo "ok: root: apt-get install -y -q --no-install-recommends autoconf, then build and run"

# Everything there: no apt-get at all.
printf '#!/bin/sh\necho "autoconf (stand-in)"\n' >"$work/farm/autoconf"
chmod +x "$work/farm/autoconf"
as 1000
[ "$(cat "$work/rc")" = 0 ] || fail "with autoconf: exit $(cat "$work/rc"): $(cat "$work/err")"
[ -e "$work/apt.log" ] && fail "with autoconf: apt-get ran"
grep -qx 'hello from run-test' "$work/out" || fail "with autoconf: the program did not run"
[ $status = 0 ] && echo "ok: with autoconf: no apt-get, builds and runs"
exit $status
