/**
 * The load generator, on its own thread (and so its own core) so that the client does not steal the
 * server's event loop: `concurrency` senders post the prepared webhooks over keep-alive HTTP and record
 * each request's time to acknowledgement. With `rate`, it sends on a schedule instead (that many a
 * second, not waiting for answers, over up to `concurrency` connections) and records when each request
 * was sent and answered, in epoch milliseconds, which other threads and processes can compare.
 */
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

interface Job {
  url: string;
  bodies: string[];
  signatures: string[];
  concurrency: number;
  rate?: number;
}

const { url, bodies, signatures, concurrency, rate } = workerData as Job;
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function post(i: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(bodies[i]);
    const request = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'stripe-signature': signatures[i],
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

const epoch = () => performance.timeOrigin + performance.now();

/** `perSecond` webhooks a second, each sent on time whether or not the earlier ones were answered. */
async function onSchedule(perSecond: number) {
  const sentAt = new Float64Array(bodies.length);
  const answeredAt = new Float64Array(bodies.length);
  const statuses = new Int32Array(bodies.length);
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < bodies.length; i++) {
    const wait = started + (i * 1000) / perSecond - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    sentAt[i] = epoch();
    inflight.push(
      post(i)
        .then((status) => void (statuses[i] = status))
        .catch(() => undefined)
        .finally(() => (answeredAt[i] = epoch())),
    );
  }
  await Promise.all(inflight);
  agent.destroy();
  parentPort!.postMessage({
    sentAt: Array.from(sentAt),
    answeredAt: Array.from(answeredAt),
    statuses: Array.from(statuses),
  });
}

/** `concurrency` senders, each posting its next webhook when the last was answered. */
async function closedLoop() {
  const latencies = new Float64Array(bodies.length);
  let next = 0;
  let failures = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const i = next++;
        const t0 = performance.now();
        const status = await post(i);
        latencies[i] = performance.now() - t0;
        if (status !== 200) failures++;
      }
    }),
  );
  const elapsed = performance.now() - started;
  agent.destroy();
  parentPort!.postMessage({ latencies: Array.from(latencies), elapsed, failures });
}

await (rate ? onSchedule(rate) : closedLoop());
