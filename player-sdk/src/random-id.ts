/** URL-safe random id from the platform CSPRNG (WebCrypto in browsers and Node). */
export function randomId(bytes = 12): string {
  const raw = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(raw);
  let out = '';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (const b of raw) out += alphabet[b & 63];
  return out;
}
