/* SPDX-License-Identifier: MIT */
/*
 * pipe.h — what the Pipe offers the rest of libipc, internal.
 */
#ifndef LIBIPC_PIPE_H
#define LIBIPC_PIPE_H

#include "libipc/queue/queue.h"

/* ipc_wait (wait/wait.c): arm a watch on c's receive side, as
 * ipc__queue_watch does for a queue: 1 ready (a receive would not block:
 * a message, or end of file), 0 armed, or a negative IPC_E* (IPC_EPERM
 * for a send-only end; nothing armed then). w->recheck_ms is at most
 * IPC__RECHECK_MS: a peer's death is found by looking. Each watch that
 * returned >= 0 is paired with one ipc__conn_unwatch. */
int ipc__conn_watch(ipc_conn *c, struct ipc__watch *w);
void ipc__conn_unwatch(ipc_conn *c, struct ipc__watch *w);

#endif /* LIBIPC_PIPE_H */
