/**
 * `paywire fake-stripe` (SPEC section 8): a stateful, local stand-in for the parts of Stripe's API that
 * Paywire and `examples/nextjs` use, so both run and are tested offline. It speaks Stripe's wire format to
 * Stripe's own SDK: form-encoded requests, bearer keys, list envelopes newest first with `starting_after`
 * / `ending_before` cursors and `created[…]` filters, `{"error":{…}}` bodies, 429s with `Retry-After`.
 * What happens in it (a completed checkout, a renewal, a failed payment, a cancellation, a change made
 * "in the dashboard") becomes events in `GET /v1/events` and signed webhooks to the configured URL,
 * which it can drop (all, or a chosen subset) or delay. A development and test tool: nothing in
 * production depends on it. Routes under `/_fake/` drive it from another process (see the README).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { stripeEventEnvelope } from '../stripe-api/stripe-event.js';
import { field, parseForm, stringMap, type Form } from './form.js';

export interface FakeProduct {
  productId: string;
  priceId: string;
  name: string;
  lookupKey: string;
  unitAmount: number;
  /** Entitlement features (lookup keys) the product grants; also its `metadata.features`. */
  features: string[];
}

export const DEFAULT_PRODUCTS: FakeProduct[] = [
  {
    productId: 'prod_pro',
    priceId: 'price_pro_monthly',
    name: 'Pro',
    lookupKey: 'pro_monthly',
    unitAmount: 2000,
    features: ['pro'],
  },
];

export interface FakeStripeOptions {
  port?: number;
  host?: string;
  /** Where signed webhooks go; none are sent without it. */
  webhookUrl?: string;
  webhookSecret?: string;
  /** The one accepted secret key; unset: any `sk_test_…` or `rk_test_…`. */
  apiKey?: string;
  products?: FakeProduct[];
  /** Seconds added to the wall clock from the start (negative: history placed in the past). */
  clockOffset?: number;
}

export type WebhookMode = 'deliver' | 'drop';

/** A fault to answer the next `count` API requests with (429 storms, 500s). */
export interface Fault {
  status: 429 | 500 | 503;
  count: number;
  retryAfterSeconds?: number;
}

type StripeObject = Record<string, unknown> & { id: string; created: number };

/**
 * The fields the fake sets of a Stripe type, each checked against the SDK's declaration (`satisfies
 * Shaped<Stripe.Customer>`), so a field it names with the wrong type or a wrong name fails to compile;
 * Stripe's many fields it has no use for are left out.
 */
type Shaped<T> =
  T extends Array<infer U> ? Array<Shaped<U>> : T extends object ? { [K in keyof T]?: Shaped<T[K]> } : T;

interface CheckoutLine {
  product: FakeProduct;
  quantity: number;
  subscriptionMetadata: Record<string, string>;
}

interface ListParams {
  limit: number;
  startingAfter?: string;
  endingBefore?: string;
}

class FakeStripeError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code?: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

const API_VERSION = '2026-07-29.dahlia';
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function stripeId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let id = '';
  for (const byte of bytes) id += BASE62[byte % 62];
  return `${prefix}_${id}`;
}

export class FakeStripe {
  readonly products: FakeProduct[];
  readonly webhookSecret: string;
  webhookUrl?: string;
  webhookMode: WebhookMode = 'deliver';
  webhookDelayMs = 0;
  /** Decides per event whether its webhook is sent (with mode `deliver`); tests drop a chosen subset. */
  deliverIf: (event: Stripe.Event) => boolean = () => true;
  /** Start time (ms) of every API request, for checking a client's rate. */
  readonly requestTimes: number[] = [];
  readonly deliveries: Array<{ eventId: string; status: number | 'failed' }> = [];
  /** Seconds added to the wall clock, to place history in the past. */
  clockOffset = 0;

