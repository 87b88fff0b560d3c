/**
 * The load generator, on its own thread (and so its own core) so that the client does not steal the
 * server's event loop: `concurrency` senders post the prepared webhooks over keep-alive HTTP and record
 * each request's time to acknowledgement.
 */
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

interface Job {
  url: string;
  bodies: string[];
  signatures: string[];
  concurrency: number;
}

const { url, bodies, signatures, concurrency } = workerData as Job;
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
