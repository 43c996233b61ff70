#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python's multiprocessing beside libipc, for bench/ipc-bench.

ipc-bench runs this script once per measurement and reads the key=value
lines it prints. Each workload follows the same method as ipc-bench's C
code: separate processes (the fork start method), a warm-up, a
time-bounded window, the clock stopped at the receiver, CPU time from
getrusage of every process over its measured loop.

  mp_bench.py stream queue|pipe SIZE WINDOW
  mp_bench.py latency queue|pipe WINDOW
  mp_bench.py wakeup queue|pipe ROUNDS
  mp_bench.py grid NP NC WINDOW
  mp_bench.py prim lock|lock2|event|sem|barrier|joinable WINDOW
  mp_bench.py pool N
  mp_bench.py batch "COMMAND" "COMMAND" ...

batch runs each COMMAND (one of the above) in turn in this one
interpreter, so that a run of the benchmark does not pay for a Python
start per measurement; it prints "#begin I" before command I's lines and
"#end I SECONDS" after them (its wall clock), or "#fail I" when it failed.
"""
import multiprocessing as mp
import resource
import sys
import time

DATA, END = 0, 1
ctx = mp.get_context("fork")


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(s, p):
    i = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[i]


def emit(**kv):
    for k, v in kv.items():
        print(f"{k}={v:.9g}", flush=True)


# --- one-way channels: a Queue, or a one-way Pipe (send_bytes/recv_bytes) --
class QueueChan:
    def __init__(self, size=64):
        # Every multiprocessing.Queue takes a semaphore per put and get
        # (maxsize 0 only makes its limit SEM_VALUE_MAX); a limit of about
        # 1 MiB of messages, like ipc-bench's other rows, costs nothing
        # more and keeps a fast producer from buffering without bound.
        self.q = ctx.Queue(max(4, min(16384, (1 << 22) // (size + 8) // 4)))

    def send(self, m):
        self.q.put(m)

    def recv(self):
        return self.q.get()

    def flush(self):
        """Wait until this process's feeder thread has written everything."""
        self.q.close()
        self.q.join_thread()


class PipeChan:
    def __init__(self):
        self.r, self.w = ctx.Pipe(duplex=False)

    def send(self, m):
        self.w.send_bytes(m)

    def recv(self):
        return self.r.recv_bytes()

    def flush(self):
        pass


def chan(kind, size=64):
    return QueueChan(size) if kind == "queue" else PipeChan()


# --- stream and grid ------------------------------------------------------
def producer(ch, p, size, window, warmup, ack, released, res):
    msg = bytes([DATA, p]) + b"x" * (size - 2)
    for _ in range(warmup):
        ch.send(msg)
    if warmup:
        ack.wait()
    c0, t0 = cpu(), now()
    stop, n = t0 + window, 0
    while now() < stop:
        ch.send(msg)
        n += 1
    ch.flush()  # every message written before the parent sends the ends
    res.put(("p", p, t0, n))
    released.wait()
    res.put(("cpu", p, cpu() - c0))


def consumer(ch, k, size, warmup, ack, res, np):
    for _ in range(warmup):
        ch.recv()
    if warmup:
        ack.set()
    c0 = cpu()
    got, frm, t_last = 0, [0] * np, 0.0
    while True:
        m = ch.recv()
        if len(m) != size or m[1] >= np:
            sys.exit(6)
        if m[0] == END:
            break
        t_last = now()  # the marker comes from the parent, later
        frm[m[1]] += 1
        got += 1
    res.put(("c", k, t_last, got, cpu() - c0, frm))


