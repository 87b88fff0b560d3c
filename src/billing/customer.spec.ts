/**
 * The billing core as a specification: given these events (in any delivery order), then this state.
 */
import { describe, expect, it } from '@jest/globals';
import { billingState } from './billing-state.js';
import { parseCatalog } from './catalog.js';
import { foldCustomer } from './customer.js';
import type { LoggedEvent } from './events.js';
import { sortForFold } from './fold-order.js';
import { evolveProducts } from './products.js';

const catalog = parseCatalog(
  JSON.stringify({
    prices: { price_pro: ['pro'] },
    lookupKeys: { team_monthly: ['team'] },
    products: { prod_api: ['api'] },
    plans: { lifetime: ['lifetime'] },
  }),
  'catalog.json',
);
const CUS = 'cus_1';
let position = 0;

function event(
  type: string,
  object: Record<string, unknown>,
  created: number,
  previous?: Record<string, unknown>,
): LoggedEvent {
  position += 1;
  return {
    id: `evt_${position}`,
    type,
    created,
    position,
    payload: {
      id: `evt_${position}`,
      object: 'event',
      type,
      created,
      data: { object, ...(previous ? { previous_attributes: previous } : {}) },
    } as never,
  };
}

const item = (price: string, extra: Record<string, unknown> = {}) => ({
  id: `si_${price}`,
  quantity: 1,
  price: { id: price, product: extra.product ?? 'prod_x', lookup_key: extra.lookup_key ?? null },
  current_period_end: extra.current_period_end ?? 1_800_000_000,
});
const sub = (status: string, extra: Record<string, unknown> = {}) => ({
  id: 'sub_1',
  object: 'subscription',
  customer: CUS,
  status,
  cancel_at_period_end: false,
  trial_end: null,
  items: { data: [item('price_pro')] },
  ...extra,
});

/** Folds the events and returns what users see. */
function given(...events: LoggedEvent[]) {
  return billingState(foldCustomer(CUS, events).state, catalog, {});
}

/** The same events folded in every delivery order give one state. */
function inAnyOrder(events: LoggedEvent[]) {
  const permute = (list: LoggedEvent[]): LoggedEvent[][] =>
    list.length <= 1
      ? [list]
      : list.flatMap((e, i) =>
          permute([...list.slice(0, i), ...list.slice(i + 1)]).map((rest) => [e, ...rest]),
        );
  const states = permute(events).map((order) => JSON.stringify(given(...order)));
  expect(new Set(states).size).toBe(1);
  return JSON.parse(states[0]) as ReturnType<typeof given>;
}

describe('customers', () => {
  it('takes email and metadata.userId from customer events', () => {
    const state = given(
      event(
        'customer.created',
        { id: CUS, object: 'customer', email: 'a@b.c', metadata: { userId: 'user_42' } },
        100,
      ),
    );
    expect(state).toMatchObject({
      customerId: CUS,
      email: 'a@b.c',
      userId: 'user_42',
      deleted: false,
      entitlements: [],
    });
  });

  it('keeps a customer without metadata.userId unlinked to a user, without failing', () => {
    const fold = foldCustomer(CUS, [
      event('customer.created', { id: CUS, object: 'customer', metadata: {} }, 100),
    ]);
    expect(fold.state.userId).toBeNull();
    expect([...fold.outcomes.values()].map(({ outcome }) => outcome)).toEqual(['applied']);
  });

  it('revokes everything on customer.deleted and keeps the state readable', () => {
    const state = given(
      event('customer.subscription.created', sub('active'), 100),
      event('customer.deleted', { id: CUS, object: 'customer', deleted: true }, 200),
      event('customer.updated', { id: CUS, object: 'customer', email: 'late@b.c' }, 300),
    );
    expect(state.deleted).toBe(true);
    expect(state.entitlements).toEqual([]);
    expect(state.email).toBeNull();
  });

  it('takes the userId of a checkout session (metadata.userId, else client_reference_id), the later one winning', () => {
    const state = given(
      event('customer.created', { id: CUS, object: 'customer', metadata: { userId: 'user_old' } }, 100),
      event(
        'checkout.session.completed',
        {
          id: 'cs_1',
          object: 'checkout.session',
          customer: CUS,
          mode: 'subscription',
          client_reference_id: 'user_new',
          metadata: {},
        },
        150,
      ),
    );
    expect(state.userId).toBe('user_new');
  });
});

