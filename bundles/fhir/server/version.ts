// The server's build, as /metadata reports it (software.version). A file of its own so that
// a rollout can be proven from one version to the next: a bundle copy changes this line only.
export const VERSION = '0.1.0';
