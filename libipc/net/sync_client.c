/* SPDX-License-Identifier: MIT */
/*
 * sync_client.c — remote Event, Lock, Semaphore and Barrier.
 *
 * A connected handle is an ordinary ipc_event (ipc_lock, ...) made by
 * sync/ around a struct ipc__sync_remote; every public call on it arrives
 * here as one operation number, travels as one request on the handle's
 * connection (client.c) and comes back as the status the server's local
 * call returned. Waits (event wait, lock and semaphore acquire) run on the
 * server in slices that the connection repeats until the caller's
 * deadline, so the session keeps its lease while it waits. A Barrier wait
 * runs on the server in one piece, for the caller's whole timeout: a
 * barrier wait that times out breaks the barrier, so it cannot be cut into
 * slices; nanomsg's resend of the pending request renews the lease while it
 * waits.
 *
 * What the server holds for a handle (the Lock, Semaphore units it
 * acquired) is held by the handle's session, not by a thread of this
 * process: a remote Lock's holder is the handle.
 */
#include <errno.h>
#include <stdlib.h>

#include "libipc/net/net.h"
#include "libipc/sync/sync.h"

struct rsync {
	struct ipc__sync_remote hdr; /* first: sync/ hands us &hdr */
	struct ipc__conn *conn;
};

struct rs_op {
	uint16_t wire;
	bool waits; /* takes a timeout */
	bool value; /* answers a count or flag (>= 0), not just 0 */
};

static const struct rs_op rs_ops[] = {
	[IPC__SYNC_EVENT_SET] = { IPC__OP_EV_SET, false, false },
	[IPC__SYNC_EVENT_CLEAR] = { IPC__OP_EV_CLEAR, false, false },
	[IPC__SYNC_EVENT_IS_SET] = { IPC__OP_EV_IS_SET, false, true },
	[IPC__SYNC_EVENT_WAIT] = { IPC__OP_EV_WAIT, true, false },
	[IPC__SYNC_LOCK_ACQUIRE] = { IPC__OP_LK_ACQUIRE, true, false },
	[IPC__SYNC_LOCK_RELEASE] = { IPC__OP_LK_RELEASE, false, false },
	[IPC__SYNC_SEM_ACQUIRE] = { IPC__OP_SEM_ACQUIRE, true, false },
	[IPC__SYNC_SEM_RELEASE] = { IPC__OP_SEM_RELEASE, false, false },
	[IPC__SYNC_SEM_VALUE] = { IPC__OP_SEM_VALUE, false, true },
	[IPC__SYNC_BARRIER_WAIT] = { IPC__OP_BAR_WAIT, true, true },
	[IPC__SYNC_BARRIER_ABORT] = { IPC__OP_BAR_ABORT, false, false },
	[IPC__SYNC_BARRIER_RESET] = { IPC__OP_BAR_RESET, false, false },
	[IPC__SYNC_BARRIER_PARTIES] = { IPC__OP_BAR_PARTIES, false, true },
	[IPC__SYNC_BARRIER_N_WAITING] = { IPC__OP_BAR_N_WAITING, false, true },
	[IPC__SYNC_BARRIER_BROKEN] = { IPC__OP_BAR_BROKEN, false, true },
	[IPC__SYNC_SEM_RELEASE_N] = { IPC__OP_SEM_RELEASE_N, false, false },
	[IPC__SYNC_LOCK_LOCKED] = { IPC__OP_LK_LOCKED, false, true },
	[IPC__SYNC_BARRIER_TIMEOUT] = { IPC__OP_BAR_TIMEOUT, false, true },
};

static int rs_call(struct ipc__sync_remote *r, enum ipc__sync_op op,
		   int timeout_ms)
{
	struct rsync *s = (struct rsync *)r;
	struct ipc__body b = { 0 }, rep;
	struct ipc__deadline dl;
	uint8_t *plain = NULL;
	int rc;

	if ((unsigned)op >= sizeof(rs_ops) / sizeof(rs_ops[0]) ||
	    rs_ops[op].wire == 0)
		return IPC_ENOTSUP;
	b.op = rs_ops[op].wire;
	if (rs_ops[op].waits) {
		rc = ipc__deadline_init(&dl, timeout_ms);
		if (rc != 0)
			return rc;
		rc = ipc__conn_blocking(s->conn, &b, &dl,
					op == IPC__SYNC_BARRIER_WAIT, &rep,
					&plain);
		free(plain);
	} else {
		rc = ipc__conn_simple(s->conn, b.op, timeout_ms, &rep);
	}
	if (rc != 0)
		return rc;
	/* The server is a peer, not shared memory we trust: a status this
	 * call cannot return is a protocol error. */
	if (rep.arg > 0 && !rs_ops[op].value)
		return IPC_EPROTO;
	return rep.arg;
}

static void rs_close(struct ipc__sync_remote *r)
{
	struct rsync *s = (struct rsync *)r;

	ipc__conn_close(s->conn);
	free(s);
}

static const struct ipc__sync_ops rs_table = {
	.call = rs_call,
	.close = rs_close,
};

static int rs_connect(struct rsync **out, const char *url, const char *name,
		      const ipc_net_attr *attr, uint8_t kind)
{
	struct rsync *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return IPC_ENOMEM;
	rc = ipc__conn_open(&s->conn, url, name, attr, kind);
	if (rc != 0) {
		free(s);
		return rc;
	}
	s->hdr.ops = &rs_table;
	*out = s;
	return 0;
}

int ipc_event_connect(ipc_event **ev, const char *url, const char *name,
		      const ipc_net_attr *attr)
{
	struct rsync *s;
	int rc;

	if (ev == NULL)
		return IPC_EINVAL;
	*ev = NULL;
	rc = rs_connect(&s, url, name, attr, IPC__NK_EVENT);
	return rc ? rc : ipc__event_remote(ev, &s->hdr);
}

int ipc_lock_connect(ipc_lock **lk, const char *url, const char *name,
		     const ipc_net_attr *attr)
{
	struct rsync *s;
	int rc;

	if (lk == NULL)
		return IPC_EINVAL;
	*lk = NULL;
	rc = rs_connect(&s, url, name, attr, IPC__NK_LOCK);
	return rc ? rc : ipc__lock_remote(lk, &s->hdr);
}

int ipc_sem_connect(ipc_sem **sem, const char *url, const char *name,
		    const ipc_net_attr *attr)
{
	struct rsync *s;
	int rc;

	if (sem == NULL)
		return IPC_EINVAL;
	*sem = NULL;
	rc = rs_connect(&s, url, name, attr, IPC__NK_SEM);
	return rc ? rc : ipc__sem_remote(sem, &s->hdr);
}

int ipc_barrier_connect(ipc_barrier **b, const char *url, const char *name,
			const ipc_net_attr *attr)
{
	struct rsync *s;
	int rc;

	if (b == NULL)
		return IPC_EINVAL;
	*b = NULL;
	rc = rs_connect(&s, url, name, attr, IPC__NK_BARRIER);
	return rc ? rc : ipc__barrier_remote(b, &s->hdr);
}
