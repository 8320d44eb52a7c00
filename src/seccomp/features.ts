// What this seccomp compiler supports, for `hako features`.
import { ACTIONS, ARCHITECTURES, FLAGS, OPERATORS } from './types.js';

export interface SeccompFeatures {
  actions: string[];
  operators: string[];
  architectures: string[];
  flags: string[];
}

export function features(): SeccompFeatures {
  return { actions: [...ACTIONS], operators: [...OPERATORS], architectures: [...ARCHITECTURES], flags: [...FLAGS] };
}
