import type { SlowStartConfig } from '../config/types.js';
import type { Server } from '../model/server.js';

// Slow start (HAProxy `slowstart`, Envoy `slow_start_config`): a server that comes UP, leaves
// MAINT or is added takes a weight that grows linearly from a floor (min_weight_percent of its
// weight) to its full weight over `slow_start`, so a cold cache or a JIT that is still warming
// is not handed its whole share at once. The model keeps both: `weight` (desired) and
// `effectiveWeight` (now); round-robin, least-connections and random read the effective one in
// update(), ip-hash and stickiness keep their mapping (they read `weight` or bindings).
//
// Cost: nothing per pick. While a ramp runs, a coarse timer (1/20 of the ramp, 100 ms to 1 s,
// as HAProxy steps its eweight) recomputes the weights and feeds the strategy through
// update(); the timer stops when the last ramp ends.

const MIN_STEP_MS = 100;
const MAX_STEP_MS = 1000;
const MIN_SHARE = 0.01;

export class SlowStart {
  private config: SlowStartConfig | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    /** Recompute and feed the strategy (the backend's refresh of weights). */
    private readonly onTick: () => void,
  ) {}

  configure(config: SlowStartConfig | null): void {
    this.config = config ?? null;
    if (this.config === null) this.stopTimer();
  }

  get enabled(): boolean {
    return this.config !== null;
  }

  /**
   * Set every server's effective weight for `now`; returns true while one is still ramping
   * (and keeps the timer running until none is). Servers mark the start of a ramp themselves
   * (`rampSince`, Server.noteChange); with slow start off the marks are cleared.
   */
  apply(servers: readonly Server[], now: number): boolean {
    const config = this.config;
    let ramping = false;
    for (const s of servers) {
      if (config === null || s.rampSince === 0) {
        s.rampSince = 0;
        s.effectiveWeight = s.weight;
        continue;
      }
      const share = (now - s.rampSince) / config.durationMs;
      if (share >= 1) {
        s.rampSince = 0;
        s.effectiveWeight = s.weight;
      } else {
        // Never 0 for a server that has a weight: a backend whose servers all just came back
        // must still be able to pick one.
        s.effectiveWeight = s.weight * Math.max(config.minWeightPercent / 100, share, MIN_SHARE);
        ramping = true;
      }
    }
    if (ramping && this.timer === null && config !== null) {
      const step = Math.min(MAX_STEP_MS, Math.max(MIN_STEP_MS, config.durationMs / 20));
      this.timer = setInterval(this.onTick, step);
      this.timer.unref();
    } else if (!ramping) this.stopTimer();
    return ramping;
  }

  stop(): void {
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
