/**
 * The file-backed lease sources: BareMetalHost manifests (--bmh-file) and static hosts files
 * (--dhcp-hosts-file, plus --dhcp-hosts). Each file is watched; a file that fails to read or
 * parse keeps its last good hosts and the reason is logged.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { FileWatcher } from './file-watcher.js';
import { parseBmhManifests } from './bmh-manifests.js';
import { staticToHost, type StaticDefaults } from './static-hosts.js';
import { parseHostEntry, splitHostsFile, type StaticHost } from './host-list.js';
import type { HostIndex, Conflict } from './host-index.js';
import { unservable, type HostRecord, type SourceKind } from './host.js';
import type { Service } from '../base/service.js';
import { MetalbootError } from '../base/errors.js';

type FileParse = (text: string, path: string) => { hosts: HostRecord[]; problems: string[] };

abstract class WatchedFileSource implements Service {
  abstract readonly name: string;
  protected abstract readonly kind: SourceKind;
  readonly #paths: readonly string[];
  readonly #fixed: readonly HostRecord[];
  readonly #index: HostIndex;
  protected readonly log: Logger;
  readonly #byFile = new Map<string, { text: string; hosts: HostRecord[] }>();
  #watcher: FileWatcher | undefined;

  constructor(paths: readonly string[], fixed: readonly HostRecord[], index: HostIndex, log: Logger) {
    this.#paths = paths;
    this.#fixed = fixed;
    this.#index = index;
    this.log = log;
  }

  protected abstract parse: FileParse;

  async start(): Promise<void> {
    for (const p of this.#paths) {
      const r = this.#load(p);
      if (r !== true) throw new MetalbootError('SOURCE_ERR_INVALID', `${p}: ${r}`);
    }
    this.#publish();
    this.#watcher = new FileWatcher(this.#paths, (p) => {
      const r = this.#load(p);
      if (r === true) this.#publish();
      else if (r !== 'unchanged')
        this.log.error({ file: p, reason: r }, 'source file rejected, keeping the last good hosts');
    });
    this.#watcher.start();
  }

  /** true when loaded, 'unchanged', or the reason it could not be used. */
  #load(path: string): true | string {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      return `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    if (this.#byFile.get(path)?.text === text) return 'unchanged';
    let parsed: { hosts: HostRecord[]; problems: string[] };
    try {
      parsed = this.parse(text, path);
    } catch (err) {
      return (err as Error).message;
    }
    for (const problem of parsed.problems) this.log.warn({ file: path, problem }, 'source entry skipped');
    this.#byFile.set(path, { text, hosts: parsed.hosts });
    this.log.info({ file: path, hosts: parsed.hosts.length }, 'source file loaded');
    return true;
  }

  #publish(): void {
    const all = [...this.#fixed, ...[...this.#byFile.values()].flatMap((f) => f.hosts)];
    logConflicts(this.log, this.#index.replaceAll(this.kind, all));
    for (const h of all) {
      const problem = unservable(h);
      if (problem !== undefined)
        this.log.warn({ host: h.origin.name, file: h.origin.from, problem }, 'host cannot be served');
    }
  }

  async close(): Promise<void> {
    this.#watcher?.close();
  }
}

export function logConflicts(log: Logger, conflicts: readonly Conflict[]): void {
  for (const c of conflicts) log.error({ conflict: c.kind, key: c.key, owners: c.owners }, 'lease conflict');
}

export class BmhFileSource extends WatchedFileSource {
  readonly name = 'bmh-files';
  protected readonly kind = 'bmh' as const;
  readonly #prefix: string;

  constructor(paths: readonly string[], annotationPrefix: string, index: HostIndex, log: Logger) {
    super(paths, [], index, log.child({ component: 'bmh-files' }));
    this.#prefix = annotationPrefix;
  }

  protected parse: FileParse = (text, path) => {
    const r = parseBmhManifests(text, path, this.#prefix);
    return { hosts: r.hosts, problems: r.skipped.map((s) => `${s.name}: ${s.reason}`) };
  };
}

export class StaticHostSource extends WatchedFileSource {
  readonly name = 'static-hosts';
  protected readonly kind = 'static' as const;
  readonly #defaults: StaticDefaults;

  constructor(
    flagHosts: readonly StaticHost[],
    paths: readonly string[],
    defaults: StaticDefaults,
    index: HostIndex,
    log: Logger,
  ) {
    super(
      paths,
      flagHosts.map((h) => staticToHost(h, '--dhcp-hosts', defaults)),
      index,
      log.child({ component: 'static-hosts' }),
    );
    this.#defaults = defaults;
  }

  protected parse: FileParse = (text, path) => {
    const hosts: HostRecord[] = [];
    const problems: string[] = [];
    for (const { line, entry } of splitHostsFile(text)) {
      const r = parseHostEntry(entry);
      if (r.ok) hosts.push(staticToHost(r.host, path, this.#defaults));
      else problems.push(`line ${line}: ${r.error}`);
    }
    return { hosts, problems };
  };
}
