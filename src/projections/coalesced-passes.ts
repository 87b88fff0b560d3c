/**
 * One pass at a time over whatever has accumulated (the projector's batches, the change feed's rows):
 * `wake()` starts a pass, or, while one runs, asks for exactly one more after it, so any number of
 * wake-ups while busy cost one extra pass rather than one each, and nothing that arrived during a pass
 * waits for the next timer. A pass that throws is reported and retried on the next wake-up.
 */
export class CoalescedPasses {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  wake(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch(this.onError)
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Resolves when no pass runs (after the extra one, if it was asked for). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
