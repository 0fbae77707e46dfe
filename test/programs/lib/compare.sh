# SPDX-License-Identifier: BSD-2-Clause
#
# Shared by the real-program tests (test/programs/*.sh): sourced, not run.
# Each test runs commands once on the system allocator and once with
# LD_PRELOAD=$LIBALLOC and requires identical stdout, stderr and exit status.
#
# compare_setup NAME TOOL...
#   Skips (exit 77) when LIBALLOC is unset or a TOOL is not found; fails
#   when LIBALLOC does not exist or a preloaded process does not map it.
#   Sets $work (a scratch directory, removed at exit), $lib_real and
#   $status (0; run sets it to 1 on any difference).
# run NAME CMD...
#   Runs CMD in $work/plain and $work/preload and compares the results;
#   CMD must also succeed on the system allocator.

# The checks and the scratch directory come from preamble.sh.
. "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"

compare_setup() {
	local name=$1
	shift
	prog_need_liballoc 1
	prog_need "$@"
	prog_workdir "$name"
	lib_real=$(readlink -f "$LIBALLOC")
	# Is liballoc really mapped into a preloaded process?
	if ! LD_PRELOAD=$LIBALLOC cat /proc/self/maps | grep -qF "$lib_real"; then
		echo "FAIL: LD_PRELOAD=$LIBALLOC does not map $lib_real into the process"
		exit 1
	fi
	status=0
}

run() {
	local name=$1
	shift
	local d
	for d in plain preload; do
		mkdir -p "$work/$d"
		local pre=
		[ "$d" = preload ] && pre=$LIBALLOC
		(cd "$work/$d" && env LD_PRELOAD="$pre" "$@" >"$name.out" 2>"$name.err"
			echo "exit $?" >"$name.status")
	done
	local f
	for f in out err status; do
		if ! cmp -s "$work/plain/$name.$f" "$work/preload/$name.$f"; then
			echo "FAIL: $name: $f differs between the system allocator and liballoc:"
			diff -u "$work/plain/$name.$f" "$work/preload/$name.$f" | head -40
			status=1
		fi
	done
	if [ "$(cat "$work/plain/$name.status")" != "exit 0" ]; then
		echo "FAIL: $name: $(cat "$work/plain/$name.status") even without liballoc"
		head -20 "$work/plain/$name.err"
		status=1
	fi
}
