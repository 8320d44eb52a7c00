/* The clone sequence shared by the addon and the front (issue 20). Stub. */
typedef int hako_spawn_placeholder;
