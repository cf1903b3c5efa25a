/**
 * Real TFTP clients against metalboot over loopback on an unprivileged port: tftp-hpa's `tftp`,
 * `atftp` (blksize and windowsize options) and `curl tftp://` (blksize, tsize). Each downloads
 * the iPXE binaries a boot serves; the sha256 must match. Both port modes.
 *
 * The clients come from Debian packages (tftp-hpa, atftp, curl) that .ci/run installs; a missing
 * client fails its cases.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IPXE_BINARIES,
  makeTftpRoot,
  sha256,
  startTftpServer,
  type RunningServer,
  type TftpRoot,
} from '../support/tftp-fixture.js';

const CLIENT_TIMEOUT_MS = 60_000;

interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with a hard deadline; the process is killed on timeout or test failure. */
function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => undefined); // a client that exits without reading its input
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${cmd} timed out after ${opts.timeoutMs ?? CLIENT_TIMEOUT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, opts.timeoutMs ?? CLIENT_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

async function has(cmd: string): Promise<boolean> {
  const r = await run('sh', ['-c', `command -v ${cmd}`], { timeoutMs: 5000 });
  return r.code === 0;
}

interface Client {
  readonly name: string;
  readonly binary: string;
  /** Downloads `file` from 127.0.0.1:`port` into `out`. */
  get(port: number, file: string, out: string): Promise<RunResult>;
}

const CLIENTS: Client[] = [
  {
    name: 'tftp-hpa (binary mode, RFC 1350 lock-step)',
    binary: 'tftp',
    get: (port, file, out) => run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', file, out]),
  },
  {
    name: 'atftp (blksize 1428, windowsize 8)',
    binary: 'atftp',
    get: (port, file, out) =>
      run('atftp', [
        '--get',
        '-r',
        file,
        '-l',
        out,
        '--option',
        'blksize 1428',
        '--option',
        'windowsize 8',
        '--option',
        'tsize',
        '127.0.0.1',
        String(port),
      ]),
  },
  {
    name: 'atftp (no options)',
    binary: 'atftp',
    get: (port, file, out) => run('atftp', ['--get', '-r', file, '-l', out, '127.0.0.1', String(port)]),
  },
  {
    name: 'curl (--tftp-blksize 1468, tsize)',
    binary: 'curl',
    get: (port, file, out) =>
      run('curl', [
        '-sS',
        '--fail',
        '--max-time',
        '50',
        '--tftp-blksize',
        '1468',
        '-o',
        out,
        `tftp://127.0.0.1:${port}/${file}`,
      ]),
  },
];

let root: TftpRoot;
let outDir: string;
const available = new Map<string, boolean>();

beforeAll(async () => {
  root = makeTftpRoot();
  outDir = mkdtempSync(path.join(tmpdir(), 'metalboot-tftp-out-'));
  for (const c of CLIENTS) available.set(c.binary, await has(c.binary));
});

afterAll(() => {
  root?.remove();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe.each([
  { mode: 'per-transfer ports', singlePort: false },
  { mode: 'single port', singlePort: true },
])('real clients, $mode', ({ singlePort }) => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startTftpServer(root.dir, { singlePort, closeTimeoutMs: 1000 });
  });
  afterAll(async () => {
    await server?.close();
  });

  describe.each(CLIENTS)('$name', (client) => {
    it.each(IPXE_BINARIES.map((f) => [f]))('%s', async (file) => {
      // A missing client is a failure, never a silent pass (docs/decisions/0001-tests-split.md).
      if (!available.get(client.binary))
        throw new Error(`${client.binary} is not installed (Debian packages tftp-hpa, atftp, curl)`);
      const out = path.join(
        outDir,
        `${client.binary}-${singlePort ? 'single' : 'multi'}-${Math.random().toString(36).slice(2)}-${file}`,
      );
      const r = await client.get(server.port, file, out);
      expect(r.code, `exit code\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
      expect(sha256(readFileSync(out))).toBe(sha256(root.files.get(file)!));
      await server.idle();
    });
  });

  it('tells a real client about a missing file', async () => {
    if (!available.get('curl')) return;
    const r = await run('curl', [
      '-sS',
      '--fail',
      '--max-time',
      '20',
      '-o',
      '/dev/null',
      `tftp://127.0.0.1:${server.port}/no-such-file.efi`,
    ]);
    expect(r.code).toBe(68); // CURLE_TFTP_NOTFOUND: curl read our ERROR 1
  });
});
