/**
 * The one path by which Paywire publishes to its Aedes broker: a FIFO outbox with one message in flight,
 * the next handed over only once Aedes has emitted the previous one to its subscribers.
 *
 * Why: Aedes 1.2 numbers a packet (`brokerCounter`) when `publish` is called, but emits a retained one only
 * after its retained store answered, so a notable event published right after a state reached subscribers
 * first, and the per-client dedupe in `lib/client.js` then dropped the lower-numbered state as a duplicate
 * for every client subscribed to both topics, and for admins on `billing/#` (moscajs/aedes#994, #955).
 * Packets emitted in the order they were numbered cannot be dropped that way, whatever Aedes does inside
 * a publish.
 *
 * "Emitted" is seen by a listener of our own on the broker's emitter (`aedes.subscribe`): the emitter calls
 * every subscriber of a packet, and so runs every client's dedupe check, synchronously in one loop, and
 * this listener is one of them. Waiting for the publish callback instead would be as safe but waits for
 * every subscriber's socket write, and the outbox then fell seconds behind under load (BENCHMARKS.md,
 * push). The callback still advances the outbox when a publish fails before it was emitted.
 */
import type { Aedes, AedesPublishPacket } from 'aedes';

export interface OutgoingMessage {
  topic: string;
  payload: string;
  retain: boolean;
}

export class OrderedPublisher {
  /** Messages not yet handed to Aedes, oldest at `head` (an index, so taking one costs nothing). */
  private queue: (OutgoingMessage | undefined)[] = [];
  private head = 0;
  /** Hands the next message over; set while one is in flight, called once by whichever sees it first. */
  private advance: (() => void) | undefined;

  constructor(
    private readonly broker: Aedes,
    /** Only Paywire publishes under this prefix (clients may not publish), so its emissions are ours. */
    private readonly topicFilter: string,
    private readonly onSettled: (message: OutgoingMessage, error: Error | undefined) => void,
  ) {
    broker.subscribe(
      topicFilter,
      (_packet: AedesPublishPacket, done: () => void) => {
        this.advance?.();
        done();
      },
      () => undefined,
    );
  }

  get pending(): number {
    return this.queue.length - this.head + (this.advance ? 1 : 0);
  }

  publish(message: OutgoingMessage): void {
    this.queue.push(message);
    if (!this.advance) this.sendNext();
  }

  /** Forgets what is queued (at shutdown). */
  clear(): void {
    this.queue = [];
    this.head = 0;
  }

  private sendNext(): void {
    const message = this.queue[this.head];
    if (!message) {
      this.clear();
      this.advance = undefined;
      return;
    }
    // Released as soon as it is taken, so a long queue does not hold sent payloads.
    this.queue[this.head++] = undefined;
    let advanced = false;
    const advance = () => {
      if (advanced) return;
      advanced = true;
      // After the emitter's loop over this packet's subscribers has finished, never inside it.
      queueMicrotask(() => this.sendNext());
    };
    this.advance = advance;
    const { topic, payload, retain } = message;
    this.broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain, dup: false }, (error) => {
      advance();
      this.onSettled(message, error ?? undefined);
    });
  }
}
