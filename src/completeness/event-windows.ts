/**
 * Reading Stripe's events oldest first. `GET /v1/events` lists newest first and has no ascending order,
 * so the history is cut into windows of `created` seconds, each listed newest first with `starting_after`
 * and appended in reverse: every event comes out oldest first, the log's projector sees them roughly in
 * the order they happened (no customer is re-folded for an early event arriving late), and a window's
 * upper bound is a cursor a killed job resumes from. Windows adapt to the density of events so that
 * nearly every request returns a full page of 100 and no window holds more than a few thousand events in
 * memory: a window that overflows keeps what it listed and has narrower windows list what lies below
 * first, so no event is listed twice.
 */
import type Stripe from 'stripe';

export const PAGE_SIZE = 100;
/** Events a window aims at: 20 full pages, so the last, partial page costs at most 5% of the requests. */
const TARGET_EVENTS = 2000;
/** Beyond this a window is split (memory stays bounded). */
const MAX_EVENTS = 10_000;
const MAX_WIDTH_SECONDS = 7 * 86400;
const FIRST_WIDTH_SECONDS = 3600;

export interface EventWindow {
  /** The window's events, oldest first. */
  events: Stripe.Event[];
  /** Every event Stripe listed with `created` below this is in `events` or an earlier window. */
  cursor: number;
  /** Requests this window took. */
  requests: number;
}

/**
 * Yields the windows from `since` (unix seconds) up to now, each once it is completely listed. Stops at
 * the current second: a later event belongs to the next backfill or gap-healing run.
 */
export async function* eventWindows(
  stripe: Stripe,
  since: number,
  now: () => number = () => Math.floor(Date.now() / 1000),
): AsyncGenerator<EventWindow> {
  yield* windowsBetween(stripe, since, () => now() + 1, { width: FIRST_WIDTH_SECONDS });
}

/** Windows covering `[from, end())` in order; `pace.width` carries the adapted width across calls. */
async function* windowsBetween(
  stripe: Stripe,
  from: number,
  end: () => number,
  pace: { width: number },
): AsyncGenerator<EventWindow> {
  while (from < end()) {
    const to = Math.min(from + pace.width, end());
    const listed = await listWindow(stripe, from, to, to - from > 1 ? MAX_EVENTS : Infinity);
    const seconds = Math.max(
      1,
      to - (listed.complete ? from : listed.events[listed.events.length - 1].created),
    );
    const density = listed.events.length / seconds;
    const next = density > 0 ? Math.round(TARGET_EVENTS / density) : pace.width * 4;
    pace.width = Math.min(MAX_WIDTH_SECONDS, pace.width * 4, Math.max(1, next));
    if (listed.complete) {
      yield { events: listed.events.reverse(), cursor: to, requests: listed.requests };
    } else {
      // Too many to hold the whole window: what was listed, completed to the end of its oldest second, is
      // everything from that second on, so it is kept (nothing is listed twice) while narrower windows
      // cover the seconds below it first. Only a single second holds more than MAX_EVENTS in memory.
      const oldest = listed.events[listed.events.length - 1];
      const rest = await listWindow(stripe, oldest.created, oldest.created + 1, Infinity, oldest.id);
      yield* windowsBetween(stripe, from, () => oldest.created, pace);
      yield {
        events: [...listed.events, ...rest.events].reverse(),
        cursor: to,
        requests: listed.requests + rest.requests,
      };
    }
    from = to;
  }
}

/** Lists `[from, to)` newest first, after `startingAfter` when given, until done or `maxEvents`. */
async function listWindow(
  stripe: Stripe,
  from: number,
  to: number,
  maxEvents: number,
  startingAfter?: string,
): Promise<{ events: Stripe.Event[]; requests: number; complete: boolean }> {
  const events: Stripe.Event[] = [];
  let requests = 0;
  for (;;) {
    const after = events.length > 0 ? events[events.length - 1].id : startingAfter;
    const page = await stripe.events.list({
      limit: PAGE_SIZE,
      created: { gte: from, lt: to },
      ...(after ? { starting_after: after } : {}),
    });
    requests++;
    events.push(...page.data);
    if (!page.has_more) return { events, requests, complete: true };
    if (events.length >= maxEvents) return { events, requests, complete: false };
  }
}
