// The JSON the page reads (/api/stats, /api/history, the event stream), typed by the
// declarations of the server modules that write it: type-only imports, so the page and the
// listener cannot drift apart and nothing of the server ends up in the bundle.

import type { StatsJson } from '../snapshot.js';

export type { JsonServer, StatsJson } from '../snapshot.js';
export type { HistoryJson, Transition } from '../history.js';

export type FrontendJson = StatsJson['frontends'][number];
export type BackendJson = StatsJson['backends'][number];
/** A row's counters keyed by CSV column name (`scur`, `hrsp_5xx` ...). */
export type StatsCells = Record<string, number | string>;
