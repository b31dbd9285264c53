/**
 * A link that reproduces the app's state: the URL's fragment holds the spec (the fields that differ
 * from the defaults), the model (a shipped one by name), the seed and xbar's version, as
 * base64url JSON. The fragment never reaches a server, so a spec stays in the browser.
 */
import type { Json } from './form.js';

export interface Shared {
  spec: Json;
  model: string;
  seed: number;
  version: string;
}

const toBase64Url = (text: string): string => {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

const fromBase64Url = (text: string): string => {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
};

/** The fragment for `s` (without '#'). */
export const encodeShared = (s: Shared): string => `s=${toBase64Url(JSON.stringify(s))}`;

/** The state in a fragment, or a message saying why it cannot be read; undefined when there is none. */
export function decodeShared(hash: string): Shared | string | undefined {
  const m = /(?:^#?|&)s=([A-Za-z0-9_-]+)/.exec(hash);
  if (!m) return undefined;
  try {
    const s = JSON.parse(fromBase64Url(m[1] as string)) as Partial<Shared>;
    if (typeof s !== 'object' || s === null || typeof s.spec !== 'object' || s.spec === null)
      return 'the link holds no spec';
    return {
      spec: s.spec as Json,
      model: typeof s.model === 'string' ? s.model : 'vit-fmnist',
      seed: Number.isSafeInteger(s.seed) ? (s.seed as number) : 0,
      version: typeof s.version === 'string' ? s.version : 'unknown',
    };
  } catch {
    return 'the link is damaged: its state cannot be read';
  }
}
