/**
 * `paywire simulate`: sends a scenario's events to a running Paywire, each signed with the webhook secret
 * exactly as Stripe signs it (`Stripe.webhooks.generateTestHeaderString`), so that the whole path is
 * exercised offline: verification, the log, the projector, the push. `--shuffle` and `--duplicates` show
 * that delivery order and retries do not change the outcome.
 */
import Stripe from 'stripe';
import { buildScenario, deliveries, type ScenarioName } from './scenarios.js';

export interface SimulateOptions {
  url: string;
  secret: string;
  scenario: ScenarioName;
  customers?: number;
  shuffle?: boolean;
  duplicates?: boolean;
  /** Pause between sends in order, to watch the state change live; ignored with --shuffle. */
  delayMs?: number;
  log?: (line: string) => void;
  /** Called with the scenario's customers before anything is sent (to open their live page first). */
  onStart?: (customers: string[]) => Promise<void>;
}

export interface SimulateResult {
  customers: string[];
  sent: number;
  distinct: number;
  answers: Record<string, number>;
}

async function send(url: string, secret: string, event: Stripe.Event): Promise<string> {
  const body = JSON.stringify(event);
  const response = await fetch(`${url}/webhooks/stripe`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload: body, secret }),
    },
    body,
  });
  const answer = (await response.json()) as { duplicate?: boolean; error?: string };
  if (response.status !== 200) return `${response.status} ${answer.error ?? ''}`.trim();
  return answer.duplicate ? 'duplicate' : 'stored';
}

export async function simulate(options: SimulateOptions): Promise<SimulateResult> {
  const scenario = buildScenario(options.scenario, { customers: options.customers });
  const order = deliveries(scenario.events, options);
  await options.onStart?.(scenario.customers);
  const answers: Record<string, number> = {};
  const count = (answer: string) => (answers[answer] = (answers[answer] ?? 0) + 1);
  if (options.shuffle) {
    // Out of order and concurrently, as Stripe's retries arrive.
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < order.length) {
          const event = order[next++];
          const answer = await send(options.url, options.secret, event);
          count(answer);
          options.log?.(`${answer.padEnd(9)} ${event.type} ${event.id}`);
        }
      }),
    );
  } else {
    for (const event of order) {
      const answer = await send(options.url, options.secret, event);
      count(answer);
      options.log?.(`${answer.padEnd(9)} ${event.type} ${event.id}`);
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    }
  }
  return { customers: scenario.customers, sent: order.length, distinct: scenario.events.length, answers };
}
