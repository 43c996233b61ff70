#!/bin/sh
# SPDX-License-Identifier: MIT
# Check the manual pages. Speaks TAP.
#
#   man-check.sh source               the pages in man/ (run by make check)
#   man-check.sh installed MANDIR     the pages and their per-function links
#                                     as installed (run by make installcheck)
#
# Source: every page renders with groff's warnings on and none printed;
# every function a page's NAME section lists is declared in libipc/ipc.h,
# and every function ipc.h declares is listed by some page.
# Installed: every page and every per-function link exists, renders, and
# `man` finds each function by name.
set -u
srcdir=${top_srcdir:-.}
pages=$(ls "$srcdir"/man/*.[1-8])
links="$srcdir/man/man-links.sh"
n=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

check() {
	desc=$1
	shift
	n=$((n + 1))
	if "$@" >"$out" 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# /' "$out"
		failed=1
	fi
}

# render FILE: groff with every warning on; fails if it says anything.
render() {
	msgs=$(groff -man -ww -z "$1" 2>&1) || return 1
	[ -z "$msgs" ] || { echo "$msgs"; return 1; }
}

# All names the pages list (section 3 only: ipc.h's functions and macros).
page_names() {
	for p in $pages; do
		case $p in *.3) ;; *) continue ;; esac
		sh "$links" names /dev/null "$p"
	done
}

# A page's own name (ipc_queue) need not be a function; the rest must be
# declared in ipc.h: an IPC_API function, a static inline one or a macro.
in_header() {
	missing=
	for name in $(for p in $pages; do
		case $p in *.3) sh "$links" list /dev/null "$p" ;; esac
	done | sed 's,.*/,,; s,\.3$,,'); do
		grep -Eq "(IPC_API .*[ *]$name\(|static inline .*[ *]$name\(|#define $name[ (])" \
			"$srcdir/libipc/ipc.h" || missing="$missing $name"
	done
	[ -z "$missing" ] || { echo "not in ipc.h:$missing"; return 1; }
}

all_documented() {
	names=" $(page_names | tr '\n' ' ') "
	missing=
	for fn in $(sed -n 's/^IPC_API [^(]*[ *]\(ipc_[a-z0-9_]*\)(.*/\1/p' \
		"$srcdir/libipc/ipc.h"); do
		case $names in *" $fn "*) ;; *) missing="$missing $fn" ;; esac
	done
	[ -z "$missing" ] || { echo "no manual page lists:$missing"; return 1; }
}

if ! command -v groff >/dev/null; then
	echo "1..0 # SKIP groff is not installed"
	exit 0
fi

case ${1:-source} in
source)
	echo "1..$(($(echo "$pages" | wc -l) + 2))"
	for p in $pages; do
		check "${p##*/} renders without warnings" render "$p"
	done
	check "every name in a NAME section is declared in ipc.h" in_header
	check "every function in ipc.h is named by a manual page" all_documented
	;;
installed)
	mandir=$2
	installed_page() {
		f="$mandir/man${1##*.}/${1##*/}"
		[ -f "$f" ] && render "$f"
	}
	installed_links() {
		bad=
		for l in $(sh "$links" list "$mandir" "$1"); do
			name=${l##*/}
			# .so is resolved from the top of the manual tree.
			(cd "$mandir" && render "$l") || bad="$bad $l"
			if command -v man >/dev/null; then
				man -M "$mandir" -w "${name%.*}" >/dev/null 2>&1 ||
					bad="$bad (man ${name%.*})"
			fi
		done
		[ -z "$bad" ] || { echo "broken:$bad"; return 1; }
	}
	echo "1..$(($(echo "$pages" | wc -l) * 2))"
	for p in $pages; do
		check "${p##*/} installed and renders" installed_page "$p"
		check "${p##*/}: a page per function it names" installed_links "$p"
	done
	;;
esac
exit $failed
