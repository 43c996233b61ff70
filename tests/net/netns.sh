#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# netns.sh — remote queues between real network stacks: two network
# namespaces joined by a veth pair, ipc-serve in one, clients in the other.
# Speaks TAP. Needs root and iproute2; without them it says so and skips.
#
# Names are unique per run (the pid): namespaces lipc<pid>s / lipc<pid>c,
# veths lv<pid>s / lv<pid>c, 10.x addresses that exist only inside those
# namespaces, and shm names t<pid>.ns*. Everything is deleted on exit.
set -u
top=${top_builddir:-.}
peer=$top/tests/net_peer
serve=$top/tools/ipc-serve

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP network namespace tests need root (not run)"
	exit 0
fi
if ! command -v ip >/dev/null; then
	echo "1..0 # SKIP network namespace tests need iproute2's ip (not run)"
	exit 0
fi

id=$$
NS=lipc${id}s
NC=lipc${id}c
VS=lv${id}s
VC=lv${id}c
a=$((10 + id % 200))
b=$(((id / 200) % 250))
SIP=10.$a.$b.1
CIP=10.$a.$b.2
PORT=5555
URL=tcp://$SIP:$PORT
KEY=netns-key-$id
dir=$(mktemp -d /tmp/libipc-netns.XXXXXX)
QJ=t$id.nsjobs
QS=t$id.nsstream
LK=t$id.nslock
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	ip netns del "$NC" 2>/dev/null
	rm -f /dev/shm/libipc.t$id.ns*
	[ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

if ! ip netns add "$NS" 2>/dev/null || ! ip netns add "$NC" 2>/dev/null ||
	! ip link add "$VS" netns "$NS" type veth peer name "$VC" netns "$NC" 2>/dev/null; then
	echo "1..0 # SKIP cannot create network namespaces here (not run)"
	exit 0
fi
ip -n "$NS" addr add "$SIP/24" dev "$VS"
ip -n "$NC" addr add "$CIP/24" dev "$VC"
ip -n "$NS" link set lo up
ip -n "$NC" link set lo up
ip -n "$NS" link set "$VS" up
ip -n "$NC" link set "$VC" up

printf '%s' "$KEY" >"$dir/key"
chmod 600 "$dir/key"

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { # check DESCRIPTION CONDITION...
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
inc() { ip netns exec "$NC" "$@"; }

start_server() {
	ip netns exec "$NS" "$serve" "$URL" --key-file "$dir/key" --lease 1500 \
		--joinable-queue "$QJ" --queue "$QS" --lock "$LK" 2>>"$dir/serve.log" &
	server=$!
	pids+=("$server")
	# Ready once a client can connect.
	for _ in $(seq 50); do
		[ "$(inc "$peer" join "$URL" "$QS" "$KEY" 0 2>/dev/null)" != "" ] && return 0
		sleep 0.1
	done
	return 1
}

echo "1..11"
check "ipc-serve starts in its namespace and answers across the veth" start_server

# 1. 50 clients: 25 blocked in get on one queue while 25 stream to another.
for i in $(seq 25); do
	inc "$peer" get1 "$URL" "$QJ" "$KEY" 60000 >"$dir/get.$i" 2>&1 &
	pids+=($!)
	getters+=($!)
done
for i in $(seq 25); do
	inc "$peer" put "$URL" "$QS" "$KEY" 40 >"$dir/put.$i" 2>&1 &
	producers+=($!)
done
wait "${producers[@]}"
streamed=$(cat "$dir"/put.* | awk '{s += $1} END {print s}')
blocked=0
for p in "${getters[@]}"; do kill -0 "$p" 2>/dev/null && blocked=$((blocked + 1)); done
drained=$(inc "$peer" drain "$URL" "$QS" "$KEY" | awk '{print $1}')
check "25 producers streamed 1000 puts ($streamed acked, $drained stored) while 25 getters stayed blocked ($blocked)" \
	test "$streamed" = 1000 -a "$drained" = 1000 -a "$blocked" = 25
for i in $(seq 25); do inc "$peer" putmsg "$URL" "$QJ" "$KEY" "w$i" >/dev/null; done
wait "${getters[@]}"
woke=$(grep -c '^got ' "$dir"/get.* | awk -F: '{s += $2} END {print s}')
check "the 25 blocked getters each got one of 25 puts ($woke)" test "$woke" = 25
# The getters closed their handles without task_done: their tasks were
# requeued.
requeued=$(inc "$peer" drain "$URL" "$QJ" "$KEY" | awk '{print $1}')
check "tasks of getters that exited without task_done came back ($requeued of 25)" \
	test "$requeued" = 25

# 2. A remote consumer SIGKILLed holding a task: redone elsewhere, join returns.
inc "$peer" putmsg "$URL" "$QJ" "$KEY" task >/dev/null
# Not through inc(): $! must be the process itself (ip netns exec execs).
ip netns exec "$NC" "$peer" hold "$URL" "$QJ" "$KEY" >"$dir/hold" 2>&1 &
holder=$!
pids+=("$holder")
for _ in $(seq 100); do grep -q got "$dir/hold" && break; sleep 0.1; done
kill -9 "$holder"
wait "$holder" 2>/dev/null
redone=$(inc "$peer" drain "$URL" "$QJ" "$KEY" | awk '{print $1}')
joined=$(inc "$peer" join "$URL" "$QJ" "$KEY" 10000)
check "a SIGKILLed remote consumer's task was redone elsewhere ($redone) and join returned ($joined)" \
	test "$redone" = 1 -a "$joined" = IPC_OK

# 2b. A remote Lock holder SIGKILLed: its lease expires, another host's
# client acquires the lock (a plain IPC_OK: released, not abandoned).
ip netns exec "$NC" "$peer" lockhold "$URL" "$LK" "$KEY" >"$dir/lockhold" 2>&1 &
holder=$!
pids+=("$holder")
for _ in $(seq 100); do grep -q held "$dir/lockhold" && break; sleep 0.1; done
busy=$(inc "$peer" lock "$URL" "$LK" "$KEY" 0)
kill -9 "$holder"
wait "$holder" 2>/dev/null
got=$(ip netns exec "$NS" "$peer" lock "$URL" "$LK" "$KEY" 15000)
check "a SIGKILLed remote lock holder (held: $busy to others) lost it at its lease expiry; a client on the server host got it ($got)" \
	test "$busy" = IPC_EAGAIN -a "$got" = IPC_OK

# A producer that streams puts until its stop file appears, so that a
# fault comes mid-stream however fast the machine is: acked_so_far FILE is
# how many it has had acknowledged so far, wait_acked FILE N waits
# (bounded) until that is at least N, stream_stop FILE STOP stops it and
# sets acked and tried.
acked_so_far() { awk 'NF == 1 { n = $1 } END { print n + 0 }' "$1"; }
wait_acked() {
	for _ in $(seq 600); do
		[ "$(acked_so_far "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
stream_stop() {
	touch "$2"
	wait "$prod"
	read -r acked tried < <(awk '$1 == "total" { print $2, $3 }' "$1")
}

# 3. The link taken down mid-stream and up again: exactly-once accounting.
# Down for 2 s, longer than the server's lease (1.5 s): the session ends
# while the put in flight may have been stored and its reply not received.
inc "$peer" stream "$URL" "$QS" "$KEY" "$dir/stop3" >"$dir/linkput" 2>&1 &
prod=$!
wait_acked "$dir/linkput" 500
ip -n "$NC" link set "$VC" down
sleep 2
ip -n "$NC" link set "$VC" up
wait_acked "$dir/linkput" $(($(acked_so_far "$dir/linkput") + 500))
stream_stop "$dir/linkput" "$dir/stop3"
read -r stored distinct < <(inc "$peer" drain "$URL" "$QS" "$KEY")
check "link down 2 s mid-stream: $acked of $tried acked, $stored stored, $distinct distinct" \
	test "$acked" -ge 1000 -a "$acked" = "$tried" -a "$stored" = "$acked" -a "$distinct" = "$acked"

# 4. ipc-serve SIGKILLed and restarted mid-stream.
inc "$peer" stream "$URL" "$QS" "$KEY" "$dir/stop4" >"$dir/killput" 2>&1 &
prod=$!
wait_acked "$dir/killput" 500
kill -9 "$server"
wait "$server" 2>/dev/null
start_server >/dev/null
wait_acked "$dir/killput" $(($(acked_so_far "$dir/killput") + 500))
stream_stop "$dir/killput" "$dir/stop4"
read -r stored distinct < <(inc "$peer" drain "$URL" "$QS" "$KEY")
echo "# server SIGKILL mid-stream: $acked of $tried acked, $stored stored, $distinct distinct, $((stored - distinct)) duplicates"
check "server SIGKILL+restart: no acknowledged put lost ($distinct of $acked), duplicates $((stored - distinct)) <= 1" \
	test "$acked" -ge 1000 -a "$acked" = "$tried" -a "$distinct" = "$acked" -a $((stored - distinct)) -le 1

# 5. Garbage thrown at the port: the server keeps serving.
inc bash -c "head -c 200000 /dev/urandom > /dev/tcp/$SIP/$PORT" 2>/dev/null
inc bash -c "printf 'GET / HTTP/1.0\r\n\r\n' > /dev/tcp/$SIP/$PORT" 2>/dev/null
res=$(inc "$peer" putmsg "$URL" "$QS" "$KEY" after-garbage)
check "garbage at the port: the server still serves ($res)" test "$res" = IPC_OK
inc "$peer" drain "$URL" "$QS" "$KEY" >/dev/null

# 6. A packet capture shows no plaintext marker — and, as a control that
# the capture sees payloads at all, does show it for a keyless server.
capture() { # capture FILE PORT URL KEY QUEUE: put a marker and get it back
	local file=$1 port=$2 url=$3 key=$4 q=$5
	ip netns exec "$NS" tcpdump -i "$VS" -U --immediate-mode -Z root -w "$file" "tcp port $port" \
		2>"$file.err" &
	local cap=$!
	pids+=("$cap")
	for _ in $(seq 100); do grep -q listening "$file.err" && break; sleep 0.1; done
	inc "$peer" putmsg "$url" "$q" "$key" "$marker" >/dev/null
	inc "$peer" get1 "$url" "$q" "$key" 5000 >/dev/null
	sleep 0.3
	kill -INT "$cap"
	wait "$cap" 2>/dev/null
	tcpdump -r "$file" 2>/dev/null | wc -l
}
if command -v tcpdump >/dev/null; then
	marker=PLAINTEXT-MARKER-$id
	packets=$(capture "$dir/cap.pcap" "$PORT" "$URL" "$KEY" "$QS")
	check "capture of an encrypted session ($packets packets) has no plaintext marker" \
		bash -c "[ $packets -gt 0 ] && ! grep -aq '$marker' '$dir/cap.pcap'"
	ip netns exec "$NS" "$serve" "tcp://$SIP:$((PORT + 1))" --insecure \
		--queue "$QS" 2>>"$dir/serve.log" &
	pids+=($!)
	sleep 0.5
	packets=$(capture "$dir/open.pcap" $((PORT + 1)) "tcp://$SIP:$((PORT + 1))" - "$QS")
	check "control: the same capture of a keyless session shows the marker ($packets packets)" \
		grep -aq "$marker" "$dir/open.pcap"
else
	ok "# SKIP tcpdump missing: no capture"
	ok "# SKIP tcpdump missing: no capture"
fi

[ "$fails" -eq 0 ] || { echo "# ipc-serve log:"; sed 's/^/# /' "$dir/serve.log" | tail -40; }
exit 0
