import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from './log.js';

/**
 * Watches a set of files (the config file and the user modules it names) through their
 * folders, not the files: editors, `sed -i`, Ansible and Kubernetes ConfigMaps replace a file
 * (write a new one, rename it over; ConfigMaps swap a `..data` symlink) as often as they write
 * it in place, and a watch on the file stays on the old inode, deaf to every later edit
 * (inotify). Events are debounced (200 ms) into one `onChange` call; the caller decides whether
 * anything really changed (it compares texts), so a save that fires several events reloads once.
 */
export class FileWatch {
  private readonly watchers = new Map<string, FSWatcher>();
  private names = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly onChange: () => void,
    private readonly logger: Logger,
  ) {}

  /** Watch exactly these files from now on (folders no longer needed are unwatched). */
  set(files: Iterable<string>): void {
    const names = new Map<string, Set<string>>();
    for (const file of files) {
      const dir = dirname(file);
      let set = names.get(dir);
      if (set === undefined) names.set(dir, (set = new Set()));
      set.add(basename(file));
    }
    this.names = names;
    for (const [dir, w] of this.watchers) {
      if (!names.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of names.keys()) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, (_event, changed) => this.event(dir, changed));
        w.unref();
        w.on('error', (error) => this.logger.warn({ err: error, dir }, 'file watch failed; SIGHUP and POST /api/reload still reload'));
        this.watchers.set(dir, w);
      } catch (error) {
        this.logger.warn({ err: error, dir }, 'cannot watch the folder; SIGHUP and POST /api/reload still reload');
      }
    }
  }

  private event(dir: string, changed: string | null): void {
    if (changed !== null && !changed.startsWith('..') && !(this.names.get(dir)?.has(changed) ?? false)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onChange();
    }, 200);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
