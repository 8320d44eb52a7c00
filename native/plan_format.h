/*
 * The launch plan's wire format, shared by the executor (C) and src/plan/encode.ts.
 *
 * A plan is: "HAKO" u32 version u32 nsteps, then nsteps steps. A step is
 * u32 op, u32 nargs, then nargs args; an arg is u32 kind, then for KIND_INT a
 * little-endian u64, for KIND_BYTES a u32 length, the bytes and one NUL.
 * All integers are little-endian. The executor never copies: string args point
 * into the buffer.
 *
 * The ops, their argument kinds, the messages and the limits are one table,
 * plan_ops.def; this header expands it.
 */
#ifndef HAKO_PLAN_FORMAT_H
#define HAKO_PLAN_FORMAT_H

#define HAKO_PLAN_MAGIC "HAKO"

/* HAKO_PLAN_VERSION, HAKO_ARG_INT, HAKO_ARG_BYTES, HAKO_MAX_ARGS, HAKO_EXEC_MAX */
#define HAKO_CONST(name, value) enum { HAKO_##name = (value) };
#define HAKO_LIMIT(name, value) enum { HAKO_##name = (value) };
#include "plan_ops.def"

enum hako_op {
#define HAKO_OP(name, num, kinds) OP_##name = (num),
#include "plan_ops.def"
  OP_MAX /* one past the last op: plan_ops.def keeps them in ascending order */
};

/* OP_MOUNT opts bits */
#define HAKO_MNT_OPT(name, bit) enum { MNT_OPT_##name = (bit) };
#include "plan_ops.def"

/* Messages on the sync socket (SOCK_SEQPACKET), both directions. */
enum hako_msg {
#define HAKO_MSG(name, num) MSG_##name = (num),
#include "plan_ops.def"
};

struct hako_msg_wire {
  unsigned int type;
  unsigned int step;
  int err;
  int value;
};

#endif
