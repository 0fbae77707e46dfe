# report.awk: turns the raw results of scripts/bench into tables and a chart.
#
# Input: the raw CSV written by scripts/bench, one line per run:
#   round,workload,allocator,status,wall_s,maxrss_kb,user_s,sys_s,extra_kb
# (a header line starting with "round" is skipped; status 0 = passed).
#
# Variables (awk -v):
#   out        table | md | csv | svg     what to print
#   workloads  space-separated workload names, in display order
#   allocs     space-separated allocator names, in display order
#   title      a line describing the run (used by md and svg)
#
# Per workload and allocator: the median wall time and the median peak RSS
# of the passing runs. A (workload, allocator) with any failing run is shown
# as FAIL and left out of every ratio. Ratios are to glibc and to jemalloc
# (when those ran); geometric means are over the workloads where both sides
# have a result. Portable awk (runs on mawk).

BEGIN {
	FS = ","
	nw = split(workloads, W, " ")
	na = split(allocs, A, " ")
}

$1 == "round" { next }
NF >= 6 {
	k = $2 SUBSEP $3
	runs[k]++
	if ($4 != 0) {
		fails[k]++
		next
	}
	n = ++ok[k]
	T[k, n] = $5 + 0
	R[k, n] = $6 + 0
	if (NF >= 9 && $9 != "")
		X[k, n] = $9 + 0
}

# median of the n values V[k, 1..n] (insertion sort on a copy)
function median(V, k, n,    i, j, v, tmp) {
	if (n == 0)
		return -1
	for (i = 1; i <= n; i++)
		tmp[i] = V[k, i]
	for (i = 2; i <= n; i++) {
		v = tmp[i]
		for (j = i - 1; j >= 1 && tmp[j] > v; j--)
			tmp[j + 1] = tmp[j]
		tmp[j + 1] = v
	}
	if (n % 2)
		return tmp[(n + 1) / 2]
	return (tmp[n / 2] + tmp[n / 2 + 1]) / 2
}

function valid(w, a) {
	return ((w, a) in mt) && !(((w SUBSEP a) in fails))
}

function ratio(M, w, a, b) {
	if (!valid(w, a) || !valid(w, b) || M[w, b] <= 0)
		return -1
	return M[w, a] / M[w, b]
}

# geometric mean over workloads of M[w,a]/M[w,b]; sets GN to the count
function geomean(M, a, b,    i, s, r, c) {
	s = 0
	c = 0
	for (i = 1; i <= nw; i++) {
		r = ratio(M, W[i], a, b)
		if (r > 0) {
			s += log(r)
			c++
		}
	}
	GN = c
	return c ? exp(s / c) : -1
}

function fmt_ratio(r) {
	return r > 0 ? sprintf("%.2f", r) : "-"
}

function fmt_time(t) {
	if (t < 0)
		return "-"
	if (t < 10)
		return sprintf("%.3f", t)
	return sprintf("%.2f", t)
}

function fmt_mib(kb) {
	if (kb < 0)
		return "-"
	if (kb < 10240)
		return sprintf("%.2f", kb / 1024)
	return sprintf("%.0f", kb / 1024)
}

function have(a,    i) {
	for (i = 1; i <= na; i++)
		if (A[i] == a)
			return 1
	return 0
}

# cell text for workload w, allocator a: value and (ratio to glibc)
function cell(M, w, a, kind,    v, r) {
	if ((w SUBSEP a) in fails)
		return "FAIL"
	if (!((w, a) in M))
		return "-"
	v = kind == "t" ? fmt_time(M[w, a]) : fmt_mib(M[w, a])
	if (a == "glibc" || !have("glibc"))
		return v
	r = ratio(M, w, a, "glibc")
	return v " (" fmt_ratio(r) ")"
}

END {
	for (i = 1; i <= nw; i++) {
		for (j = 1; j <= na; j++) {
			k = W[i] SUBSEP A[j]
			if (ok[k] > 0) {
				mt[W[i], A[j]] = median(T, k, ok[k])
				mr[W[i], A[j]] = median(R, k, ok[k])
				if ((k, 1) in X)
					mx[W[i], A[j]] = median(X, k, ok[k])
			}
		}
	}
	if (out == "table")
		print_table()
	else if (out == "md")
		print_md()
	else if (out == "csv")
		print_csv()
	else if (out == "svg")
		print_svg()
	else if (out == "note")
		print_note()
}

