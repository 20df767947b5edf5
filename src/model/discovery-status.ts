// What discovery reports about one backend's source of servers, for the stats to show: written
// by the backend's Consul watch (src/discovery/watch.ts) as answers and failures come, read by
// /api/stats, /metrics and the page. It lives on the Backend, as health state lives on Server,
// so the stats read the model and never reach into the discovery component.

export class DiscoveryStatus {
  /** Last X-Consul-Index followed ('0': the next read is a fresh one). */
  index = '0';
  /** Servers in the last snapshot applied. */
  servers = 0;
  /** Snapshots applied to the backend / answers dropped as unchanged. */
  applied = 0;
  unchanged = 0;
  /** Answers after which the loop waited for the rate limit (the result was churning). */
  rateLimited = 0;
  /** Consecutive failed requests; 0 while Consul answers. */
  failures = 0;
  /** Failed requests over the watch's life. */
  errors = 0;
  lastError: string | null = null;
  /** ms since epoch of the last good answer; 0: none yet. */
  lastSuccessAt = 0;

  constructor(
    readonly backend: string,
    /** Where the servers come from; Consul is the one provider so far. */
    readonly provider: 'consul',
    readonly service: string,
  ) {}
}
