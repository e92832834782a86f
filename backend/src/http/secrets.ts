import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compare a secret someone sent with the one we hold, in time that does not depend on where they
 * differ: both are hashed first (equal lengths, and the length of ours is not revealed either),
 * then compared with `timingSafeEqual`. The one compare every server uses for its tokens.
 */
export function sameSecret(given: string | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of an `authorization: Bearer <token>` header, compared in constant time. */
export function bearerMatches(authorization: string | undefined, expected: string): boolean {
  const given = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
  // Hash something even when the header is missing, so a malformed header takes the same time.
  return sameSecret(given ?? '', expected) && given !== undefined;
}
