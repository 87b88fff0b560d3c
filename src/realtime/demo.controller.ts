/**
 * `/demo` (outside production only): a page that shows one customer's live billing state, pushed over
 * MQTT-over-WebSocket by the embedded broker, with the browser build of `mqtt`. The token travels in the
 * URL fragment (`/demo?customer=cus_…#token=…`), which browsers never send to a server, so it stays out
 * of access logs; mint one with `npx paywire token --customer cus_…` or `POST /admin/tokens`.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
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
<p>Customer <code id="customer"></code>: <span id="status">connecting…</span></p>
<h2>Entitlements</h2>
<ul id="entitlements"><li class="muted">waiting for state…</li></ul>
<h2>Payment</h2>
<p id="payment" class="muted">–</p>
<h2>State (version <span id="version">–</span>)</h2>
<pre id="state"></pre>
<script src="MQTT_BUNDLE"></script>
<script>
  const customer = new URLSearchParams(location.search).get('customer') || '';
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  const $ = (id) => document.getElementById(id);
  $('customer').textContent = customer;
  let shown = -1;
  const client = mqtt.connect((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + 'MQTT_PATH', {
    protocolVersion: 4,
    clientId: customer + ':demo-' + Math.random().toString(36).slice(2, 10),
    username: 'demo',
    password: token,
    reconnectPeriod: 2000,
  });
  client.on('connect', () => {
    $('status').textContent = 'live';
    client.subscribe('billing/customers/' + customer + '/state', { qos: 1 });
  });
  client.on('close', () => ($('status').textContent = 'disconnected'));
  client.on('message', (_topic, payload) => {
    const state = JSON.parse(payload.toString());
    if (state.version < shown) return; // an older state never replaces a newer one
    shown = state.version;
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

@ApiExcludeController()
@Controller('demo')
export class DemoController {
  private readonly bundle: string;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.bundle = readFileSync(createRequire(import.meta.url).resolve('mqtt/dist/mqtt.min'), 'utf8');
  }

  private guard(): void {
    if (this.config.nodeEnv === 'production') throw new HttpException({ error: 'not_found' }, 404);
  }

  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  page(): string {
    this.guard();
    return PAGE.replace('MQTT_BUNDLE', '/demo/mqtt.min.js').replace('MQTT_PATH', this.config.mqttWsPath);
  }

  @Get('mqtt.min.js')
  @Header('content-type', 'text/javascript; charset=utf-8')
  @Header('cache-control', 'public, max-age=3600')
  script(): string {
    this.guard();
    return this.bundle;
  }
}
