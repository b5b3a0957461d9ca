#!/usr/bin/env bash
# manpages.sh: render the man pages, docs/NAME.SECTION.md, with go-md2man.
#
#   packaging/manpages.sh OUTDIR      writes OUTDIR/NAME.SECTION for each page
#
# A page's markdown is the single source of what only the man page says; what the README
# or config/default.toml already hold is pulled in at build time, never copied by hand.
# A line of the page that is exactly one of these is replaced:
#
#   <!-- table: FILE | FIRST HEADER | -->   the markdown table in FILE whose header row
#                                           starts with "| FIRST HEADER |", as a list
#                                           (go-md2man renders tables badly): each row's
#                                           first cell, then the others, each after its
#                                           column's header
#   <!-- keys: FILE -->                     every key of a TOML reference such as
#                                           config/default.toml, with the comment above
#                                           it, by table
#
# Environment: GO_MD2MAN (default: go-md2man, Debian's package go-md2man).
set -euo pipefail
out=${1:?usage: $0 OUTDIR}
md2man=${GO_MD2MAN:-go-md2man}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# esc, an awk function both programs below start with: < and > outside `code` escaped, or
# go-md2man takes <word> for HTML and drops it.
esc='
	function esc(s,   n, i, part, out) {
		n = split(s, part, "`")
		for (i = 1; i <= n; i++) {
			if (i % 2) { gsub(/</, "\\<", part[i]); gsub(/>/, "\\>", part[i]) }
			out = out (i > 1 ? "`" : "") part[i]
		}
		return out
	}'

# table FILE FIRSTHEADER: the table as a definition list.
table() {
	awk -v first="| $2 |" "$esc"'
	function cells(line, a,   n, i) {
		gsub(/\\\|/, "\001", line)
		sub(/^\| */, "", line); sub(/ *\|$/, "", line)
		n = split(line, a, / *\| */)
		for (i = 1; i <= n; i++) gsub("\001", "|", a[i])
		return n
	}
	index($0, first) == 1 { inside = 1; nh = cells($0, head); next }
	inside && /^\|[-| :]+\|$/ { next }
	inside && /^\|/ {
		n = cells($0, c)
		print c[1]
		text = c[2]
		for (i = 3; i <= n; i++) text = text ". *" toupper(substr(head[i], 1, 1)) substr(head[i], 2) ":* " c[i]
		print ": " esc(text)
		print ""
		next
	}
	inside { exit }
	END { if (!nh) { print "manpages.sh: no table starting with " first > "/dev/stderr"; exit 1 } }' "$1"
}

# keys FILE: a TOML reference file, commented, as markdown: each [table] a subsection,
# each key (set or commented out, `# key = value`) its value and the comment above it.
keys() {
	awk "$esc"'
	function flush_keys() {
		if (nk == 0) return
		line = ""
		for (i = 1; i <= nk; i++) line = line (i > 1 ? ", " : "") "`" k[i] "`"
		print line
		print ": " (text != "" ? esc(text) : "See above.")
		print ""
		nk = 0; text = ""
	}
	/^#/ && !started { next }              # the header comment: the page says it
	/^$/ { started = 1; flush_keys(); next }
	/^\[/ {
		flush_keys()
		name = $0; sub(/[ \t]*#.*$/, "", name)
		print "## " name
		print ""
		if (text != "") { print esc(text); print "" }
		text = ""
		next
	}
	/^# ?[a-z_]+ = / || /^[a-z_]+ = / {
		line = $0; sub(/^# ?/, "", line)
		k[++nk] = line
		next
	}
	/^#/ {
		flush_keys()
		line = $0; sub(/^# ?/, "", line)
		text = text (text != "" ? " " : "") line
		next
	}
	END { flush_keys() }' "$1"
}

mkdir -p "$out"
for md in docs/*.[1-8].md; do
	[ -f "$md" ] || continue
	page=${md##*/}
	page=${page%.md}
	tmp=$(mktemp)
	while IFS= read -r line; do
		if [[ $line =~ ^'<!-- table: '([^ ]+)' | '(.+)' | -->'$ ]]; then
			table "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
		elif [[ $line =~ ^'<!-- keys: '([^ ]+)' -->'$ ]]; then
			keys "${BASH_REMATCH[1]}"
		else
			printf '%s\n' "$line"
		fi
	done <"$md" >"$tmp"
	"$md2man" -in "$tmp" -out "$out/$page"
	rm -f "$tmp"
done
