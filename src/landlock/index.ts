export { compileLandlock, PREFIX } from './compile.js';
export type { LandlockPlan, LandlockOptions } from './compile.js';
export { LandlockError } from './errors.js';
export { FS, NET, fsRights, netRights } from './access.js';