function print_table(    i, j, w, a, line, g) {
	printf "%-10s", "time (s)"
	for (j = 1; j <= na; j++)
		printf "  %-16s", A[j]
	printf "\n"
	for (i = 1; i <= nw; i++) {
		w = W[i]
		printf "%-10s", w
		for (j = 1; j <= na; j++)
			printf "  %-16s", cell(mt, w, A[j], "t")
		printf "\n"
	}
	if (have("glibc")) {
		printf "%-10s", "geomean"
		for (j = 1; j <= na; j++) {
			g = geomean(mt, A[j], "glibc")
			printf "  %-16s", A[j] == "glibc" ? "1.00" : "(" fmt_ratio(g) ")"
		}
		printf "\n"
	}
	printf "\n%-10s", "peak RSS"
	for (j = 1; j <= na; j++)
		printf "  %-16s", A[j]
	printf "\n"
	for (i = 1; i <= nw; i++) {
		w = W[i]
		printf "%-10s", w
		for (j = 1; j <= na; j++)
			printf "  %-16s", cell(mr, w, A[j], "r")
		printf "\n"
	}
	if (have("glibc")) {
		printf "%-10s", "geomean"
		for (j = 1; j <= na; j++) {
			g = geomean(mr, A[j], "glibc")
			printf "  %-16s", A[j] == "glibc" ? "1.00" : "(" fmt_ratio(g) ")"
		}
		printf "\n"
	}
	printf "(time: median seconds; peak RSS: median MiB; in parentheses: ratio to glibc, lower is better)\n\n"
	print_geo_table("text")
	print_note()
}

# the geometric means of every allocator against glibc and jemalloc
function print_geo_table(style,    j, a, tg, rg, tj, rj, ng, nj) {
	if (style == "md") {
		print "| allocator | time / glibc | peak RSS / glibc | time / jemalloc | peak RSS / jemalloc | workloads |"
		print "|---|---:|---:|---:|---:|---:|"
	} else {
		printf "geometric means over workloads (lower is better)\n"
		printf "%-10s  %12s  %12s  %15s  %15s\n", "allocator", "time/glibc", "RSS/glibc",
		    "time/jemalloc", "RSS/jemalloc"
	}
	for (j = 1; j <= na; j++) {
		a = A[j]
		tg = have("glibc") ? geomean(mt, a, "glibc") : -1
		ng = GN
		rg = have("glibc") ? geomean(mr, a, "glibc") : -1
		tj = have("jemalloc") ? geomean(mt, a, "jemalloc") : -1
		nj = GN
		rj = have("jemalloc") ? geomean(mr, a, "jemalloc") : -1
		if (style == "md")
			printf "| %s | %s | %s | %s | %s | %d |\n", a, fmt_ratio(tg), fmt_ratio(rg),
			    fmt_ratio(tj), fmt_ratio(rj), (ng > nj ? ng : nj)
		else
			printf "%-10s  %12s  %12s  %15s  %15s\n", a, fmt_ratio(tg), fmt_ratio(rg),
			    fmt_ratio(tj), fmt_ratio(rj)
	}
	printf "\n"
}

# the closing note: liballoc against each of the others
function print_note(    j, a, t, r, s, n) {
	if (!have("liballoc") && na >= 2 && !have("glibc")) {
		print_vs_first()
		return
	}
	if (!have("liballoc")) {
		print "liballoc was not measured in this run: no comparison of liballoc to quote."
		return
	}
	s = ""
	for (j = 1; j <= na; j++) {
		a = A[j]
		if (a == "liballoc")
			continue
		t = geomean(mt, "liballoc", a)
		n = GN
		r = geomean(mr, "liballoc", a)
		s = s sprintf("%s  vs %-9s time %sx, peak RSS %sx (%d workloads)\n", "liballoc", a,
		    fmt_ratio(t), fmt_ratio(r), n)
	}
	printf "geometric mean of liballoc / other (below 1.00: liballoc is faster or smaller)\n%s", s
}

# without liballoc or glibc by those names (e.g. one library under two
# MALLOC_CONFs, scripts/bench --conf): each allocator against the first
function print_vs_first(    j, a, t, r, n, s) {
	s = ""
	for (j = 2; j <= na; j++) {
		a = A[j]
		t = geomean(mt, a, A[1])
		n = GN
		r = geomean(mr, a, A[1])
		s = s sprintf("%s / %s: time %s, peak RSS %s (%d workloads)\n", a, A[1],
		    t > 0 ? sprintf("%.3f", t) : "-", r > 0 ? sprintf("%.3f", r) : "-", n)
	}
	printf "geometric mean over workloads of each allocator / the first\n%s", s
}