def run_stream(kind, size, window, np=1, nc=1):
    """The C side's method, except that the end markers come from this
    parent once every producer has flushed (a Queue's feeder thread writes
    after put returns), and the receivers stop their clocks at their last
    data message."""
    ch = chan(kind, size)
    warmup = max(2, min(1000, (1 << 20) // size)) if np == nc == 1 else 0
    ack, released = ctx.Event(), ctx.Event()
    res = ctx.SimpleQueue()
    cons = [ctx.Process(target=consumer,
                        args=(ch, k, size, warmup, ack, res, np))
            for k in range(nc)]
    prods = [ctx.Process(target=producer,
                         args=(ch, p, size, window, warmup, ack, released,
                               res))
             for p in range(np)]
    for x in cons + prods:
        x.start()
    out = [res.get() for _ in range(np)]
    end = bytes([END, 0]) + b"x" * (size - 2)
    for _ in range(nc):
        ch.send(end)
    out += [res.get() for _ in range(nc)]
    for x in cons:
        x.join()
    released.set()
    out += [res.get() for _ in range(np)]
    for x in prods:
        x.join()
    if any(x.exitcode != 0 for x in cons + prods):
        sys.exit(6)
    t0 = min(r[2] for r in out if r[0] == "p")
    t1 = max(r[2] for r in out if r[0] == "c")
    got = sum(r[3] for r in out if r[0] == "c")
    sent = sum(r[3] for r in out if r[0] == "p")
    if got != sent or got == 0:
        sys.exit(7)
    cpu_s = sum(r[4] for r in out if r[0] == "c")
    cpu_s += sum(r[2] for r in out if r[0] == "cpu")
    per = [0] * np
    for r in out:
        if r[0] == "c":
            per = [a + b for a, b in zip(per, r[5])]
    return got / (t1 - t0), cpu_s / got, per, got, t1 - t0


# --- latency --------------------------------------------------------------
def echo(a, b):
    while True:
        m = a.recv()
        if m[0] == END:
            return
        b.send(m)


def run_latency(kind, window):
    a, b = chan(kind), chan(kind)
    p = ctx.Process(target=echo, args=(a, b))
    p.start()
    m = bytes(64)
    for _ in range(1000):
        a.send(m)
        b.recv()
    s, stop = [], now() + window
    while True:
        t = now()
        a.send(m)
        b.recv()
        t1 = now()
        s.append((t1 - t) * 5e5)
        if t1 >= stop:
            break
    a.send(bytes([END]) + bytes(63))
    p.join()
    s.sort()
    emit(p50_us=percentile(s, 50), p99_us=percentile(s, 99),
         p999_us=percentile(s, 99.9), max_us=s[-1], samples=len(s))


def wake_receiver(a, res):
    s = []
    while True:
        m = a.recv()
        t = now()
        if m[0] == END:
            break
        if len(m) != 64:
            sys.exit(6)
        s.append((t - float(m[8:].decode())) * 1e6)
    res.put(s[10:])


def run_wakeup(kind, rounds):
    a = chan(kind)
    res = ctx.SimpleQueue()
    p = ctx.Process(target=wake_receiver, args=(a, res))
    p.start()
    for _ in range(rounds + 10):
        time.sleep(0.001)
        # 64 B, as the C rows: the stamp in text, padded with spaces
        a.send((bytes(8) + repr(now()).encode()).ljust(64))
    a.send(bytes([END]) + bytes(63))
    s = sorted(res.get())
    p.join()
    emit(p50_us=percentile(s, 50), p99_us=percentile(s, 99),
         p999_us=percentile(s, 99.9), max_us=s[-1], samples=len(s))


# --- primitives across two processes --------------------------------------
def lock_loop(lk, window, res):
    """As ipc-bench's: each process times its own loop."""
    t0 = now()
    n, stop = 0, t0 + window
    while now() < stop:
        for _ in range(100):
            lk.acquire()
            lk.release()
        n += 100
    res.put((n, now() - t0))


def pingpong_peer(kind, x, y, stop):
    while True:
        if kind == "event":
            x.wait()
            x.clear()
            if stop.value:
                return
            y.set()
        else:
            x.acquire()
            if stop.value:
                return
            y.release()


def barrier_peer(b, stop):
    n = 0
    while True:
        b.wait()
        n += 1
        if stop.value and n >= stop.value:
            return


def joinable_consumer(q):
    while True:
        m = q.get()
        q.task_done()
        if m is None:
            return


def run_prim(name, window):
    if name in ("lock", "lock2"):
        lk, res = ctx.Lock(), ctx.SimpleQueue()
        procs = [ctx.Process(target=lock_loop, args=(lk, window, res))
                 for _ in range(1 if name == "lock" else 2)]
        for p in procs:
            p.start()
        r = [res.get() for _ in procs]
        for p in procs:
            p.join()
        n, dt = sum(x[0] for x in r), max(x[1] for x in r)
        if name == "lock":
            emit(ns_per_op=dt * 1e9 / n)
        else:
            emit(ops_per_s=n / dt)
        return
    stop = ctx.Value("i", 0, lock=False)
    n = 0
    if name in ("event", "sem"):
        mk = ctx.Event if name == "event" else (lambda: ctx.Semaphore(0))
        x, y = mk(), mk()
        p = ctx.Process(target=pingpong_peer, args=(name, x, y, stop))
        p.start()
        t0, end = now(), now() + window
        while now() < end:
            if name == "event":
                x.set()
                y.wait()
                y.clear()
            else:
                x.release()
                y.acquire()
            n += 1
        dt = now() - t0
        stop.value = 1
        x.set() if name == "event" else x.release()
        p.join()
        emit(us_per_wake=dt / n / 2 * 1e6)
    elif name == "barrier":
        b = ctx.Barrier(2)
        p = ctx.Process(target=barrier_peer, args=(b, stop))
        p.start()
        t0, end = now(), now() + window
        while True:  # the last round named before it starts, as in C
            if not stop.value and now() >= end:
                stop.value = n + 1
            b.wait()
            n += 1
            if stop.value and n >= stop.value:
                break
        dt = now() - t0
        p.join()
        emit(us_per_round=dt / n * 1e6)
    elif name == "joinable":
        q = ctx.JoinableQueue()
        p = ctx.Process(target=joinable_consumer, args=(q,))
        p.start()
        t0, end = now(), now() + window
        while now() < end:
            q.put(1)
            q.join()
            n += 1
        dt = now() - t0
        q.put(None)
        p.join()
        emit(us_per_cycle=dt / n * 1e6)


def sq(x):
    return x * x


def run_pool(n):
    with ctx.Pool() as p:
        p.map(sq, range(1000))
        t = now()
        r = p.map(sq, range(n))
        dt = now() - t
    assert r[-1] == (n - 1) ** 2
    emit(items_per_s=n / dt)


def batch(cmds):
    for i, cmd in enumerate(cmds):
        # Flushed before any fork: a child flushes what it inherited.
        print(f"#begin {i}", flush=True)
        t0 = now()
        try:
            main(cmd.split())
        except (SystemExit, Exception):  # noqa: BLE001 (reported, not hidden)
            print(f"#fail {i}", flush=True)
            continue
        print(f"#end {i} {now() - t0:.9g}", flush=True)


def main(a):
    if a[0] == "batch":
        batch(a[1:])
    elif a[0] == "stream":
        rate, cpu_per, _, got, secs = run_stream(a[1], int(a[2]),
                                                 float(a[3]))
        emit(msgs_per_s=rate, MB_per_s=rate * int(a[2]) / 1e6,
             cpu_us_per_msg=cpu_per * 1e6, msgs=got, seconds=secs)
    elif a[0] == "latency":
        run_latency(a[1], float(a[2]))
    elif a[0] == "wakeup":
        run_wakeup(a[1], int(a[2]))
    elif a[0] == "grid":
        np, nc = int(a[1]), int(a[2])
        rate, _, per, got, secs = run_stream("queue", 64, float(a[3]), np,
                                             nc)
        emit(msgs_per_s=rate, msgs=got, seconds=secs)
        for i, c in enumerate(per):
            emit(**{f"producer{i}": c})
        emit(max_over_min=max(per) / min(per) if min(per) else float("inf"))
    elif a[0] == "prim":
        run_prim(a[1], float(a[2]))
    elif a[0] == "pool":
        run_pool(int(a[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
