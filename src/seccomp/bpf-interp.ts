// A classic-BPF interpreter over struct seccomp_data, for tests and benchmarks: it runs a
// program the way the kernel's seccomp filter would and counts the instructions executed.
// It rejects what the kernel's checker would (bad loads, running off the end).

/** The input of a seccomp filter (struct seccomp_data, little-endian). */
export interface SeccompData {
  nr: number;
  arch: number;
  instructionPointer?: bigint;
  /** Up to six arguments, unsigned 64-bit; missing ones are 0. */
  args?: readonly bigint[];
}

export interface BpfResult {
  /** The filter's return value (SECCOMP_RET_* action | data). */
  action: number;
  /** Instructions executed, the final return included. */
  steps: number;
}

const SECCOMP_DATA_SIZE = 64;
const BPF_MEMWORDS = 16;

function dataWords(d: SeccompData): Uint32Array {
  const bytes = new DataView(new ArrayBuffer(SECCOMP_DATA_SIZE));
  bytes.setInt32(0, d.nr | 0, true);
  bytes.setUint32(4, d.arch >>> 0, true);
  bytes.setBigUint64(8, d.instructionPointer ?? 0n, true);
  for (let i = 0; i < 6; i++) bytes.setBigUint64(16 + 8 * i, BigInt.asUintN(64, d.args?.[i] ?? 0n), true);
  return new Uint32Array(bytes.buffer);
}

/** Runs a program (struct sock_filter[] as bytes) on one seccomp_data. */
export function runBpf(program: Uint8Array, data: SeccompData): BpfResult {
  if (program.length === 0 || program.length % 8 !== 0) throw new Error(`program length ${program.length} is not a positive multiple of 8`);
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const len = program.length / 8;
  const words = dataWords(data);
  const mem = new Uint32Array(BPF_MEMWORDS);
  let a = 0;
  let x = 0;
  let pc = 0;
  let steps = 0;
  const load = (off: number): number => {
    if (off % 4 !== 0 || off < 0 || off + 4 > SECCOMP_DATA_SIZE) throw new Error(`instruction ${pc}: bad load offset ${off}`);
    return words[off / 4]!;
  };
  for (;;) {
    if (pc >= len) throw new Error(`ran off the end of the program (${len} instructions)`);
    const code = view.getUint16(pc * 8, true);
    const jt = view.getUint8(pc * 8 + 2);
    const jf = view.getUint8(pc * 8 + 3);
    const k = view.getUint32(pc * 8 + 4, true);
    steps++;
    const cls = code & 0x07;
    const src = code & 0x08 ? x : k;
    switch (cls) {
      case 0x00: // BPF_LD
        switch (code & 0xe0) {
          case 0x20:
            a = load(k);
            break; // ABS
          case 0x00:
            a = k;
            break; // IMM
          case 0x60:
            a = mem[k]!;
            break; // MEM
          case 0x80:
            a = SECCOMP_DATA_SIZE;
            break; // LEN
          default:
            throw new Error(`instruction ${pc}: unsupported load 0x${code.toString(16)}`);
        }
        pc++;
        break;
      case 0x01: // BPF_LDX
        if ((code & 0xe0) === 0x00) x = k;
        else if ((code & 0xe0) === 0x60) x = mem[k]!;
        else if ((code & 0xe0) === 0x80) x = SECCOMP_DATA_SIZE;
        else throw new Error(`instruction ${pc}: unsupported ldx 0x${code.toString(16)}`);
        pc++;
        break;
      case 0x02:
        mem[k] = a;
        pc++;
        break; // BPF_ST
      case 0x03:
        mem[k] = x;
        pc++;
        break; // BPF_STX
      case 0x04: {
        // BPF_ALU
        switch (code & 0xf0) {
          case 0x00:
            a = (a + src) >>> 0;
            break;
          case 0x10:
            a = (a - src) >>> 0;
            break;
          case 0x20:
            a = Math.imul(a, src) >>> 0;
            break;
          case 0x30:
            if (src === 0) return { action: 0, steps };
            a = Math.floor(a / src) >>> 0;
            break;
          case 0x40:
            a = (a | src) >>> 0;
            break;
          case 0x50:
            a = (a & src) >>> 0;
            break;
          case 0x60:
            a = src >= 32 ? 0 : (a << src) >>> 0;
            break;
          case 0x70:
            a = src >= 32 ? 0 : a >>> src;
            break;
          case 0x80:
            a = -a >>> 0;
            break;
          case 0x90:
            if (src === 0) return { action: 0, steps };
            a = (a % src) >>> 0;
            break;
          case 0xa0:
            a = (a ^ src) >>> 0;
            break;
          default:
            throw new Error(`instruction ${pc}: unsupported alu 0x${code.toString(16)}`);
        }
        pc++;
        break;
      }
      case 0x05: {
        // BPF_JMP
        const op = code & 0xf0;
        if (op === 0x00) {
          pc += 1 + k;
          break;
        } // JA
        let taken: boolean;
        if (op === 0x10) taken = a === src;
        else if (op === 0x20) taken = a > src;
        else if (op === 0x30) taken = a >= src;
        else if (op === 0x40) taken = (a & src) !== 0;
        else throw new Error(`instruction ${pc}: unsupported jump 0x${code.toString(16)}`);
        pc += 1 + (taken ? jt : jf);
        break;
      }
      case 0x06: // BPF_RET
        return { action: ((code & 0x18) === 0x10 ? a : k) >>> 0, steps };
      case 0x07: // BPF_MISC
        if ((code & 0xf8) === 0x00)
          x = a; // TAX
        else a = x; // TXA
        pc++;
        break;
    }
  }
}
