#ifndef HAKO_FDPASS_H
#define HAKO_FDPASS_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Sends data with one fd (SCM_RIGHTS) on a unix socket. 0 or -errno. */
int hako_send_fd(int sock, int fd, const void *data, size_t len);
/* Receives a message and the fd riding along (close-on-exec; -1 if none).
 * The byte count (0 at EOF) or -errno. */
long hako_recv_fd(int sock, void *data, size_t len, int *fd);
/* The same, extra fds closed, and the sender's pid (SCM_CREDENTIALS, when the
 * socket has SO_PASSCRED; 0 otherwise) into *pid unless pid is NULL. */
long hako_recv_msg(int sock, void *data, size_t len, int *fd, int *pid);
#ifdef __cplusplus
}
#endif
#endif