function print_md(    i, j, w, a) {
	print "### Median wall time, seconds (ratio to glibc)"
	print ""
	printf "| workload |"
	for (j = 1; j <= na; j++)
		printf " %s |", A[j]
	printf "\n|---|"
	for (j = 1; j <= na; j++)
		printf "---:|"
	printf "\n"
	for (i = 1; i <= nw; i++) {
		w = W[i]
		printf "| %s |", w
		for (j = 1; j <= na; j++)
			printf " %s |", cell(mt, w, A[j], "t")
		printf "\n"
	}
	if (have("glibc")) {
		printf "| **geomean** |"
		for (j = 1; j <= na; j++)
			printf " %s |", A[j] == "glibc" ? "1.00" : "(" fmt_ratio(geomean(mt, A[j], "glibc")) ")"
		printf "\n"
	}
	print ""
	print "### Median peak RSS, MiB (ratio to glibc)"
	print ""
	printf "| workload |"
	for (j = 1; j <= na; j++)
		printf " %s |", A[j]
	printf "\n|---|"
	for (j = 1; j <= na; j++)
		printf "---:|"
	printf "\n"
	for (i = 1; i <= nw; i++) {
		w = W[i]
		printf "| %s |", w
		for (j = 1; j <= na; j++)
			printf " %s |", cell(mr, w, A[j], "r")
		printf "\n"
	}
	if (have("glibc")) {
		printf "| **geomean** |"
		for (j = 1; j <= na; j++)
			printf " %s |", A[j] == "glibc" ? "1.00" : "(" fmt_ratio(geomean(mr, A[j], "glibc")) ")"
		printf "\n"
	}
	print ""
	if (have_extra()) {
		print "### frag: resident set after the refill, MiB (ratio to glibc)"
		print ""
		printf "|"
		for (j = 1; j <= na; j++)
			printf " %s |", A[j]
		printf "\n|"
		for (j = 1; j <= na; j++)
			printf "---:|"
		printf "\n|"
		for (j = 1; j <= na; j++)
			printf " %s |", cell(mx, "frag", A[j], "r")
		printf "\n\n"
	}
	print "### Geometric means over all workloads (lower is better)"
	print ""
	print_geo_table("md")
	print "### liballoc against each of the others"
	print ""
	print "```"
	print_note()
	print "```"
}

function have_extra(    j) {
	for (j = 1; j <= na; j++)
		if (("frag", A[j]) in mx)
			return 1
	return 0
}

function print_csv(    i, j, w, a, k) {
	print "workload,allocator,runs,failures,median_time_s,median_peak_rss_kb,time_vs_glibc,rss_vs_glibc,time_vs_jemalloc,rss_vs_jemalloc,median_final_rss_kb"
	for (i = 1; i <= nw; i++) {
		w = W[i]
		for (j = 1; j <= na; j++) {
			a = A[j]
			k = w SUBSEP a
			if (!(k in runs))
				continue
			# (k in fails), not fails[k]: referencing an element creates it,
			# and valid() would then take every cell for a failure.
			printf "%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s\n", w, a, runs[k], (k in fails) ? fails[k] : 0,
			    valid(w, a) ? sprintf("%.6f", mt[w, a]) : "",
			    valid(w, a) ? sprintf("%d", mr[w, a]) : "",
			    csv_ratio(ratio(mt, w, a, "glibc")), csv_ratio(ratio(mr, w, a, "glibc")),
			    csv_ratio(ratio(mt, w, a, "jemalloc")), csv_ratio(ratio(mr, w, a, "jemalloc")),
			    valid(w, a) && ((w, a) in mx) ? sprintf("%d", mx[w, a]) : ""
		}
	}
	for (j = 1; j <= na; j++) {
		a = A[j]
		printf "geomean,%s,,,,,%s,%s,%s,%s,\n", a,
		    csv_ratio(have("glibc") ? geomean(mt, a, "glibc") : -1),
		    csv_ratio(have("glibc") ? geomean(mr, a, "glibc") : -1),
		    csv_ratio(have("jemalloc") ? geomean(mt, a, "jemalloc") : -1),
		    csv_ratio(have("jemalloc") ? geomean(mr, a, "jemalloc") : -1)
	}
}

function csv_ratio(r) {
	return r > 0 ? sprintf("%.4f", r) : ""
}

# ---- SVG chart: two panels (time, peak RSS), ratio to glibc, log2 scale ----

# fixed colours for the usual allocators, so charts of different runs compare
function color(j,    c) {
	if (A[j] == "glibc") return "#7f7f7f"
	if (A[j] == "liballoc") return "#d62728"
	if (A[j] == "jemalloc") return "#1f77b4"
	if (A[j] == "mimalloc") return "#2ca02c"
	if (A[j] == "tcmalloc") return "#ff7f0e"
	split("#9467bd #8c564b #e377c2 #17becf #bcbd22", c, " ")
	return c[(j - 1) % 5 + 1]
}

function log2(x) {
	return log(x) / log(2)
}