describe('subscriptions', () => {
  it.each(['active', 'trialing'])(
    'grants the features of its items while %s, until the period end',
    (status) => {
      const state = given(event('customer.subscription.created', sub(status), 100));
      expect(state.entitlements).toEqual([
        { feature: 'pro', source: 'subscription', sourceId: 'sub_1', until: '2027-01-15T08:00:00Z' },
      ]);
    },
  );

  it.each(['past_due', 'unpaid', 'canceled', 'incomplete', 'incomplete_expired', 'paused'])(
    'grants nothing while %s',
    (status) => {
      const state = given(
        event('customer.subscription.created', sub('active'), 100),
        event('customer.subscription.updated', sub(status), 200),
      );
      expect(state.subscriptions[0].status).toBe(status);
      expect(state.entitlements).toEqual([]);
    },
  );

  it('reads features from the price, the lookup key, the product in the catalog and product metadata', () => {
    const items = { data: [item('price_other', { lookup_key: 'team_monthly', product: 'prod_api' })] };
    const fold = foldCustomer(CUS, [event('customer.subscription.created', sub('active', { items }), 100)]);
    const products = evolveProducts(
      {},
      event(
        'product.updated',
        { id: 'prod_api', object: 'product', metadata: { features: 'analytics, export' } },
        90,
      ),
    );
    expect(billingState(fold.state, catalog, products).entitlements.map((e) => e.feature)).toEqual([
      'analytics',
      'api',
      'export',
      'team',
    ]);
  });

  it('reads the period from the subscription before API 2025-03-31 and from its items after', () => {
    const old = given(
      event(
        'customer.subscription.created',
        sub('active', {
          current_period_end: 1_700_000_000,
          items: { data: [{ ...item('price_pro'), current_period_end: undefined }] },
        }),
        100,
      ),
    );
    const current = given(event('customer.subscription.created', sub('active'), 100));
    expect(old.subscriptions[0].currentPeriodEnd).toBe('2023-11-14T22:13:20Z');
    expect(current.subscriptions[0].currentPeriodEnd).toBe('2027-01-15T08:00:00Z');
  });

  it('keeps an ended subscription with its final status', () => {
    const state = given(
      event('customer.subscription.created', sub('active'), 100),
      event('customer.subscription.deleted', sub('canceled'), 300),
    );
    expect(state.subscriptions).toMatchObject([{ id: 'sub_1', status: 'canceled' }]);
  });

  it('applies paused, resumed and pending_update_applied snapshots', () => {
    expect(given(event('customer.subscription.paused', sub('paused'), 100)).subscriptions[0].status).toBe(
      'paused',
    );
    expect(
      given(
        event('customer.subscription.paused', sub('paused'), 100),
        event('customer.subscription.resumed', sub('active'), 200),
      ).entitlements,
    ).toHaveLength(1);
    const upgraded = given(
      event(
        'customer.subscription.pending_update_applied',
        sub('active', { items: { data: [item('price_other', { lookup_key: 'team_monthly' })] } }),
        100,
      ),
    );
    expect(upgraded.entitlements.map((e) => e.feature)).toEqual(['team']);
  });

  it('treats trial_will_end as a notable event that changes nothing', () => {
    const fold = foldCustomer(CUS, [
      event('customer.subscription.created', sub('trialing'), 100),
      event('customer.subscription.trial_will_end', sub('trialing'), 100),
    ]);
    expect(billingState(fold.state, catalog, {}).subscriptions[0].status).toBe('trialing');
  });
});

