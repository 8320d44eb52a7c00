/** Landlock annotations hako cannot honour; the message names the annotation. */
export class LandlockError extends Error {
  override name = 'LandlockError';
}
