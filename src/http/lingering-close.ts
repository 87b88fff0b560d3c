/**
 * A lingering close for answers given before the request body was read (a body over the limit: SPEC
 * section 2's 413). Fastify answers such a request at once and asks Node to close the connection; the
 * kernel then resets it because unread bytes are still arriving, and a sender that writes its whole body
 * before reading (fetch, most HTTP clients) sees `EPIPE` or `ECONNRESET` instead of the answer. So, like
 * a web server's lingering close, the rest of the body is read and dropped after the answer, and the
 * connection stays usable. A sender that keeps sending past `maxBytes` more, or for longer than
 * `maxMs`, is cut off: draining is a courtesy, not an upload channel.
 */
import type { FastifyInstance } from 'fastify';

export function lingerOnEarlyAnswers(
  fastify: FastifyInstance,
  limits: { maxBytes: number; maxMs: number },
): void {
  // A callback hook, not an async one: it runs on every answer, webhooks included, and almost always has
  // nothing to do.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const incoming = request.raw;
    if (incoming.complete || reply.getHeader('connection') !== 'close') return done(null, payload);
    reply.removeHeader('connection');
    let drained = 0;
    const cutOff = () => incoming.socket.destroy();
    const timer = setTimeout(cutOff, limits.maxMs);
    timer.unref();
    incoming.on('data', (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > limits.maxBytes) cutOff();
    });
    incoming.once('close', () => clearTimeout(timer));
    incoming.resume();
    done(null, payload);
  });
}