  private readonly events: Stripe.Event[] = [];
  private readonly eventIndex = new Map<string, number>();
  private readonly customers = new Map<string, StripeObject>();
  private readonly subscriptions = new Map<string, StripeObject>();
  private readonly sessions = new Map<string, StripeObject>();
  private readonly checkoutLines = new Map<string, CheckoutLine>();
  private readonly entitlements = new Map<string, string[]>();
  private faults: Fault[] = [];
  private readonly pendingDeliveries = new Set<Promise<void>>();
  private server?: Server;
  private baseUrl = '';

  constructor(private readonly options: FakeStripeOptions = {}) {
    this.products = options.products ?? DEFAULT_PRODUCTS;
    this.webhookUrl = options.webhookUrl;
    this.webhookSecret = options.webhookSecret ?? `whsec_${randomBytes(24).toString('hex')}`;
    this.clockOffset = options.clockOffset ?? 0;
  }

  get url(): string {
    return this.baseUrl;
  }

  async start(): Promise<this> {
    this.server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) =>
      this.server!.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', resolve),
    );
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `http://${this.options.host ?? '127.0.0.1'}:${port}`;
    const now = this.now();
    for (const product of this.products) {
      this.emit('product.created', this.productObject(product, now), now);
    }
    return this;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pendingDeliveries]);
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Resolves when every webhook sent so far has been answered. */
  async drained(): Promise<void> {
    while (this.pendingDeliveries.size > 0) await Promise.allSettled([...this.pendingDeliveries]);
  }

  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffset;
  }

  /** Every event, oldest first. */
  allEvents(): readonly Stripe.Event[] {
    return this.events;
  }

  injectFault(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  // ---- what happens in Stripe ----------------------------------------------------------------------

  createCustomer(
    input: { email?: string | null; name?: string | null; metadata?: Record<string, string> },
    at = this.now(),
  ): StripeObject {
    const customer: StripeObject = {
      id: stripeId('cus', 14),
      object: 'customer',
      created: at,
      email: input.email ?? null,
      name: input.name ?? null,
      metadata: input.metadata ?? {},
      livemode: false,
      balance: 0,
      currency: null,
      delinquent: false,
      description: null,
      invoice_prefix: randomBytes(4).toString('hex').toUpperCase(),
      preferred_locales: [],
      tax_exempt: 'none',
      test_clock: null,
    } satisfies Shaped<Stripe.Customer>;
    this.customers.set(customer.id, customer);
    this.emit('customer.created', customer, at);
    return customer;
  }

  createCheckoutSession(form: Form): StripeObject {
    const mode = field(form, 'mode');
    if (mode !== 'subscription' && mode !== 'payment') {
      throw new FakeStripeError(
        400,
        'invalid_request_error',
        'Invalid mode: must be one of payment, subscription',
        undefined,
        'mode',
      );
    }
    const priceId = field(form, 'line_items', 0, 'price');
    const product = this.products.find((candidate) => candidate.priceId === priceId);
    if (!product) {
      throw new FakeStripeError(
        400,
        'invalid_request_error',
        `No such price: '${priceId ?? ''}'`,
        'resource_missing',
        'line_items[0][price]',
      );
    }
    const successUrl = field(form, 'success_url');
    if (!successUrl) {
      throw new FakeStripeError(
        400,
        'invalid_request_error',
        'Missing required param: success_url.',
        'parameter_missing',
        'success_url',
      );
    }
    const id = stripeId('cs_test', 58);
    const quantity = Number(field(form, 'line_items', 0, 'quantity') ?? '1');
    const session = {
      id,
      object: 'checkout.session',
      created: this.now(),
      mode,
      status: 'open',
      payment_status: 'unpaid',
      url: `${this.baseUrl}/checkout/${id}`,
      success_url: successUrl,
      cancel_url: field(form, 'cancel_url') ?? null,
      client_reference_id: field(form, 'client_reference_id') ?? null,
      customer: field(form, 'customer') ?? null,
      customer_email: field(form, 'customer_email') ?? null,
      metadata: stringMap(form.metadata),
      amount_subtotal: product.unitAmount * quantity,
      amount_total: product.unitAmount * quantity,
      currency: 'usd',
      subscription: null,
      payment_intent: null,
      invoice: null,
      livemode: false,
      expires_at: this.now() + 86400,
      ui_mode: 'hosted',
    } satisfies Shaped<Stripe.Checkout.Session>;
    this.sessions.set(id, session);
    // Kept beside the session for completing it; Stripe exposes them as `line_items` (expandable).
    this.checkoutLines.set(id, {
      product,
      quantity,
      subscriptionMetadata: stringMap((form.subscription_data as Form | undefined)?.metadata),
    });
    return session;
  }

  /** What the hosted page's "Pay" does: the customer pays and the checkout completes. */
  completeCheckout(sessionId: string): StripeObject {
    const session = this.sessions.get(sessionId);
    if (!session)
      throw new FakeStripeError(
        404,
        'invalid_request_error',
        `No such checkout.session: '${sessionId}'`,
        'resource_missing',
        'id',
      );
    if (session.status !== 'open') return session;
    const line = this.checkoutLines.get(session.id)!;
    const now = this.now();
    const userId =
      (session.metadata as Record<string, string>).userId ?? (session.client_reference_id as string | null);
    let customer = session.customer ? this.customers.get(session.customer as string) : undefined;
    customer ??= this.createCustomer(
      {
        email: (session.customer_email as string | null) ?? `${userId ?? 'buyer'}@example.com`,
        metadata: userId ? { userId } : {},
      },
      now,
    );
    session.customer = customer.id;
    if (session.mode === 'subscription') {
      const subscription = this.startSubscription(
        customer.id,
        line.product,
        line.quantity,
        line.subscriptionMetadata,
        now,
      );
      session.subscription = subscription.id;
      session.invoice = subscription.latest_invoice;
    } else {
      session.payment_intent = stripeId('pi', 24);
    }
    Object.assign(session, { status: 'complete', payment_status: 'paid' });
    this.emit('checkout.session.completed', session, now);
    return session;
  }

  startSubscription(
    customerId: string,
    product: FakeProduct = this.products[0],
    quantity = 1,
    metadata: Record<string, string> = {},
    at = this.now(),
  ): StripeObject {
    const id = stripeId('sub', 24);
    const subscription = {
      id,
      object: 'subscription',
      created: at,
      customer: customerId,
      status: 'active',
      cancel_at_period_end: false,
      canceled_at: null,
      ended_at: null,
      trial_end: null,
      trial_start: null,
      start_date: at,
      billing_cycle_anchor: at,
      collection_method: 'charge_automatically',
      currency: 'usd',
      metadata,
      livemode: false,
      latest_invoice: null,
      items: {
        object: 'list',
        data: [
          {
            id: stripeId('si', 14),
            object: 'subscription_item',
            created: at,
            quantity,
            subscription: id,
            current_period_start: at,
            current_period_end: at + 30 * 86400,
            metadata: {},
            price: this.priceObject(product),
          },
        ],
        has_more: false,
        url: `/v1/subscription_items?subscription=${id}`,
      },
    } satisfies Shaped<Stripe.Subscription>;
    this.subscriptions.set(id, subscription);
    this.emit('customer.subscription.created', subscription, at);
    this.invoice(subscription, 'paid', at);
    this.updateEntitlements(customerId, at);
    return subscription;
  }

  /** The next period is paid: `invoice.paid` and the subscription's period moves on. */
  renew(subscriptionId: string): StripeObject {
    const subscription = this.subscription(subscriptionId);
    const at = this.now();
    const item = this.firstItem(subscription);
    const previous = { items: structuredClone(subscription.items), status: subscription.status };
    item.current_period_start = item.current_period_end;
    item.current_period_end = (item.current_period_end as number) + 30 * 86400;
    subscription.status = 'active';
    this.invoice(subscription, 'paid', at);
    this.emit('customer.subscription.updated', subscription, at, previous);
    this.updateEntitlements(subscription.customer as string, at);
    return subscription;
  }

  /** The renewal's payment fails: `invoice.payment_failed` and the subscription goes `past_due`. */
  failPayment(subscriptionId: string): StripeObject {
    const subscription = this.subscription(subscriptionId);
    const at = this.now();
    this.invoice(subscription, 'open', at);
    const previous = { status: subscription.status };
    subscription.status = 'past_due';
    this.emit('customer.subscription.updated', subscription, at, previous);
    this.updateEntitlements(subscription.customer as string, at);
    return subscription;
  }

  cancel(subscriptionId: string): StripeObject {
    const subscription = this.subscription(subscriptionId);
    if (subscription.status === 'canceled') return subscription;
    const at = this.now();
    Object.assign(subscription, { status: 'canceled', canceled_at: at, ended_at: at });
    this.emit('customer.subscription.deleted', subscription, at);
    this.updateEntitlements(subscription.customer as string, at);
    return subscription;
  }

  /**
   * A change with no event: how an object drifts from what its events said (an event older than the 30
   * days Stripe keeps, a missed API version's field). What reconcile exists to find.
   */
  changeSilently(subscriptionId: string, changes: Record<string, unknown>): StripeObject {
    return Object.assign(this.subscription(subscriptionId), changes);
  }

  /** Tells every webhook where to go from now on, or whether to go at all. */
  configureWebhooks(settings: { mode?: WebhookMode; delayMs?: number; url?: string }): void {
    if (settings.mode) this.webhookMode = settings.mode;
    if (settings.delayMs !== undefined) this.webhookDelayMs = settings.delayMs;
    if (settings.url !== undefined) this.webhookUrl = settings.url;
  }

  // ---- building objects and events -----------------------------------------------------------------

  private productObject(product: FakeProduct, at: number): StripeObject {
    return {
      id: product.productId,
      object: 'product',
      created: at,
      name: product.name,
      active: true,
      livemode: false,
      metadata: { features: product.features.join(',') },
      default_price: product.priceId,
      type: 'service',
    } satisfies Shaped<Stripe.Product>;
  }

  private priceObject(product: FakeProduct): Shaped<Stripe.Price> {
    return {
      id: product.priceId,
      object: 'price',
      active: true,
      currency: 'usd',
      livemode: false,
      lookup_key: product.lookupKey,
      metadata: {},
      product: product.productId,
      recurring: { interval: 'month', interval_count: 1, usage_type: 'licensed' },
      type: 'recurring',
      unit_amount: product.unitAmount,
      unit_amount_decimal: String(product.unitAmount),
    } satisfies Shaped<Stripe.Price>;
  }

  private invoice(subscription: StripeObject, status: 'paid' | 'open', at: number): void {
    const item = this.firstItem(subscription);
    const amount = ((item.price as { unit_amount: number }).unit_amount ?? 0) * (item.quantity as number);
    const invoice = {
      id: stripeId('in', 24),
      object: 'invoice',
      created: at,
      customer: subscription.customer as string,
      status,
      amount_due: amount,
      amount_paid: status === 'paid' ? amount : 0,
      amount_remaining: status === 'paid' ? 0 : amount,
      attempt_count: 1,
      attempted: true,
      billing_reason: subscription.latest_invoice ? 'subscription_cycle' : 'subscription_create',
      currency: 'usd',
      livemode: false,
      parent: {
        type: 'subscription_details',
        subscription_details: { subscription: subscription.id, metadata: {} },
      },
      period_start: item.current_period_start as number,
      period_end: item.current_period_end as number,
      last_finalization_error: null,
    } satisfies Shaped<Stripe.Invoice>;
    subscription.latest_invoice = invoice.id;
    this.emit(status === 'paid' ? 'invoice.paid' : 'invoice.payment_failed', invoice, at);
  }

  private updateEntitlements(customerId: string, at: number): void {
    const granted = new Set<string>();
    for (const subscription of this.subscriptions.values()) {
      if (
        subscription.customer !== customerId ||
        !['active', 'trialing'].includes(subscription.status as string)
      )
        continue;
      const price = this.firstItem(subscription).price as { product: string };
      for (const feature of this.products.find((p) => p.productId === price.product)?.features ?? [])
        granted.add(feature);
    }
    const features = [...granted].sort();
    const before = this.entitlements.get(customerId) ?? [];
    if (features.join(',') === before.join(',')) return;
    this.entitlements.set(customerId, features);
    this.emit('entitlements.active_entitlement_summary.updated', this.entitlementSummary(customerId), at, {
      entitlements: { data: before.map((feature) => this.activeEntitlement(customerId, feature)) },
    });
  }

  private activeEntitlement(
    customerId: string,
    feature: string,
  ): Shaped<Stripe.Entitlements.ActiveEntitlement> {
    return {
      id: `ent_${customerId.slice(4)}_${feature}`,
      object: 'entitlements.active_entitlement',
      feature: `feat_${feature}`,
      livemode: false,
      lookup_key: feature,
    } satisfies Shaped<Stripe.Entitlements.ActiveEntitlement>;
  }

  private entitlementSummary(customerId: string): Shaped<Stripe.Entitlements.ActiveEntitlementSummary> {
    const data = (this.entitlements.get(customerId) ?? []).map((feature) =>
      this.activeEntitlement(customerId, feature),
    );
    return {
      object: 'entitlements.active_entitlement_summary',
      customer: customerId,
      livemode: false,
      entitlements: { object: 'list', data, has_more: false, url: '/v1/customer/entitlements' },
    } satisfies Shaped<Stripe.Entitlements.ActiveEntitlementSummary>;
  }

  private emit(
    type: string,
    object: Record<string, unknown>,
    at: number,
    previous?: Record<string, unknown>,
  ): Stripe.Event {
    // `created` never decreases along the list, as in Stripe, whatever time a caller names.
    const created = Math.max(at, this.events.at(-1)?.created ?? 0);
    const event = stripeEventEnvelope({
      id: stripeId('evt', 24),
      type,
      created,
      object: structuredClone(object),
      previous,
    });
    this.eventIndex.set(event.id, this.events.length);
    this.events.push(event);
    if (this.webhookUrl && this.webhookMode === 'deliver' && this.deliverIf(event)) this.send(event);
    return event;
  }

  private send(event: Stripe.Event): void {
    const url = this.webhookUrl!;
    const payload = JSON.stringify(event);
    const delivery = (async () => {
      if (this.webhookDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.webhookDelayMs));
      const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: this.webhookSecret });
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'stripe-signature': signature },
          body: payload,
        });
        await response.arrayBuffer();
        this.deliveries.push({ eventId: event.id, status: response.status });
      } catch {
        this.deliveries.push({ eventId: event.id, status: 'failed' });
      }
    })();
    this.pendingDeliveries.add(delivery);
    void delivery.finally(() => this.pendingDeliveries.delete(delivery));
  }

  private subscription(id: string): StripeObject {
    const subscription = this.subscriptions.get(id);
    if (!subscription)
      throw new FakeStripeError(
        404,
        'invalid_request_error',
        `No such subscription: '${id}'`,
        'resource_missing',
        'id',
      );
    return subscription;
  }

  private firstItem(subscription: StripeObject): Record<string, unknown> {
    return (subscription.items as { data: Array<Record<string, unknown>> }).data[0];
  }

  // ---- HTTP ------------------------------------------------------------------------------------------

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      const url = new URL(request.url ?? '/', this.baseUrl);
      const body = await readBody(request);
      if (url.pathname.startsWith('/v1/')) {
        this.requestTimes.push(Date.now());
        const fault = this.faults[0];
        if (fault) {
          if (--fault.count <= 0) this.faults.shift();
          const headers: Record<string, string> =
            fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
          const message =
            fault.status === 429 ? 'Too many requests hit the API too quickly.' : 'An unknown error occurred';
          return json(
            response,
            fault.status,
            { error: { type: fault.status === 429 ? 'rate_limit_error' : 'api_error', message } },
            headers,
          );
        }
        this.authenticate(request);
        const params = parseForm(
          request.method === 'GET' || request.method === 'DELETE' ? url.search.slice(1) : body,
        );
        return json(response, 200, this.api(request.method ?? 'GET', url.pathname, params));
      }
      return this.page(request.method ?? 'GET', url, body, response);
    } catch (error) {
      if (error instanceof FakeStripeError) {
        const { status, type, message, code, param } = error;
        return json(response, status, {
          error: { type, message, ...(code ? { code } : {}), ...(param ? { param } : {}) },
        });
      }
      return json(response, 500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    }
  }

  private authenticate(request: IncomingMessage): void {
    const key = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    const accepted = this.options.apiKey ? key === this.options.apiKey : /^(sk|rk)_test_\w+$/.test(key ?? '');
    if (!accepted) {
      throw new FakeStripeError(
        401,
        'invalid_request_error',
        key ? `Invalid API Key provided: ${key.slice(0, 8)}***` : 'You did not provide an API key.',
      );
    }
  }

  private api(method: string, path: string, params: Form): unknown {
    const route = `${method} ${path}`;
    let match: RegExpExecArray | null;
    if (route === 'GET /v1/events') return this.listEvents(params);
    if ((match = /^GET \/v1\/events\/([\w]+)$/.exec(route))) {
      const index = this.eventIndex.get(match[1]);
      if (index === undefined) throw missing('event', match[1]);
      return this.events[index];
    }
    if (route === 'POST /v1/customers') {
      return this.createCustomer({
        email: field(params, 'email'),
        name: field(params, 'name'),
        metadata: stringMap(params.metadata),
      });
    }
    if (route === 'GET /v1/customers') {
      const email = field(params, 'email');
      return listOf(
        '/v1/customers',
        [...this.customers.values()].filter((c) => !c.deleted && (!email || c.email === email)),
        listParams(params),
      );
    }
    if ((match = /^(GET|DELETE) \/v1\/customers\/([\w]+)$/.exec(route))) {
      const customer = this.customers.get(match[2]);
      if (!customer) throw missing('customer', match[2]);
      if (match[1] === 'DELETE' && !customer.deleted) {
        for (const subscription of this.subscriptions.values())
          if (subscription.customer === customer.id) this.cancel(subscription.id);
        // Stripe answers a deleted customer's id with this stub from then on.
        this.customers.set(customer.id, {
          id: customer.id,
          object: 'customer',
          deleted: true,
          created: customer.created,
        });
        this.emit('customer.deleted', customer, this.now());
      }
      return this.customers.get(customer.id);
    }
    if (route === 'GET /v1/subscriptions') {
      const customer = field(params, 'customer');
      const status = field(params, 'status');
      const matching = [...this.subscriptions.values()].filter(
        (s) =>
          (!customer || s.customer === customer) &&
          (status === 'all'
            ? true
            : status
              ? s.status === status
              : !['canceled', 'incomplete_expired'].includes(s.status as string)),
      );
      return listOf('/v1/subscriptions', matching, listParams(params));
    }
    if ((match = /^(GET|POST|DELETE) \/v1\/subscriptions\/([\w]+)$/.exec(route))) {
      if (match[1] === 'DELETE') return this.cancel(match[2]);
      const subscription = this.subscription(match[2]);
      if (match[1] === 'POST') {
        const previous: Record<string, unknown> = {};
        const cancelAtPeriodEnd = field(params, 'cancel_at_period_end');
        if (cancelAtPeriodEnd !== undefined) {
          previous.cancel_at_period_end = subscription.cancel_at_period_end;
          subscription.cancel_at_period_end = cancelAtPeriodEnd === 'true';
        }
        if (params.metadata) {
          previous.metadata = subscription.metadata;
          subscription.metadata = { ...(subscription.metadata as object), ...stringMap(params.metadata) };
        }
        this.emit('customer.subscription.updated', subscription, this.now(), previous);
      }
      return subscription;
    }
    if (route === 'GET /v1/entitlements/active_entitlements') {
      const customer = field(params, 'customer');
      if (!customer)
        throw new FakeStripeError(
          400,
          'invalid_request_error',
          'Missing required param: customer.',
          'parameter_missing',
          'customer',
        );
      const data = (this.entitlements.get(customer) ?? []).map(
        (feature) => this.activeEntitlement(customer, feature) as { id: string },
      );
      return listOf('/v1/entitlements/active_entitlements', data, listParams(params));
    }
    if (route === 'POST /v1/checkout/sessions') return this.createCheckoutSession(params);
    if ((match = /^GET \/v1\/checkout\/sessions\/([\w]+)$/.exec(route))) {
      const session = this.sessions.get(match[1]);
      if (!session) throw missing('checkout.session', match[1]);
      return session;
    }
    throw new FakeStripeError(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${path}).`);
  }

  private listEvents(params: Form): unknown {
    const gte = createdBound(params, 'gte') ?? (createdBound(params, 'gt') ?? -Infinity) + 1;
    const lt = createdBound(params, 'lt') ?? (createdBound(params, 'lte') ?? Infinity - 1) + 1;
    const type = field(params, 'type');
    // Events are kept oldest first and `created` never decreases along the array, so the window is found by
    // binary search and no request copies the whole history.
    const lo = lowerBound(this.events, gte);
    const hi = lowerBound(this.events, lt);
    const selected = type ? this.events.slice(lo, hi).filter((event) => event.type === type) : undefined;
    return pageOf(
      '/v1/events',
      selected ?? this.events,
      selected ? 0 : lo,
      selected ? selected.length : hi,
      listParams(params),
      (id) => {
        const index = selected ? selected.findIndex((event) => event.id === id) : this.eventIndex.get(id);
        return index === undefined || index < 0 ? undefined : index;
      },
    );
  }

  private page(method: string, url: URL, body: string, response: ServerResponse): void {
    let match: RegExpExecArray | null;
    if ((match = /^\/checkout\/([\w]+)$/.exec(url.pathname)) && method === 'GET') {
      const session = this.sessions.get(match[1]);
      if (!session) return html(response, 404, '<h1>This checkout session does not exist</h1>');
      const { product } = this.checkoutLines.get(session.id)!;
      return html(
        response,
        200,
        `<h1>Fake Stripe Checkout</h1><p>${escapeHtml(product.name)}: ${(product.unitAmount / 100).toFixed(2)} USD${session.mode === 'subscription' ? ' / month' : ''}</p>` +
          (session.status === 'open'
            ? `<form method="post" action="/checkout/${session.id}/complete"><button type="submit">Pay</button></form>`
            : '<p>This checkout is complete.</p>'),
      );
    }
    if ((match = /^\/checkout\/([\w]+)\/complete$/.exec(url.pathname)) && method === 'POST') {
      const session = this.completeCheckout(match[1]);
      const location = (session.success_url as string).replace('{CHECKOUT_SESSION_ID}', session.id);
      response.writeHead(303, { location }).end();
      return;
    }
    if (url.pathname === '/_fake/stats' && method === 'GET') {
      return json(response, 200, {
        requests: this.requestTimes.length,
        events: this.events.length,
        deliveries: this.deliveries.length,
      });
    }
    if (url.pathname.startsWith('/_fake/') && method === 'POST') {
      return json(
        response,
        200,
        this.control(
          url.pathname.slice('/_fake/'.length),
          body ? (JSON.parse(body) as Record<string, unknown>) : {},
        ),
      );
    }
    return json(response, 404, {
      error: {
        type: 'invalid_request_error',
        message: `Unrecognized request URL (${method}: ${url.pathname}).`,
      },
    });
  }

  private control(action: string, body: Record<string, unknown>): unknown {
    let match: RegExpExecArray | null;
    if (action === 'webhooks') {
      this.configureWebhooks(body as { mode?: WebhookMode; delayMs?: number; url?: string });
      return { mode: this.webhookMode, delayMs: this.webhookDelayMs, url: this.webhookUrl ?? null };
    }
    if (action === 'faults') {
      this.injectFault(body as unknown as Fault);
      return { faults: this.faults };
    }
    if ((match = /^subscriptions\/([\w]+)\/(renew|fail_payment|cancel)$/.exec(action))) {
      const [, id, what] = match;
      return what === 'renew'
        ? this.renew(id)
        : what === 'fail_payment'
          ? this.failPayment(id)
          : this.cancel(id);
    }
    throw new FakeStripeError(404, 'invalid_request_error', `Unknown control: ${action}`);
  }
}

function missing(kind: string, id: string): FakeStripeError {
  return new FakeStripeError(
    404,
    'invalid_request_error',
    `No such ${kind}: '${id}'`,
    'resource_missing',
    'id',
  );
}

function listParams(params: Form): ListParams {
  const limit = Number(field(params, 'limit') ?? '10');
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new FakeStripeError(
      400,
      'invalid_request_error',
      'Invalid integer: limit must be between 1 and 100',
      'parameter_invalid_integer',
      'limit',
    );
  }
  return {
    limit,
    startingAfter: field(params, 'starting_after'),
    endingBefore: field(params, 'ending_before'),
  };
}

function createdBound(params: Form, operator: 'gt' | 'gte' | 'lt' | 'lte'): number | undefined {
  const value = field(params, 'created', operator);
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (!Number.isInteger(seconds)) {
    throw new FakeStripeError(
      400,
      'invalid_request_error',
      `Invalid integer: ${value}`,
      'parameter_invalid_integer',
      `created[${operator}]`,
    );
  }
  return seconds;
}

function lowerBound(events: readonly Stripe.Event[], created: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (events[mid].created < created) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function listOf(url: string, objects: Array<{ id: string; created?: number }>, params: ListParams): unknown {
  const ascending = [...objects].sort((a, b) => (a.created ?? 0) - (b.created ?? 0));
  return pageOf(url, ascending, 0, ascending.length, params, (id) => {
    const index = ascending.findIndex((object) => object.id === id);
    return index < 0 ? undefined : index;
  });
}

/**
 * One page of a list that is stored oldest first in `items[lo, hi)` and listed newest first, as Stripe
 * lists: `starting_after` continues toward older objects, `ending_before` toward newer ones, and either
 * cursor must name an object in the list.
 */
function pageOf<T extends { id: string }>(
  url: string,
  items: readonly T[],
  lo: number,
  hi: number,
  params: ListParams,
  indexOf: (id: string) => number | undefined,
): unknown {
  const cursor = params.startingAfter ?? params.endingBefore;
  let data: T[];
  let hasMore: boolean;
  if (cursor !== undefined) {
    const at = indexOf(cursor);
    if (at === undefined) throw missing('object', cursor);
    if (params.startingAfter !== undefined) {
      const top = Math.min(at, hi);
      const bottom = Math.max(lo, top - params.limit);
      data = items.slice(bottom, top).reverse();
      hasMore = bottom > lo;
    } else {
      const bottom = Math.max(at + 1, lo);
      const top = Math.min(hi, bottom + params.limit);
      data = items.slice(bottom, top).reverse();
      hasMore = top < hi;
    }
  } else {
    const bottom = Math.max(lo, hi - params.limit);
    data = items.slice(bottom, hi).reverse();
    hasMore = bottom > lo;
  }
  return { object: 'list', url, has_more: hasMore, data };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function json(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    'content-type': 'application/json',
    'request-id': stripeId('req', 14),
    'stripe-version': API_VERSION,
    ...headers,
  });
  response.end(JSON.stringify(body));
}

function html(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  response.end(
    `<!doctype html><html><head><meta charset="utf-8"><title>Fake Stripe Checkout</title></head><body>${body}</body></html>`,
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
