/* SPDX-License-Identifier: MIT */
/*
 * error.c — the error table.
 *
 * One X-macro list in ipc.h (IPC_ERRORS) generates the enum, the messages
 * and the names, so the three can never drift apart. Codes are -errno where
 * a POSIX meaning fits, which lets internal code pass kernel and pthread
 * errors through unchanged.
 */
#include "libipc/core/core.h"

const char *ipc_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define IPC__ERR_MSG(name, value, msg) \
	case (value):                  \
		return msg;
		IPC_ERRORS(IPC__ERR_MSG)
#undef IPC__ERR_MSG
	default:
		return "unknown error";
	}
}

const char *ipc_err_name(int err)
{
	switch (err) {
	case 0:
		return "IPC_OK";
#define IPC__ERR_NAME(name, value, msg) \
	case (value):                   \
		return #name;
		IPC_ERRORS(IPC__ERR_NAME)
#undef IPC__ERR_NAME
	default:
		return "IPC_EUNKNOWN";
	}
}
