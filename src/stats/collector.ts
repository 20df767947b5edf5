import type { Exposition, MetricType } from './exposition.js';
import type { Row } from './row.js';

// What a `/metrics` family is (metrics.ts, tls-stats.ts): its HELP/TYPE and a collect() run at
// each scrape over that scrape's rows, appending samples. Nothing is kept between scrapes.

/** One scrape's rows, with each row's labels (`backend="api",server="s1"`) at the same index. */
export interface Scrape {
  readonly rows: readonly Row[];
  readonly labels: readonly string[];
}

/** A metric family: its HELP/TYPE and the samples it appends at each scrape. */
export interface Collector {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  collect(out: Exposition, scrape: Scrape): void;
}
