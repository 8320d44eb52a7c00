// Builds a classic-BPF program back to front. Jumps only go forward, so emitting in reverse
// means every jump target already exists and its distance is known; a target more than 255
// instructions away (the 8-bit jt/jf limit) is reached through a JA trampoline, or for a
// return, through a fresh copy of the RET placed nearby (which costs no extra step).

/** Where a jump goes: a return with this action, or an emitted instruction. */
export type Target = { ret: number } | { label: number };

/** An instruction's position counted from the end of the program (stable while emitting). */
export type Label = number;

const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JMP_JA = 0x05;
const RET_K = 0x06;
export const JEQ = 0x15;
export const JGT = 0x25;
export const JGE = 0x35;

const MAX_JUMP = 255;

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export class ReverseEmitter {
  private readonly insns: Insn[] = [];
  private readonly rets = new Map<number, Label>();
  /** JA trampolines inserted for far jumps. */
  longJumps = 0;

  get size(): number {
    return this.insns.length;
  }

  private push(code: number, jt: number, jf: number, k: number): Label {
    this.insns.push({ code, jt, jf, k: k >>> 0 });
    return this.insns.length - 1;
  }

  /** Distance a jump emitted next would need to reach `label`. */
  private distance(label: Label): number {
    return this.insns.length - label - 1;
  }

  ret(action: number): Label {
    const label = this.push(RET_K, 0, 0, action);
    this.rets.set(action >>> 0, label);
    return label;
  }

  load(offset: number): Label {
    return this.push(LD_W_ABS, 0, 0, offset);
  }

  and(mask: number): Label {
    return this.push(ALU_AND_K, 0, 0, mask);
  }

  /** A label for `target` no further than MAX_JUMP - reserve from the next instruction. */
  private reach(target: Target, reserve: number): Label {
    const limit = MAX_JUMP - reserve;
    if ('ret' in target) {
      const near = this.rets.get(target.ret >>> 0);
      return near !== undefined && this.distance(near) <= limit ? near : this.ret(target.ret);
    }
    if (this.distance(target.label) <= limit) return target.label;
    this.longJumps++;
    return this.push(JMP_JA, 0, 0, this.distance(target.label));
  }

  /** A label for `target`, emitting a RET if the target is a return. */
  at(target: Target): Label {
    return 'ret' in target ? this.reach(target, 0) : target.label;
  }

  /** A conditional jump on A against k; the false target is reached first so one reserve slot suffices. */
  jump(op: number, k: number, onTrue: Target, onFalse: Target): Label {
    const f = this.reach(onFalse, 1);
    const t = this.reach(onTrue, 0);
    return this.push(op, this.distance(t), this.distance(f), k);
  }

  /** The program as struct sock_filter[] bytes (little-endian, as the kernel reads it on LE). */
  finish(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const view = new DataView(out.buffer);
    this.insns.forEach((insn, i) => {
      const at = (this.insns.length - 1 - i) * 8;
      view.setUint16(at, insn.code, true);
      view.setUint8(at + 2, insn.jt);
      view.setUint8(at + 3, insn.jf);
      view.setUint32(at + 4, insn.k, true);
    });
    return out;
  }
}
