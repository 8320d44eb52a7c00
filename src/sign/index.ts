// Signed bundles: hako sign, hako verify, and the check behind --require-signed.
export { signBundle, type SignResult } from './sign.js';
export { verifyBundle, type Verified } from './verify.js';
export { SIGNATURE_FILE } from './signature-file.js';
export { requireSigned, type SignedOptions } from './require.js';
