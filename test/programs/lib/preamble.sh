# shellcheck shell=bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The start every test/programs/*.sh script shares: sourced, not run, as
#   . "$(dirname "$0")/lib/preamble.sh"
# It sets
#   $src    the source tree: ALLOC_SRCDIR, else two levels above the script's
#           directory (make check sets ALLOC_SRCDIR);
#   $build  the build tree: ALLOC_BUILDDIR, else the current directory.
# and offers the checks the scripts begin with. A skip prints one "SKIP:"
# line and exits 77, a failure one "FAIL:" line and exits 1 (what
# scripts/run-tests reports).
#
# prog_need_liballoc [STATUS]
#   LIBALLOC unset: skip. With STATUS (1 or 77), a LIBALLOC that is not a
#   file ends the script with that status too (fail or skip).
# prog_need TOOL...
#   Skips when a TOOL is not on PATH.
# prog_helper NAME
#   Sets $helper to the absolute path of the build's test/programs/NAME
#   (built by make check-build); fails when it is not there.
# prog_workdir NAME
#   Sets $work to a new scratch directory, ${TMPDIR:-/tmp}/liballoc-NAME.*,
#   removed at exit.
# prog_on_exit COMMAND
#   Runs COMMAND (a string, through eval) at exit, before $work is removed:
#   the latest registered runs first.

# shellcheck disable=SC2034 # used by the scripts that source this
src=${ALLOC_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck disable=SC2034
build=${ALLOC_BUILDDIR:-.}

prog_need_liballoc() {
	if [ -z "${LIBALLOC:-}" ]; then
		echo "SKIP: LIBALLOC is not set"
		exit 77
	fi
	if [ $# -gt 0 ] && [ ! -f "$LIBALLOC" ]; then
		if [ "$1" = 77 ]; then
			echo "SKIP: LIBALLOC=$LIBALLOC does not exist"
		else
			echo "FAIL: LIBALLOC=$LIBALLOC does not exist"
		fi
		exit "$1"
	fi
}

prog_need() {
	local tool
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "SKIP: $tool not found"
			exit 77
		fi
	done
}

prog_helper() {
	helper=$build/test/programs/$1
	if [ ! -x "$helper" ]; then
		echo "FAIL: $helper was not built"
		exit 1
	fi
	helper=$(cd "$(dirname "$helper")" && pwd)/$1
}

prog_exit_cmds=
prog_on_exit() {
	prog_exit_cmds="$1; $prog_exit_cmds"
}

prog_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/liballoc-$1.XXXXXX") || exit 1
	# shellcheck disable=SC2154 # set by prog_on_exit, may be empty
	trap 'eval "$prog_exit_cmds"; rm -rf "$work"' EXIT
}
