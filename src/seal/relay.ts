// A sealed envelope as a FHIR R4 Binary, for a FHIR server that only relays it: contentType
// application/jose+json, data the envelope's bytes in base64, and meta.tag naming each
// recipient's (and the sender's) kid so a recipient finds what is addressed to it with
// GET [base]/Binary?_tag=urn:hako:seal:recipient|KID. The server holds no key to any of it.
import { HakoError } from '../errors.js';
import { protectedHeader, type Envelope } from './envelope.js';

export const JOSE_JSON = 'application/jose+json';
export const RECIPIENT_TAG = 'urn:hako:seal:recipient';
export const SENDER_TAG = 'urn:hako:seal:sender';

export interface SealedBinary {
  resourceType: 'Binary';
  contentType: string;
  meta: { tag: { system: string; code: string }[] };
  data: string;
}

export function binaryOf(env: Envelope, envelopeText: string): SealedBinary {
  const h = protectedHeader(env);
  return {
    resourceType: 'Binary',
    contentType: JOSE_JSON,
    meta: { tag: [...h.rkids.map((code) => ({ system: RECIPIENT_TAG, code })), { system: SENDER_TAG, code: h.skid }] },
    data: Buffer.from(envelopeText, 'utf8').toString('base64'),
  };
}

/** The envelope's text when `text` is a Binary carrying one; otherwise `text` itself. */
export function unwrapBinary(text: string): string {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch {
    return text;
  }
  if (v?.resourceType !== 'Binary') return text;
  if (v.contentType !== JOSE_JSON)
    throw new HakoError(`a Binary of contentType ${JSON.stringify(v.contentType)}, not ${JOSE_JSON}: not a sealed envelope`);
  if (typeof v.data !== 'string') throw new HakoError('a Binary without data: not a sealed envelope');
  return Buffer.from(v.data, 'base64').toString('utf8');
}
