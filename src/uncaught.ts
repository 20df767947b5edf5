import type { Logger } from './log.js';

// The process's policy for an exception nothing caught: one bad connection (or a user
// strategy that throws from a timer) must never take every other connection down. Each one is
// logged at error level with a running count and counted for the stats
// (switchyard_uncaught_exceptions_total); the process keeps serving.

let count = 0;

export function installUncaughtPolicy(logger: Logger, message: string): void {
  process.on('uncaughtException', (error) => {
    count++;
    logger.error({ err: error, uncaught: count }, message);
  });
}

/** Uncaught exceptions in this process so far. */
export function uncaughtCount(): number {
  return count;
}
