// The second factor for people: RFC 6238 time-based one-time codes (otpauth), SHA-1, 6 digits,
// 30-second steps — what authenticator apps accept from an otpauth:// URI. A code is good for its
// step and one step either side (clock drift), and only once: a step at or before the last one
// accepted is refused, so a code seen over a shoulder cannot be replayed.
import { Secret, TOTP } from 'otpauth';

const PERIOD = 30;

function totp(label: string, secret: string): TOTP {
  return new TOTP({ issuer: 'hako-fhir', label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secret) });
}

/** A new 160-bit secret, base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The enrolment URI an authenticator app reads (usually as a QR code). */
export function otpauthUri(label: string, secret: string): string {
  return totp(label, secret).toString();
}

/** The step a valid, unused code belongs to; undefined when it is wrong or was used already. */
export function acceptCode(secret: string, code: string, lastStep: number | undefined, now = Date.now()): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totp('', secret).validate({ token: code, timestamp: now, window: 1 });
  if (delta === null) return undefined;
  const step = Math.floor(now / 1000 / PERIOD) + delta;
  return lastStep !== undefined && step <= lastStep ? undefined : step;
}
