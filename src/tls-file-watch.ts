import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Config } from './config/types.js';
import type { RuntimeComponent } from './host.js';
import type { Logger } from './log.js';
import type { Runtime } from './model/runtime.js';

// Certificate renewal without a signal: the folders of the running config's certificate, key
// and CA files are watched, and when a file's content differs from what the running config
// loaded, the config is reloaded (which re-reads and re-checks every file: a bad new
// certificate is refused as on any reload, and the running one keeps serving). Like the config
// file's own watch (switchyard.ts) it watches folders, not files, so that certbot's renames
// and Kubernetes' `..data` symlink swaps are seen; events are debounced.

const DEBOUNCE_MS = 300;

/** Every TLS file of a config with the text it was loaded with. */
export function tlsFiles(config: Config): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of config.frontends) {
    for (const p of f.tls?.certificates ?? []) {
      files.set(p.certFile, p.cert);
      files.set(p.keyFile, p.key);
    }
  }
  for (const b of config.backends) {
    const tls = b.tls;
    if (tls === null) continue;
    if (tls.caFile !== null && tls.ca !== null) files.set(tls.caFile, tls.ca);
    if (tls.clientCert !== null) {
      files.set(tls.clientCert.certFile, tls.clientCert.cert);
      files.set(tls.clientCert.keyFile, tls.clientCert.key);
    }
  }
  return files;
}

export class TlsFileWatch implements RuntimeComponent {
  private files = new Map<string, string>();
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly reload: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  sync(runtime: Runtime): void {
    if (this.stopped) return;
    this.files = tlsFiles(runtime.config);
    const dirs = new Set([...this.files.keys()].map((f) => dirname(f)));
    for (const [dir, w] of this.watchers) {
      if (dirs.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, (_event, name) => this.changed(dir, name));
        w.unref();
        w.on('error', (error) => this.logger.warn({ err: error, dir }, 'certificate folder watch failed; SIGHUP still reloads'));
        this.watchers.set(dir, w);
      } catch (error) {
        this.logger.warn({ err: error, dir }, 'cannot watch the certificate folder; SIGHUP still reloads');
      }
    }
  }

  private changed(dir: string, name: string | Buffer | null): void {
    const n = name === null ? null : String(name);
    if (n !== null && !n.startsWith('..') && ![...this.files.keys()].some((f) => dirname(f) === dir && basename(f) === n)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(), DEBOUNCE_MS);
    this.timer.unref();
  }

  /** Reload when a file's text is not what the running config holds. */
  private async check(): Promise<void> {
    this.timer = null;
    for (const [file, loaded] of this.files) {
      let text: string;
      try {
        text = await readFile(file, 'latin1');
      } catch {
        continue; // between an unlink and a rename: the next event brings the new file
      }
      if (text === loaded) continue;
      if (this.stopped) return;
      this.logger.info({ file }, 'TLS file changed: reloading the config');
      await this.reload();
      return;
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    return Promise.resolve();
  }
}
