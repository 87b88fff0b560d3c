/**
 * Keyset pages (SPEC section 4): rows ordered by a unique key, the cursor is the last key served, and the
 * next page starts strictly after it, so rows appended while a client pages never make a row repeat or
 * disappear. The cursor is opaque to clients (base64url JSON). With `Where`, which numbers parameters.
 */
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export class BadCursor extends Error {}

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** What each part of a key holds: text (never NUL, which PostgreSQL's text cannot hold) or a log position. */
export type KeyPart = 'text' | 'position';

const fits: Record<KeyPart, (part: unknown) => boolean> = {
  text: (part) => typeof part === 'string' && !part.includes('\0'),
  position: (part) => Number.isSafeInteger(part) && (part as number) >= 0,
};

/**
 * The key a cursor names, checked against the key's parts: a cursor is the client's input, and one that
 * decodes to a key of the wrong kind (a position that is text, 1e400, a NUL) is a 400, not a failed query.
 */
export function decodeCursor(cursor: string | undefined, parts: KeyPart[]): unknown[] | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadCursor();
  }
  if (Array.isArray(key) && key.length === parts.length && parts.every((part, i) => fits[part](key[i])))
    return key;
  throw new BadCursor();
}

/** Builds `WHERE` clauses with numbered parameters. */
export class Where {
  readonly params: unknown[] = [];
  private readonly clauses: string[] = [];

  add(clause: string): this {
    this.clauses.push(clause);
    return this;
  }

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  toString(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

export function keysetPage<R, T>(
  rows: R[],
  limit: number,
  key: (row: R) => unknown[],
  map: (row: R) => T,
): Page<T> {
  const more = rows.length > limit;
  const served = more ? rows.slice(0, limit) : rows;
  return { data: served.map(map), nextCursor: more ? encodeCursor(key(served[served.length - 1])) : null };
}
