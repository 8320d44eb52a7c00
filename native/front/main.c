/*
 * bin/hako, the front (issue 20): a small C program that hands the call to the
 * warm planner of its own uid (<state root>/.planner.sock) and executes what
 * the planner decides, so a call does not pay node's start-up. Wherever the
 * planner cannot serve (none yet, HAKO_PLANNER=off, another uid's, a verb it
 * does not serve), today's path runs: node bin/hako.cjs with the same argv.
 */
#include "front.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp) {
  struct front_call c = {argc, argv, envp, NULL, NULL};
  const char *mode = getenv("HAKO_PLANNER");
  if (mode && strcmp(mode, "off") == 0) front_fallback(&c, "HAKO_PLANNER=off");
  /* With a stdio fd closed the socket could take its number, and be handed
   * to the planner (and a container) as stdout. */
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0) front_fallback(&c, "a standard fd is closed");
  front_parse_args(&c);
  if (!front_serves(c.verb)) front_fallback(&c, "the planner does not serve this verb");
  char root[PATH_MAX];
  if (front_state_root(&c, root, sizeof root) < 0) front_fallback(&c, "the state root is not settled");
  int root_fd = front_open_root(root);
  if (root_fd == -ENOENT) {
    /* Today's path may make the root; the planner starts if it did. */
    front_start_planner(&c, root);
    front_fallback(&c, "no planner yet");
  }
  if (root_fd < 0) front_fallback(&c, "the state root is not the caller's own");
  int sock = front_connect(root_fd);
  close(root_fd);
  if (sock == -ENOENT || sock == -ECONNREFUSED) {
    front_start_planner(&c, root);
    front_fallback(&c, "no planner yet");
  }
  if (sock < 0) front_fallback(&c, sock == -EPERM ? "the socket's planner is not the caller's" : "no connection");
  if (front_send_request(sock, &c) < 0) {
    close(sock);
    front_fallback(&c, "the planner did not take the call");
  }
  const char *why = "the planner sent it back";
  front_serve(sock, &why);
  close(sock);
  front_fallback(&c, why);
}
