#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# Generates ./configure from configure.ac. Only autoconf runs: there is no
# automake, and the config header template is hand-written, so autoheader
# (which autoreconf would run) must not overwrite it.
# Arguments, if any, are passed to configure, which then runs in the
# current directory (so `../autogen.sh --enable-debug` configures a VPATH
# build there).
set -e
srcdir=$(dirname "$0")
if ! command -v autoconf >/dev/null 2>&1; then
	echo "autogen.sh: autoconf not found (apt-get install autoconf)" >&2
	exit 1
fi
(cd "$srcdir" && autoconf --force && rm -rf autom4te.cache configure~)
if [ $# -gt 0 ]; then
	exec "$srcdir/configure" "$@"
fi
