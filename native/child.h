#ifndef HAKO_CHILD_H
#define HAKO_CHILD_H
#ifdef __cplusplus
extern "C" {
#endif
/* In the freshly cloned child of the runtime (a fork of node): become
 * non-dumpable, give the signals their defaults, put the container's fds in
 * place (fd_from[i] -> fd_to[i]), close every other fd, wait for the runtime's
 * go-ahead (id maps, cgroup), and execute the sealed hako-init (init_fd) with
 * the plan (plan_fd) and the sync socket. Never returns. */
#define HAKO_CHILD_DUMPABLE_WHILE_WAITING 1 /* a rootless runtime writes our id maps */
#define HAKO_CHILD_BECOME_ROOT            2 /* we made a user namespace: be its root before execve */
void hako_child_exec(int init_fd, int plan_fd, int sync_fd, const int *fd_from, const int *fd_to, int nfds, int flags);
#ifdef __cplusplus
}
#endif
#endif