describe('same-second ordering (SPEC section 3)', () => {
  it('never lets an update in the same second undo a deletion, in any delivery order', () => {
    const state = inAnyOrder([
      event('customer.subscription.updated', sub('active'), 500),
      event('customer.subscription.deleted', sub('canceled'), 500),
    ]);
    expect(state.subscriptions[0].status).toBe('canceled');
  });

  it('never reopens a canceled subscription with a later non-terminal snapshot', () => {
    const fold = foldCustomer(CUS, [
      event('customer.subscription.deleted', sub('canceled'), 500),
      event('customer.subscription.updated', sub('active'), 600),
    ]);
    expect(fold.state.subscriptions.sub_1.status).toBe('canceled');
    expect([...fold.outcomes.values()].map(({ outcome }) => outcome)).toEqual(['applied', 'stale']);
  });

  it('follows a previous_attributes chain delivered backwards', () => {
    // trialing -> active -> past_due, all in one second, delivered last first.
    const pastDue = event('customer.subscription.updated', sub('past_due'), 700, { status: 'active' });
    const active = event('customer.subscription.updated', sub('active'), 700, { status: 'trialing' });
    const created = event('customer.subscription.created', sub('trialing'), 700);
    expect(sortForFold([pastDue, active, created]).map(({ event: e }) => e.id)).toEqual([
      created.id,
      active.id,
      pastDue.id,
    ]);
    expect(inAnyOrder([pastDue, active, created]).subscriptions[0].status).toBe('past_due');
  });

  it('puts *.created first within its second', () => {
    const updated = event(
      'customer.subscription.updated',
      sub('active', { cancel_at_period_end: true }),
      800,
    );
    const created = event('customer.subscription.created', sub('active'), 800);
    expect(inAnyOrder([updated, created]).subscriptions[0].cancelAtPeriodEnd).toBe(true);
  });

  it('orders trial_will_end beside an update in the same second without changing the outcome', () => {
    const state = inAnyOrder([
      event('customer.subscription.trial_will_end', sub('trialing'), 900),
      event('customer.subscription.updated', sub('active'), 900, { status: 'trialing' }),
    ]);
    expect(state.subscriptions[0].status).toBe('active');
  });
});

describe('payment status', () => {
  const invoice = (id: string, status = 'open') => ({ id, object: 'invoice', customer: CUS, status });
  it('is ok until an invoice says otherwise', () => {
    expect(given(event('customer.created', { id: CUS, object: 'customer' }, 1)).payment).toEqual({
      status: 'ok',
      lastInvoiceId: null,
      lastError: null,
    });
  });
  it('is past_due after invoice.payment_failed and ok again after invoice.paid', () => {
    const failed = given(event('invoice.payment_failed', invoice('in_1'), 100));
    expect(failed.payment).toEqual({
      status: 'past_due',
      lastInvoiceId: 'in_1',
      lastError: 'payment_failed',
    });
    expect(
      given(
        event('invoice.payment_failed', invoice('in_1'), 100),
        event('invoice.paid', invoice('in_1', 'paid'), 200),
      ).payment.status,
    ).toBe('ok');
  });
  it('is action_required after invoice.payment_action_required', () => {
    expect(given(event('invoice.payment_action_required', invoice('in_2'), 100)).payment.status).toBe(
      'action_required',
    );
  });
  it('does not let a failure undo a paid invoice in the same second', () => {
    const state = inAnyOrder([
      event('invoice.paid', invoice('in_3', 'paid'), 100),
      event('invoice.payment_failed', invoice('in_3'), 100),
    ]);
    expect(state.payment.status).toBe('ok');
  });
  it('is disputed from charge.dispute.created until charge.dispute.closed', () => {
    const dispute = { id: 'dp_1', object: 'dispute', charge: 'ch_1' };
    expect(given(event('charge.dispute.created', dispute, 100)).payment.status).toBe('disputed');
    expect(
      given(
        event('charge.dispute.created', dispute, 100),
        event('charge.dispute.closed', { ...dispute, status: 'won' }, 200),
      ).payment.status,
    ).toBe('ok');
  });
});

