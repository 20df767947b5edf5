import { pino, type Logger } from 'pino';

// One structured logger (pino: JSON lines, cheap when a level is off). Components take a child
// with their name: log.child({ component: 'health' }). Level from SWITCHYARD_LOG_LEVEL or config.

export const log: Logger = pino({
  name: 'switchyard',
  level: process.env.SWITCHYARD_LOG_LEVEL ?? 'info',
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
});

export function setLogLevel(level: string): void {
  if (!process.env.SWITCHYARD_LOG_LEVEL) log.level = level;
}

export type { Logger };
