/**
 * Reading Stripe's events oldest first. `GET /v1/events` lists newest first and has no ascending order,
 * so the history is cut into windows of `created` seconds, each listed newest first with `starting_after`
 * and appended in reverse: every event comes out oldest first, the log's projector sees them roughly in
 * the order they happened (no customer is re-folded for an early event arriving late), and a window's
 * upper bound is a cursor a killed job resumes from. Windows adapt to the density of events so that
 * nearly every request returns a full page of 100 and no window holds more than a few thousand events in
 * memory: a window that overflows is listed again at a fraction of its width.
 */
import type Stripe from 'stripe';

export const PAGE_SIZE = 100;
/** Events a window aims at: 20 full pages, so the last, partial page costs at most 5% of the requests. */
const TARGET_EVENTS = 2000;
/** Beyond this a window is abandoned and listed again narrower (memory stays bounded). */
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
  let from = since;
  let width = FIRST_WIDTH_SECONDS;
  while (from <= now()) {
    const to = Math.min(from + width, now() + 1);
    const listed = await listWindow(stripe, from, to, to - from > 1 ? MAX_EVENTS : Infinity);
    if (listed === 'overflow') {
      width = Math.max(1, Math.floor((to - from) / 8));
      continue;
    }
    yield { events: listed.events.reverse(), cursor: to, requests: listed.requests };
    const density = listed.events.length / (to - from);
    const next = density > 0 ? Math.round(TARGET_EVENTS / density) : width * 4;
    width = Math.min(MAX_WIDTH_SECONDS, width * 4, Math.max(1, next));
    from = to;
  }
}

async function listWindow(
  stripe: Stripe,
  from: number,
  to: number,
  maxEvents: number,
): Promise<{ events: Stripe.Event[]; requests: number } | 'overflow'> {
  const events: Stripe.Event[] = [];
  let requests = 0;
  for (;;) {
    const page = await stripe.events.list({
      limit: PAGE_SIZE,
      created: { gte: from, lt: to },
      ...(events.length > 0 ? { starting_after: events[events.length - 1].id } : {}),
    });
    requests++;
    events.push(...page.data);
    if (!page.has_more) return { events, requests };
    if (events.length >= maxEvents) return 'overflow';
  }
}
