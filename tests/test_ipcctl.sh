#!/bin/sh
# SPDX-License-Identifier: MIT
# ipcctl against real objects held by several processes: live users, a
# holder killed with SIGKILL, gc removing exactly the abandoned objects,
# corrupt and foreign files listed, --json output that parses. Touches only
# names with this run's own prefix: never a bare `ipcctl gc`. Speaks TAP.
bld=${top_builddir:-.}
ipcctl=$bld/tools/ipcctl
holder=$bld/tests/ipcctl-holder
P="tctl$$."
shm=/dev/shm/libipc.$P
out=$(mktemp)
n=0
failed=0
pids=""

cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for f in "$shm"*; do
		[ -e "$f" ] || continue
		"$ipcctl" rm "${f#/dev/shm/libipc.}" 2>/dev/null || rm -f "$f"
	done
	rm -f "$out" "$out".*
}
trap cleanup EXIT

check() {
	name=$1
	shift
	n=$((n + 1))
	if "$@" >"$out.check" 2>&1; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		sed 's/^/# /' "$out.check" "$out"
		failed=1
	fi
}

if ! command -v python3 >/dev/null; then
	echo "1..0 # SKIP python3 is needed to check the JSON"
	exit 0
fi

# hold ARGS...: start a holder in the background, wait for its "ready".
nhold=0
hold() {
	nhold=$((nhold + 1))
	fifo=$out.fifo.$nhold
	mkfifo "$fifo"
	"$holder" "$@" >"$fifo" &
	last=$!
	pids="$pids $last"
	read -r line <"$fifo" || line=
	rm -f "$fifo"
	[ "$line" = ready ]
}

# json_has PY-EXPRESSION: ls --json --prefix, parsed; the expression sees
# `o`, a dict from name (prefix removed) to object.
json_has() {
	"$ipcctl" --json ls --prefix "$P" >"$out" || return 1
	python3 -c '
import json, sys
o = {e["name"][len(sys.argv[1]):]: e for e in json.load(open(sys.argv[2]))}
import os
h2 = int(os.environ.get("H2", "0"))
ok = eval("(" + sys.argv[3] + ")")
if not ok:
    print("failed:", sys.argv[3]); print(json.dumps(o, indent=1))
sys.exit(0 if ok else 1)' "$P" "$out" "$1"
}

t_setup() {
	hold lock "${P}lock" event "${P}event" mqueue "${P}mq" || return 1
	h1=$last
	hold event "${P}event" sem "${P}sem" held-lock "${P}held" || return 1
	h2=$last
	export H2=$h2
	"$holder" queue "${P}abandoned" close >/dev/null || return 1
	printf 'not a libipc object' >"${shm}foreign"
	printf 'x' >"${shm}bad name"
	cp "${shm}lock" "${shm}trunc" && truncate -s 20 "${shm}trunc"
}
check "objects made and held by several processes" t_setup

check "--json parses" sh -c "'$ipcctl' --json ls --prefix '$P' | python3 -m json.tool"
check "live users counted per object" json_has \
	'o["lock"]["users"] == 1 and o["event"]["users"] == 2 and
	 h2 in o["event"]["user_pids"] and
	 o["sem"]["users"] == 1 and o["abandoned"]["users"] == 0 and
	 o["lock"]["kind"] == "lock" and o["sem"]["kind"] == "sem" and
	 o["abandoned"]["kind"] == "queue" and o["lock"]["ok"]'
check "mqueue depth shown" json_has \
	'o["mq"]["kind"] == "mqueue" and o["mq"]["depth"] == 1 and
	 o["mq"]["users"] == 1 and o["mq"]["maxsize"] == 4'
check "foreign and truncated files listed, not fatal" json_has \
	'o["foreign"]["kind"] == "foreign" and not o["foreign"]["ok"] and
	 o["foreign"]["users"] == -1 and o["trunc"]["kind"] == "truncated" and
	 not o["bad name"]["ok"] and o["bad name"]["users"] == -1'
check "per-kind state: lock holder, event, semaphore" json_has \
	'o["held"]["holder_pid"] == h2 and not o["held"]["holder_died"] and
	 o["lock"]["holder_pid"] == 0 and o["event"]["set"] == False and
	 o["sem"]["value"] == 1 and o["abandoned"]["depth"] == 0'
check "table output lists every object" sh -c \
	"'$ipcctl' ls --prefix '$P' >'$out' && [ \$(grep -c '^$P' '$out') -eq 9 ] &&
	 grep -q '^${P}held .*held by $h2' '$out'"

t_kill() {
	kill -9 "$h2" && wait "$h2" 2>/dev/null
	json_has 'o["event"]["users"] == 1 and o["sem"]["users"] == 0 and
		  o["held"]["holder_pid"] == 0 and o["held"]["holder_died"]'
}
check "a SIGKILLed holder no longer counts, and its lock shows it died" t_kill

t_dry_run() {
	"$ipcctl" gc --dry-run --prefix "$P" >"$out" || return 1
	[ "$(grep -c '^would remove' "$out")" -eq 4 ] &&
		grep -q "would remove ${P}sem " "$out" &&
		grep -q "would remove ${P}abandoned " "$out" &&
		grep -q "would remove ${P}trunc " "$out" &&
		[ -e "${shm}sem" ] && [ -e "${shm}abandoned" ]
}
check "gc --dry-run removes nothing" t_dry_run

t_gc() {
	"$ipcctl" --json gc --prefix "$P" >"$out" || return 1
	python3 -m json.tool "$out" >/dev/null || return 1
	[ ! -e "${shm}sem" ] && [ ! -e "${shm}abandoned" ] &&
		[ ! -e "${shm}held" ] &&
		[ ! -e "${shm}trunc" ] && [ -e "${shm}lock" ] &&
		[ -e "${shm}event" ] && [ -e "${shm}mq" ] &&
		[ -e "${shm}foreign" ] && [ -e "${shm}bad name" ]
}
check "gc removes exactly the abandoned objects" t_gc

check "show names the mq and its depth" sh -c \
	"'$ipcctl' show '${P}mq' >'$out' && grep -q 'state:    depth 1/4' '$out' &&
	 grep -q '/libipc.${P}mq, messages of at most 64 bytes' '$out' &&
	 grep -q 'users:    1' '$out'"
check "show --json parses" sh -c \
	"'$ipcctl' --json show '${P}event' '${P}foreign' | python3 -m json.tool"
check "show of a missing name fails" sh -c \
	"! '$ipcctl' show '${P}nothing' 2>'$out'"
check "watch refreshes" sh -c \
	"'$ipcctl' watch --prefix '$P' --interval 20 --count 2 >'$out' &&
	 [ \$(grep -c '^NAME' '$out') -eq 2 ]"

t_rm_and_gc_all() {
	"$ipcctl" rm "${P}foreign" || return 1
	rm -f "${shm}bad name"
	! "$ipcctl" rm "${P}foreign" 2>/dev/null || return 1
	kill -9 "$h1" && wait "$h1" 2>/dev/null
	"$ipcctl" gc --prefix "$P" >"$out" || return 1
	[ "$(grep -c '^removed' "$out")" -eq 3 ] || return 1
	for f in "$shm"*; do [ -e "$f" ] && return 1; done
	# The mq went with its companion: a new queue holds only the new put.
	"$holder" mqueue "${P}mq" close >/dev/null &&
		json_has 'o["mq"]["depth"] == 1' && "$ipcctl" rm "${P}mq"
}
check "rm, then gc once every holder is dead" t_rm_and_gc_all

echo "1..$n"
exit $failed
