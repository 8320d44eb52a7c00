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
void hako_child_exec(int init_fd, int plan_fd, int sync_fd, const int *fd_from, const int *fd_to, int nfds,
                     int dumpable_while_waiting);
#ifdef __cplusplus
}
#endif
#endif
