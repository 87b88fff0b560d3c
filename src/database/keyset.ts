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

export function decodeCursor(cursor: string | undefined, arity: number): unknown[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(key) &&
      key.length === arity &&
      key.every((part) => typeof part === 'string' || typeof part === 'number')
    ) {
      return key;
    }
  } catch {
    // fall through
  }
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
