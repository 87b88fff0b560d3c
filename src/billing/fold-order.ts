/**
 * The order in which the log is folded (SPEC section 3): `(created, causal rank, position)`.
 *
 * `created` has one-second resolution and Stripe does not deliver in order, so within one second and one
 * object the causal rank decides: a `*.created` event first; an event whose `previous_attributes` match
 * the values another event produced after that event; a terminal snapshot (`*.deleted`, a subscription
 * `canceled`/`incomplete_expired`, an invoice `paid`/`void`) last. Only what is still tied falls back to
 * the log position, so the order is total and the same on every replay.
 */
import { dataObject, previousAttributes, type LoggedEvent } from './events.js';

export interface FoldKey {
  created: number;
  rank: number;
  position: number;
}

const RANK_CREATED = 0;
const RANK_DEFAULT = 1;
const RANK_TERMINAL = 1_000_000;

export function isTerminalSnapshot(event: LoggedEvent): boolean {
  if (event.type.endsWith('.deleted')) return true;
  const object = dataObject(event);
  if (object.object === 'subscription')
    return object.status === 'canceled' || object.status === 'incomplete_expired';
  if (object.object === 'invoice') return object.status === 'paid' || object.status === 'void';
  return false;
}

function isSubset(expected: unknown, actual: unknown): boolean {
  if (expected === actual) return true;
  if (expected === null || actual === null || actual === undefined)
    return expected === actual || (expected === null && actual === undefined);
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      expected.length === actual.length &&
      expected.every((item, i) => isSubset(item, actual[i]))
    );
  }
  if (typeof expected === 'object' && typeof actual === 'object') {
    return Object.entries(expected as Record<string, unknown>).every(([key, value]) =>
      isSubset(value, (actual as Record<string, unknown>)[key]),
    );
  }
  return false;
}

/** True when `later`'s previous_attributes are exactly values that `earlier` produced. */
export function follows(later: LoggedEvent, earlier: LoggedEvent): boolean {
  const previous = previousAttributes(later);
  if (!previous || Object.keys(previous).length === 0) return false;
  return isSubset(previous, dataObject(earlier));
}

function objectKey(event: LoggedEvent): string {
  return `${event.created}:${dataObject(event).id ?? event.id}`;
}

/** The events that the causal rank compares with another (one object, one second): a fold reads them whole. */
export function comparedEvents(events: readonly LoggedEvent[]): LoggedEvent[] {
  const counts = new Map<string, number>();
  for (const event of events) counts.set(objectKey(event), (counts.get(objectKey(event)) ?? 0) + 1);
  return events.filter((event) => counts.get(objectKey(event))! > 1);
}

/** Causal ranks of events that share a second and an object; each event's rank is relative to its group. */
export function causalRanks(events: readonly LoggedEvent[]): Map<string, number> {
  const groups = new Map<string, LoggedEvent[]>();
  for (const event of events) {
    const key = objectKey(event);
    const group = groups.get(key);
    if (group) group.push(event);
    else groups.set(key, [event]);
  }
  const ranks = new Map<string, number>();
  for (const group of groups.values()) {
    if (group.length === 1) {
      ranks.set(group[0].id, baseRank(group[0]));
      continue;
    }
    // Cycles are broken by visiting order, so fix that order: the same events give the same ranks however
    // they were loaded.
    group.sort((a, b) => a.position - b.position);
    const visiting = new Set<string>();
    const rankOf = (event: LoggedEvent): number => {
      const known = ranks.get(event.id);
      if (known !== undefined) return known;
      let rank = baseRank(event);
      if (rank === RANK_DEFAULT && !visiting.has(event.id)) {
        // A cycle of previous_attributes (A undoes B, B undoes A) cannot be ordered causally; the guard
        // leaves such events at the default rank and position decides.
        visiting.add(event.id);
        for (const other of group) {
          if (other !== event && !visiting.has(other.id) && follows(event, other)) {
            rank = Math.max(rank, Math.min(rankOf(other), RANK_TERMINAL - 1) + 1);
          }
        }
        visiting.delete(event.id);
      }
      ranks.set(event.id, rank);
      return rank;
    };
    group.forEach(rankOf);
  }
  return ranks;
}

function baseRank(event: LoggedEvent): number {
  if (event.type.endsWith('.created')) return RANK_CREATED;
  if (isTerminalSnapshot(event)) return RANK_TERMINAL;
  return RANK_DEFAULT;
}

export function compareFoldKeys(a: FoldKey, b: FoldKey): number {
  return a.created - b.created || a.rank - b.rank || a.position - b.position;
}

/** The events in fold order, each with its key. Pure: the input is not modified. */
export function sortForFold(events: readonly LoggedEvent[]): Array<{ event: LoggedEvent; key: FoldKey }> {
  const ranks = causalRanks(events);
  return events
    .map((event) => ({
      event,
      key: { created: event.created, rank: ranks.get(event.id)!, position: event.position },
    }))
    .sort((a, b) => compareFoldKeys(a.key, b.key));
}