function print_svg(    base, i, j, r, lo, hi, ngroups, barw, groupw, width, height, panelh,
    left, top1, top2) {
	base = have("glibc") ? "glibc" : A[1]
	# range of the ratios, in whole powers of two, at least 1/2 .. 2, at most 1/16 .. 16
	lo = -1
	hi = 1
	for (i = 1; i <= nw; i++)
		for (j = 1; j <= na; j++) {
			r = ratio(mt, W[i], A[j], base)
			if (r > 0) {
				if (log2(r) < lo) lo = log2(r)
				if (log2(r) > hi) hi = log2(r)
			}
			r = ratio(mr, W[i], A[j], base)
			if (r > 0) {
				if (log2(r) < lo) lo = log2(r)
				if (log2(r) > hi) hi = log2(r)
			}
		}
	lo = int(lo - 0.999)
	hi = int(hi + 0.999)
	if (lo < -4) lo = -4
	if (hi > 4) hi = 4
	SV_LO = lo
	SV_HI = hi
	ngroups = nw + 1
	barw = 12
	groupw = na * barw + 18
	left = 60
	width = left + ngroups * groupw + 20
	panelh = 260
	top1 = 70
	top2 = top1 + panelh + 90
	height = top2 + panelh + 30
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", width, height, width, height
	printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	printf "<text x=\"%d\" y=\"22\" font-size=\"16\" font-weight=\"bold\">%s</text>\n", left, xml("Allocator benchmark: ratio to " base " (log scale, lower is better)")
	printf "<text x=\"%d\" y=\"40\" fill=\"#555\">%s</text>\n", left, xml(title)
	# legend
	for (j = 1; j <= na; j++) {
		printf "<rect x=\"%d\" y=\"50\" width=\"12\" height=\"12\" fill=\"%s\"/>", left + (j - 1) * 110, color(j)
		printf "<text x=\"%d\" y=\"60\">%s</text>\n", left + (j - 1) * 110 + 16, xml(A[j])
	}
	svg_panel(mt, "Wall time / " base, top1 + 20, panelh, left, groupw, barw, base)
	svg_panel(mr, "Peak RSS / " base, top2, panelh, left, groupw, barw, base)
	printf "</svg>\n"
}

function ypos(v, top, h) {
	# v is log2(ratio); SV_HI at the top, SV_LO at the bottom
	return top + (SV_HI - v) / (SV_HI - SV_LO) * h
}

function svg_panel(M, label, top, h, left, groupw, barw, base,    e, y, i, j, w, r, v, x, y0, y1, gx, txt, ty) {
	printf "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", left, top - 8, xml(label)
	# grid lines at powers of two
	for (e = SV_LO; e <= SV_HI; e++) {
		y = ypos(e, top, h)
		printf "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%s\"/>\n", left, left + (nw + 1) * groupw, y, y, e == 0 ? "#000" : "#ddd", e == 0 ? "1.5" : "1"
		txt = e >= 0 ? sprintf("%d", 2 ^ e) : sprintf("1/%d", 2 ^ -e)
		printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left - 6, y + 4, txt
	}
	y0 = ypos(0, top, h)
	for (i = 1; i <= nw + 1; i++) {
		w = i <= nw ? W[i] : "geomean"
		gx = left + (i - 1) * groupw + 9
		if (i > nw)
			printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f3f3f3\"/>\n", gx - 6, top, groupw - 6, h
		for (j = 1; j <= na; j++) {
			r = i <= nw ? ratio(M, w, A[j], base) : geomean(M, A[j], base)
			x = gx + (j - 1) * barw
			if (i <= nw && ((w SUBSEP A[j]) in fails)) {
				printf "<text x=\"%d\" y=\"%.1f\" font-size=\"9\" fill=\"red\" transform=\"rotate(-90 %d %.1f)\">FAIL</text>\n", x + 9, y0 - 4, x + 9, y0 - 4
				continue
			}
			if (r <= 0)
				continue
			v = log2(r)
			if (v > SV_HI) v = SV_HI
			if (v < SV_LO) v = SV_LO
			y1 = ypos(v, top, h)
			if (y1 > y0 - 1 && y1 < y0 + 1)
				y1 = y0 - 1
			printf "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>%s %s: %.3f</title></rect>\n", x, y1 < y0 ? y1 : y0, barw - 2, y1 < y0 ? y0 - y1 : y1 - y0, color(j), xml(w), xml(A[j]), r
			if (i > nw) {
				# value labels on the geometric-mean bars
				ty = y1 < y0 ? y1 - 3 : y1 + 3
				printf "<text x=\"%d\" y=\"%.1f\" font-size=\"9\" text-anchor=\"%s\" transform=\"rotate(-90 %d %.1f)\">%.2f</text>\n", x + 8, ty, (y1 < y0 ? "start" : "end"), x + 8, ty, r
			}
		}
		printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\"%s>%s</text>\n", gx + na * barw / 2, top + h + 16, (i > nw ? " font-weight=\"bold\"" : ""), xml(w)
	}
}

function xml(s) {
	gsub(/&/, "\\&amp;", s)
	gsub(/</, "\\&lt;", s)
	gsub(/>/, "\\&gt;", s)
	return s
}
