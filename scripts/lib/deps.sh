# SPDX-License-Identifier: BSD-2-Clause
#
# Debian packages liballoc's scripts need, and how they get installed: the
# one list and the one installer that scripts/check and scripts/run share
# (sourced, not run).
#
#   deps_build           adds the packages the build needs (scripts/run)
#   deps_test            adds the packages the tests need (scripts/check)
#   deps_install CALLER  installs what was found missing: as root with
#                        apt-get (output in a temporary log, its tail shown
#                        when it fails); otherwise prints the exact
#                        `sudo apt-get install -y ...` line to run. Returns 1
#                        when packages are still missing, 0 otherwise.
#                        Messages go to stderr, named after CALLER.
# deps_missing holds the packages found missing so far; deps_installed is 1
# once deps_install installed some (configure then has to look again).

deps_missing=()
deps_installed=0

# deps_need PACKAGE TEST...: PACKAGE is missing when the shell test TEST fails.
deps_need() {
	local pkg=$1
	shift
	"$@" >/dev/null 2>&1 && return 0
	local p
	for p in "${deps_missing[@]}"; do
		[ "$p" = "$pkg" ] && return 0
	done
	deps_missing+=("$pkg")
}
deps_have() {
	command -v "$1"
}

deps_build() {
	deps_need autoconf deps_have autoconf
	deps_need make deps_have make
	deps_need gcc deps_have gcc
	deps_need libc6-dev test -e /usr/include/stdio.h
	deps_need binutils deps_have ar
}

deps_test() {
	deps_need binutils deps_have nm
	deps_need pkg-config deps_have pkg-config
	deps_need libcmocka-dev test -e /usr/include/cmocka.h
	# <jemalloc/jemalloc.h> for test/integration/jemalloc_compat.c (never linked)
	deps_need libjemalloc-dev test -e /usr/include/jemalloc/jemalloc.h
	deps_need clang-format deps_have clang-format
	deps_need python3 deps_have python3
	deps_need sqlite3 deps_have sqlite3
	deps_need coreutils deps_have timeout
	deps_need valgrind deps_have valgrind
	deps_need groff-base deps_have groff
	# clang's libFuzzer, for test/fuzz (without it make check only replays
	# the fuzz corpus)
	deps_need clang deps_have clang
	deps_need libclang-rt-dev compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a'
	# liballoc-stats: the SVG test renders with rsvg-convert, the watch
	# test runs it under tmux
	deps_need librsvg2-bin deps_have rsvg-convert
	deps_need tmux deps_have tmux
	# heap profiling (test/programs/prof.sh): jeprof comes with
	# libjemalloc-dev, go tool pprof with golang-go, addr2line (for
	# liballoc-prof) with binutils
	deps_need libjemalloc-dev deps_have jeprof
	deps_need golang-go deps_have go
	deps_need binutils deps_have addr2line
	# cargo and rustc for the Rust crates (rust/, the rust job): Debian's
	# when no cargo is on PATH (any cargo from rustc 1.63 on builds them)
	deps_need cargo deps_have cargo
}

deps_install() {
	local caller=$1
	[ ${#deps_missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "$caller: missing packages; install them with:" >&2
		echo "  sudo apt-get install -y ${deps_missing[*]}" >&2
		return 1
	fi
	echo "==> $caller: installing ${deps_missing[*]}" >&2
	local log
	log=$(mktemp "${TMPDIR:-/tmp}/liballoc-apt.XXXXXX") || return 1
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			"${deps_missing[@]}"; } >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "$caller: apt-get install ${deps_missing[*]} failed (log: $log)" >&2
		return 1
	fi
	rm -f "$log"
	deps_missing=()
	deps_installed=1
	return 0
}
