#!/bin/sh
# SPDX-License-Identifier: MIT
# Run every example and check its output for what must be true whatever the
# scheduling: exit status, exact totals, and orderings the primitives
# guarantee (no "go" before the last "ready" at a Barrier, ...). Speaks TAP.
bin=${top_builddir:-.}/examples
out=$(mktemp)
trap 'rm -f "$out"' EXIT
n=0
failed=0

# run NAME: run the example with a time limit, output into $out.
run() {
	timeout 60 "$bin/$1" >"$out" 2>&1
}

# line_of PATTERN [first|last]: line number of the first/last match, or 0.
line_of() {
	grep -n -e "$1" "$out" | cut -d: -f1 | sed -n "${2:-1}p" | grep . || echo 0
}
count() {
	grep -c -e "$1" "$out"
}

# check NAME DESCRIPTION CONDITION...: report one TAP line.
check() {
	name=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		sed 's/^/# /' "$out"
		failed=1
	fi
}

t_event() {
	run event_monkey || return 1
	set_line=$(line_of 'event status is set, then start monkey work')
	start_line=$(line_of 'start autotest task')
	[ "$set_line" -gt 0 ] && [ "$start_line" -gt 0 ] &&
		[ "$start_line" -lt "$set_line" ] &&
		[ "$(line_of 'waiting for event starting')" -lt "$set_line" ]
}

t_lock() {
	run lock_counter || return 1
	grep -q -e '\[MainProcess [0-9]*\] - Counter 200004 (expected 200004)' "$out" &&
		[ "$(count 'acquired lock')" -eq 4 ]
}

t_condition() {
	run condition_release || return 1
	made=$(line_of 'making \[release version\]')
	first_check=$(line_of 'starting version check of v2')
	[ "$(count 'starting version check of v2')" -eq 2 ] &&
		[ "$made" -gt 0 ] && [ "$made" -lt "$first_check" ]
}

t_semaphore() {
	run semaphore_pool || return 1
	[ "$(count 'makeActive')" -eq 10 ] && [ "$(count 'is removed')" -eq 10 ] &&
		grep -q 'peak of [123] workers at once, 3 allowed' "$out" &&
		grep -q 'an extra release is refused: IPC_EINVAL' "$out" &&
		# No list of running workers ever holds more than three names.
		! grep 'is running' "$out" | grep -q "\('[0-9]'.*\)\{4\}"
}

t_barrier() {
	run barrier_players || return 1
	last_ready=$(line_of 'ready$' '$')
	first_go=$(line_of 'go!')
	indices=$(sed -n 's/.*arrived #\([0-9]*\).*/\1/p' "$out" | sort -n | tr '\n' ' ')
	[ "$(count 'ready$')" -eq 10 ] && [ "$(count 'go!')" -eq 10 ] &&
		[ "$last_ready" -lt "$first_go" ] &&
		[ "$indices" = "0 1 2 3 4 5 6 7 8 9 " ] &&
		grep -q 'all 10 players started together' "$out"
}

t_queue() {
	run queue_basic || return 1
	got=$(sed -n 's/.*I got \([0-9]*\) messages.*/\1/p' "$out" | awk '{s += $1} END {print s}')
	[ "$(count "put 'task")" -eq 10 ] && [ "$(count "got 'task")" -eq 10 ] &&
		[ "$got" -eq 10 ] && grep -q 'all done, 0 left in the queue' "$out" ||
		return 1
	# Each consumer sees tasks in the order they were put.
	for c in consumer-1 consumer-2; do
		grep "\[$c .*got 'task" "$out" | sed "s/.*task \([0-9]*\)'.*/\1/" |
			sort -c -n 2>/dev/null || return 1
	done
}

t_joinable() {
	run joinable_queue || return 1
	[ "$(count 'working on task-')" -eq 12 ] &&
		grep -q 'join() returned: 12 of 12 tasks processed, 0 unfinished' "$out"
}

t_queue_vs_joinable() {
	run queue_vs_joinable || return 1
	grep -q 'Queue: empty() is true, but 0 of 3 jobs are processed' "$out" &&
		grep -q 'JoinableQueue: join() returned with 3 of 3 jobs processed' "$out" &&
		grep -q 'no job for me: it was lost with the dead consumer' "$out" &&
		grep -q "got the dead consumer's job again and finished it" "$out" &&
		grep -q 'JoinableQueue: join() = IPC_OK' "$out"
}

t_demo() {
	timeout 120 "$bin/demo" --items 20000 --crash >"$out" 2>&1 || return 1
	# Act 1 killed a consumer holding a task, act 2 one holding the Lock.
	requeued=$(sed -n 's/.*requeued \([0-9]*\) task.*/\1/p' "$out")
	repaired=$(sed -n 's/.*repaired \([0-9]*\) time.*/\1/p' "$out")
	grep -q 'act 1: SIGKILLed consumer-.*holding the task of item' "$out" &&
		grep -q 'act 2: SIGKILLed consumer-.*holding the tally Lock' "$out" &&
		[ "${requeued:-0}" -ge 1 ] && [ "${repaired:-0}" -ge 1 ] &&
		grep -q '20000 items in' "$out" &&
		grep -q 'tally (Lock)    20000 items' "$out" &&
		grep -q 'verified: OK' "$out" &&
		[ "$(sed -n 's/ *results total *//p' "$out")" = \
			"$(sed -n 's/ *expected total *//p' "$out")" ]
}

