/* SPDX-License-Identifier: MIT */
/*
 * error.c — the error table.
 *
 * One X-macro list in ipc.h (IPC_ERRORS) generates the enum, the messages
 * and the names, so the three can never drift apart. Codes are -errno where
 * a POSIX meaning fits, which lets internal code pass kernel and pthread
 * errors through unchanged; ipc__sys_error translates every other errno.
 */
#include <errno.h>

#include "libipc/core/core.h"

_Static_assert(IPC_EPERM == -EPERM && IPC_ENOENT == -ENOENT &&
		       IPC_EIO == -EIO && IPC_ECHILD == -ECHILD &&
		       IPC_EAGAIN == -EAGAIN && IPC_ENOMEM == -ENOMEM &&
		       IPC_EACCES == -EACCES && IPC_EBUSY == -EBUSY &&
		       IPC_EEXIST == -EEXIST && IPC_EMFILE == -EMFILE &&
		       IPC_EDEADLK == -EDEADLK && IPC_EINVAL == -EINVAL &&
		       IPC_ENOTSUP == -ENOTSUP && IPC_EMSGSIZE == -EMSGSIZE &&
		       IPC_EPROTO == -EPROTO && IPC_ETIMEDOUT == -ETIMEDOUT &&
		       IPC_ECONNREFUSED == -ECONNREFUSED &&
		       IPC_EOWNERDEAD == -EOWNERDEAD &&
		       IPC_ENOTRECOVERABLE == -ENOTRECOVERABLE,
	       "IPC_E* codes equal -errno on this system");

/* Translate a system call's errno into a code of the table. Every errno a
 * libipc call can meet maps somewhere: the caller sees a documented code,
 * never a bare -errno (out of file descriptors used to come back as -24,
 * which ipc_err_name could not name). */
int ipc__sys_error(int e)
{
	switch (e) {
	case 0:
		return 0;
	case EPERM:
	case ENOENT:
	case ECHILD:
	case EAGAIN:
	case ENOMEM:
	case EACCES:
	case EBUSY:
	case EEXIST:
	case EDEADLK:
	case EINVAL:
	case EMFILE:
	case ENOTSUP:
	case EMSGSIZE:
	case EPROTO:
	case ETIMEDOUT:
	case ECONNREFUSED:
	case EOWNERDEAD:
	case ENOTRECOVERABLE:
		return -e; /* a code of the table (checked in core.h) */
	case ENFILE:
		return -EMFILE;
	case ENOSPC:
	case EFBIG:
	case EDQUOT:
	case ENOBUFS:
		return -ENOMEM;
	case EROFS:
		return -EACCES;
	case EINTR:
		return -EAGAIN;
	case ENAMETOOLONG:
	case EFAULT:
	case EBADF:
		return -EINVAL;
	case ELOOP:
	case EISDIR:
	case ENODEV:
	case ENXIO:
	case EOVERFLOW:
		return -EPROTO; /* the name holds no segment libipc can map */
	case ENOSYS:
		return -ENOTSUP;
	default:
		return -EIO;
	}
}

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
