/**
 * `/demo` (outside production only): a page that shows one customer's live billing state, pushed over
 * MQTT-over-WebSocket by the embedded broker, through the same client a Next.js page uses
 * (`paywire/client`, served compiled, with an import map for the browser build of `mqtt`). The token travels in the
 * URL fragment (`/demo?customer=cus_…#token=…`), which browsers never send to a server, so it stays out
 * of access logs; mint one with `npx paywire token --customer cus_…` or `POST /admin/tokens`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, Get, Header, HttpException, Inject } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { CONFIG, type Config } from '../config/config.js';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Paywire demo</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 44rem; color: #1d2330; }
  #status { font-weight: 600; } .muted { color: #667; } pre { background: #f4f5f8; padding: 1rem; overflow: auto; }
</style>
</head>
<body>
<h1>Paywire: live billing state</h1>
<p>Customer <code id="customer"></code>: <span id="status">connecting</span></p>
<h2>Entitlements</h2>
<ul id="entitlements"><li class="muted">waiting for state…</li></ul>
<h2>Payment</h2>
<p id="payment" class="muted">–</p>
<h2>State (version <span id="version">–</span>)</h2>
<pre id="state"></pre>
<script type="importmap">{ "imports": { "mqtt": "/demo/mqtt.esm.js" } }</script>
<script type="module">
  import { subscribeBillingState } from '/demo/paywire-client.js';
  const customer = new URLSearchParams(location.search).get('customer') || '';
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  const $ = (id) => document.getElementById(id);
  $('customer').textContent = customer;
  const getToken = async () => ({
    token,
    url: (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + 'MQTT_PATH',
    clientId: customer + ':demo-' + Math.random().toString(36).slice(2, 10),
    expiresAt: new Date(JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp * 1000).toISOString(),
  });
  // The same client a Next.js page uses: a version guard, token refresh and reconnects are built in.
  subscribeBillingState({ getToken, customerId: customer }, ({ state, status }) => {
    $('status').textContent = status;
    if (!state) return;
    const list = $('entitlements');
    list.replaceChildren(...(state.entitlements.length ? state.entitlements : [null]).map((e) => {
      const li = document.createElement('li');
      li.textContent = e ? e.feature + ' (' + e.source + (e.until ? ', until ' + e.until : '') + ')' : 'none';
      if (e) li.dataset.feature = e.feature;
      return li;
    }));
    $('payment').textContent = state.payment.status;
    $('version').textContent = String(state.version);
    $('state').textContent = JSON.stringify(state, null, 2);
  });
</script>
</body>
</html>`;

/** Where the compiled browser client is: beside this file when running from dist, else in dist. */
function clientModule(): string | undefined {
  const candidates = [
    fileURLToPath(new URL('../client/billing-client.js', import.meta.url)),
    join(process.cwd(), 'dist/src/client/billing-client.js'),
  ];
  return candidates.find((file) => existsSync(file));
}

@ApiExcludeController()
@Controller('demo')
export class DemoController {
  private readonly mqtt: string;
  private readonly client: string | undefined;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.mqtt = readFileSync(createRequire(import.meta.url).resolve('mqtt/dist/mqtt.esm'), 'utf8');
    const module = clientModule();
    this.client = module ? readFileSync(module, 'utf8') : undefined;
  }

  private guard(): void {
    if (this.config.nodeEnv === 'production') throw new HttpException({ error: 'not_found' }, 404);
  }

  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  page(): string {
    this.guard();
    return PAGE.replace('MQTT_PATH', this.config.mqttWsPath);
  }

  @Get('mqtt.esm.js')
  @Header('content-type', 'text/javascript; charset=utf-8')
  @Header('cache-control', 'public, max-age=3600')
  mqttModule(): string {
    this.guard();
    return this.mqtt;
  }

  @Get('paywire-client.js')
  @Header('content-type', 'text/javascript; charset=utf-8')
  paywireClient(): string {
    this.guard();
    if (!this.client) throw new HttpException({ error: 'not_found', hint: 'run npm run build' }, 404);
    return this.client;
  }
}