t_named() {
	run named_workers || return 1
	grep -q '^\[Boss [0-9]*\] - Boss: starting' "$out" &&
		grep -q '^\[Process-2 [0-9]*\] - Process-2: exiting' "$out" &&
		grep -q '^\[Boss-service [0-9]*\] - Boss-service: exiting' "$out" &&
		grep -q 'started Boss, Process-2 and Boss-service' "$out"
}

t_five() {
	run five_workers || return 1
	[ "$(count 'done (was #')" -eq 5 ] &&
		grep -q '5 workers were running at the same time' "$out"
}

t_enumerate() {
	run enumerate_children || return 1
	last_end=$(line_of '\] - ending$' '$')
	[ "$(count '\] - ending$')" -eq 3 ] && [ "$(count 'joining Process-')" -eq 3 ] &&
		grep -q '3 active children' "$out" &&
		[ "$(line_of '0 active children')" -gt "$last_end" ]
}

t_daemon() {
	run daemon_join || return 1
	grep -q 'join(daemon, 0.5 s): IPC_ETIMEDOUT; daemon alive: yes' "$out" &&
		grep -q '^\[non-daemon [0-9]*\] - exiting' "$out" &&
		! grep -q '^\[daemon [0-9]*\] - exiting' "$out"
}

t_pool() {
	run pool_squares || return 1
	workers=$(grep -c '^starting PoolWorker-[0-9]*$' "$out")
	[ "$workers" -ge 1 ] && [ "$workers" -eq "$(nproc)" ] &&
		grep -q '^\[0, 1, 4, 9, 16, 25, 36, 49, 64, 81\]$' "$out"
}

t_value() {
	run value_counter || return 1
	plain=$(sed -n 's/.*without the lock: \([0-9]*\) of 200000.*/\1/p' "$out")
	[ -n "$plain" ] && [ "$plain" -le 200000 ] &&
		grep -q 'with the lock:    200000 of 200000$' "$out" &&
		grep -q 'ipc_value_add:    200000 of 200000$' "$out"
}

t_pipe() {
	run pipe_pingpong || return 1
	for i in 1 2 3 4 5; do
		[ "$(line_of "\\[child .*got 'ping $i'")" -gt 0 ] &&
			[ "$(line_of "\\[MainProcess .*got 'pong $i'")" -gt \
				"$(line_of "\\[child .*got 'ping $i'")" ] || return 1
	done
	main_pid=$(sed -n 's/^\[MainProcess \([0-9]*\)\] - parent pid -1 (the main program has none)$/\1/p' "$out")
	[ -n "$main_pid" ] && grep -q "^\[child [0-9]*\] - my parent is $main_pid\$" "$out" &&
		[ "$(count "got 'p")" -eq 10 ] &&
		[ "$(line_of 'end of file: IPC_ECLOSED')" -gt "$(line_of 'closing my end')" ]
}

t_imap() {
	run pool_imap_unordered || return 1
	jobs=$(sed -n 's/.*\] - job \([0-9]*\): \([0-9]*\) (by PoolWorker-[0-9]*)$/\1 \2/p' "$out" |
		sort -n | tr '\n' ' ')
	[ "$jobs" = "0 0 1 1 2 4 3 9 4 16 5 25 6 36 7 49 " ] &&
		grep -q '8 of 8 results' "$out"
}

t_priority() {
	run priority_jobs || return 1
	done=$(sed -n 's/^\[worker [0-9]*\] - doing (priority \([0-9]*\)) \(.*\)$/\1 \2/p' "$out" |
		tr '\n' ',')
	[ "$done" = "0 restore the server,1 fix the build,2 review patch A,2 review patch B,3 water the plants,5 tidy the desk," ] &&
		grep -q 'no more jobs: IPC_ECLOSED' "$out"
}

t_wait() {
	run wait_queue_sentinel || return 1
	for i in 1 2 3 4 5; do
		[ "$(line_of "\\[producer .*putting 'result $i'")" -gt 0 ] &&
			[ "$(line_of "\\[MainProcess .*got 'result $i'")" -gt \
				"$(line_of "\\[producer .*putting 'result $i'")" ] || return 1
	done
	[ "$(count "got 'result")" -eq 5 ] &&
		grep -q 'producer ended with code 0; 5 results' "$out"
}

echo "1..19"
check "event: monkey starts only after autotest sets the event" t_event
check "lock: two processes count to exactly 200004" t_lock
check "condition: both consumers start after the release is made" t_condition
check "semaphore: ten workers, never more than three at once" t_semaphore
check "barrier: no player goes before all ten are ready" t_barrier
check "queue: ten messages, each once, in order per consumer" t_queue
check "joinable queue: join returns after all twelve tasks are done" t_joinable
check "queue vs joinable: taken is not done; a dead consumer's job survives" t_queue_vs_joinable
check "demo: consumers killed holding a task and the Lock; requeued >= 1, repaired >= 1, total verifies" t_demo
check "named workers: Boss, Process-2, Boss-service" t_named
check "five workers run at the same time" t_five
check "enumerate: three active children listed and joined" t_enumerate
check "daemon: join(timeout) leaves it running; main's exit terminates it" t_daemon
check "pool: squares of 0..9 in order; one initializer per worker" t_pool
check "value: ten processes count exactly with the lock and atomically" t_value
check "pipe: five pings answered in order, then end of file; parent pids" t_pipe
check "pool imap_unordered: eight slow jobs, each result once" t_imap
check "priority queue: most urgent job first, FIFO among equals" t_priority
check "wait: one loop on a queue and a process sentinel gets all five results" t_wait
exit $failed