describe('one-time purchases', () => {
  const session = (extra: Record<string, unknown> = {}) => ({
    id: 'cs_1',
    object: 'checkout.session',
    customer: CUS,
    mode: 'payment',
    payment_status: 'paid',
    payment_intent: 'pi_1',
    amount_total: 2000,
    currency: 'usd',
    metadata: { plan: 'lifetime' },
    ...extra,
  });
  it('grants the plan of a paid payment-mode checkout', () => {
    const state = given(event('checkout.session.completed', session(), 100));
    expect(state.purchases).toEqual([
      {
        checkoutSessionId: 'cs_1',
        status: 'paid',
        amountTotal: 2000,
        currency: 'usd',
        features: ['lifetime'],
      },
    ]);
    expect(state.entitlements).toEqual([
      { feature: 'lifetime', source: 'purchase', sourceId: 'cs_1', until: null },
    ]);
  });
  it('grants an unpaid checkout only after async_payment_succeeded', () => {
    const pending = event('checkout.session.completed', session({ payment_status: 'unpaid' }), 100);
    expect(given(pending).entitlements).toEqual([]);
    expect(
      given(pending, event('checkout.session.async_payment_succeeded', session(), 200)).entitlements,
    ).toHaveLength(1);
  });
  it('revokes on a full refund, not on a partial one', () => {
    const paid = event('checkout.session.completed', session(), 100);
    const partial = event(
      'charge.refunded',
      { id: 'ch_1', object: 'charge', payment_intent: 'pi_1', refunded: false, amount_refunded: 500 },
      200,
    );
    const full = event(
      'charge.refunded',
      { id: 'ch_1', object: 'charge', payment_intent: 'pi_1', refunded: true, amount_refunded: 2000 },
      300,
    );
    expect(given(paid, partial).entitlements).toHaveLength(1);
    expect(given(paid, partial, full).purchases[0].status).toBe('refunded');
    expect(given(paid, partial, full).entitlements).toEqual([]);
  });
  it('grants nothing for a subscription-mode checkout by itself', () => {
    expect(
      given(event('checkout.session.completed', session({ mode: 'subscription' }), 100)).entitlements,
    ).toEqual([]);
  });
});

it("grants the lookup keys of Stripe's active entitlement summary", () => {
  const summary = {
    object: 'entitlements.active_entitlement_summary',
    customer: CUS,
    entitlements: { data: [{ id: 'ent_1', lookup_key: 'analytics' }] },
  };
  expect(given(event('entitlements.active_entitlement_summary.updated', summary, 100)).entitlements).toEqual([
    { feature: 'analytics', source: 'stripe', sourceId: 'ent_1', until: null },
  ]);
});

it('ignores event types it does not handle, yet counts them in the version', () => {
  const fold = foldCustomer(CUS, [
    event('invoice.finalized', { id: 'in_9', object: 'invoice', customer: CUS }, 100),
  ]);
  expect([...fold.outcomes.values()].map(({ outcome }) => outcome)).toEqual(['ignored']);
  expect(fold.state.version).toBe(position);
});

describe('the catalog file', () => {
  it('rejects unknown keys and bad shapes with a message naming them', () => {
    expect(() => parseCatalog('{"prices":{"price_1":"pro"}}', 'c.json')).toThrow(/prices\.price_1/);
    expect(() => parseCatalog('{"planz":{}}', 'c.json')).toThrow(/planz|Unrecognized/);
    expect(() => parseCatalog('prices: [', 'c.yaml')).toThrow(/not valid YAML/);
  });
  it('reads YAML', () => {
    expect(parseCatalog('prices:\n  price_1: [pro]\n', 'c.yml').prices).toEqual({ price_1: ['pro'] });
  });
});
