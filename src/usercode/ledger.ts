import { EventEmitter } from 'node:events';

// What user code did, per module file: the version serving, when it loaded, and how often it
// failed while serving (a throw, or an answer the proxy could not use). Stats read it
// (/api/stats `userCode`, /metrics `switchyard_user_code_errors_total`); the composition root
// logs the failures (at most one line a second per module: failures are per request).
// Counters are per file and survive versions, as a Prometheus counter must.

export type UserCodeKind = 'strategy' | 'router' | 'hooks';

export interface UserModuleRecord {
  readonly file: string;
  readonly kind: UserCodeKind;
  version: string;
  loadedAt: number;
  /** Versions loaded so far (1 at first load; +1 per hot swap of a changed file). */
  loads: number;
  errors: number;
  lastError: string | null;
  lastErrorAt: number;
}

export interface UserCodeErrorEvent {
  readonly file: string;
  readonly kind: UserCodeKind;
  readonly error: unknown;
}

export const userCodeEvents = new EventEmitter<{ error: [UserCodeErrorEvent] }>();
userCodeEvents.setMaxListeners(100);

const records = new Map<string, UserModuleRecord>();

function key(kind: UserCodeKind, file: string): string {
  return `${kind}\0${file}`;
}

/** A module version was loaded for `kind` (cold path). Returns its record. */
export function noteLoaded(kind: UserCodeKind, file: string, version: string, loadedAt: number): UserModuleRecord {
  let r = records.get(key(kind, file));
  if (r === undefined) {
    r = { file, kind, version, loadedAt, loads: 1, errors: 0, lastError: null, lastErrorAt: 0 };
    records.set(key(kind, file), r);
  } else if (r.version !== version) {
    r.version = version;
    r.loadedAt = loadedAt;
    r.loads++;
  }
  return r;
}

/** User code failed while serving: counted, remembered, emitted for the log. */
export function noteUserCodeError(record: UserModuleRecord, error: unknown): void {
  record.errors++;
  record.lastError = (error as Error | null)?.message ?? String(error);
  record.lastErrorAt = Date.now();
  if (userCodeEvents.listenerCount('error') > 0) userCodeEvents.emit('error', { file: record.file, kind: record.kind, error });
}

/** Every module loaded so far, in load order. */
export function userModuleRecords(): readonly UserModuleRecord[] {
  return [...records.values()];
}
