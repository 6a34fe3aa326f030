// RFC 6238 time-based one-time codes, as an authenticator app computes
// them, for the tests: HMAC-SHA1, 6 digits, 30-second steps, a base32
// secret (RFC 4648, without padding).
import { createHmac } from 'node:crypto';

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** base32Decode decodes an RFC 4648 base32 string; case, spaces and padding do not matter. */
export function base32Decode(text) {
  const clean = text.toUpperCase().replace(/[\s=]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(text)}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** step returns the 30-second time step of a time in milliseconds (now by default). */
export const step = (ms = Date.now()) => Math.floor(ms / 30_000);

/** totp returns the 6-digit code of the base32 secret for a time step (RFC 6238 / RFC 4226). */
export function totp(secret, timeStep = step()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(timeStep));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(bin % 1_000_000).padStart(6, '0');
}

/**
 * nextStep waits until the clock is in a time step after `after`, and
 * returns it: a server accepts each step's code once, so a second code
 * needs a new step. It waits no longer than that (at most 30 s).
 */
export async function nextStep(after) {
  for (;;) {
    const now = Date.now();
    if (step(now) > after) return step(now);
    await new Promise((ok) => setTimeout(ok, (after + 1) * 30_000 - now + 50));
  }
}
