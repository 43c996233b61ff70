#!/bin/sh
# SPDX-License-Identifier: MIT
# man-links.sh install|uninstall|list|names MANDIR PAGE...
#
# Every function a manual page documents gets its own page name, so that
# `man ipc_queue_put` finds ipc_queue(3). The names come from each page's
# NAME section ("a, b, c \- summary"), never from a list kept by hand: for
# each name other than the page's own, install writes MANDIR/manN/name.N
# holding ".so manN/page.N", uninstall removes it, list prints the link
# paths (relative to MANDIR) one per line, names prints every name the
# pages document, their own included.
set -eu
action=$1
mandir=$2
shift 2

# names PAGE: the names in PAGE's NAME section, one per line.
names() {
	awk '
		/^\.SH +"?NAME"?/ { on = 1; next }
		on && /^\.SH/ { exit }
		on {
			line = line " " $0
			if ($0 ~ /\\-/) { sub(/\\-.*/, "", line); print line; exit }
		}' "$1" | tr ',' '\n' | sed 's/\\//g; s/^ *//; s/ *$//' | grep .
}

for page in "$@"; do
	base=${page##*/}
	section=${base##*.}
	self=${base%.*}
	for name in $(names "$page"); do
		[ "$action" = names ] && echo "$name" && continue
		[ "$name" = "$self" ] && continue
		link=man$section/$name.$section
		case $action in
		install)
			mkdir -p "$mandir/man$section"
			echo ".so man$section/$base" >"$mandir/$link"
			;;
		uninstall) rm -f "$mandir/$link" ;;
		list) echo "$link" ;;
		*)
			echo "usage: $0 install|uninstall|list|names MANDIR PAGE..." >&2
			exit 2
			;;
		esac
	done
done
