/**
 * Watches a set of files for changes, robust to editors that write a temp file and rename it,
 * and to Kubernetes ConfigMap/Secret volumes that swap a `..data` symlink: the parent directory
 * is watched and any event there re-checks the files in it (callers compare contents).
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export class FileWatcher {
  readonly #dirs = new Map<string, string[]>();
  readonly #watchers: FSWatcher[] = [];
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #onChange: (path: string) => void;
  readonly #debounceMs: number;

  constructor(paths: readonly string[], onChange: (path: string) => void, debounceMs = 200) {
    for (const p of paths) {
      const dir = dirname(resolve(p));
      this.#dirs.set(dir, [...(this.#dirs.get(dir) ?? []), p]);
    }
    this.#onChange = onChange;
    this.#debounceMs = debounceMs;
  }

  start(): void {
    for (const [dir, files] of this.#dirs) {
      const names = new Set(files.map((f) => basename(f)));
      const w = watch(dir, { persistent: false }, (_event, name) => {
        // A rename of ..data (ConfigMap) or an unknown name (some platforms) re-checks them all.
        if (name !== null && !names.has(name.toString()) && !name.toString().startsWith('..')) return;
        for (const f of files) this.#schedule(f);
      });
      w.on('error', () => undefined);
      this.#watchers.push(w);
    }
  }

  #schedule(path: string): void {
    clearTimeout(this.#timers.get(path));
    this.#timers.set(
      path,
      setTimeout(() => {
        this.#timers.delete(path);
        this.#onChange(path);
      }, this.#debounceMs),
    );
  }

  close(): void {
    for (const w of this.#watchers) w.close();
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#watchers.length = 0;
    this.#timers.clear();
  }
}
