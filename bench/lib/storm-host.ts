/**
 * One simulated bare-metal host booting through metalboot, phase by phase, as UEFI firmware and
 * then iPXE would: DHCP as EDK2 PXE → TFTP of the iPXE binary (EDK2 style) → DHCP as iPXE →
 * boot.ipxe and the host script → kernel and initramfs through the image proxy. Each phase is
 * timed from its first packet or request to its last byte; resends and retries are counted.
 */
import { IPXE, UEFI_PXE } from '../../lab/dhcp-requests.js';
import { OPT } from '../../src/dhcp/options.js';
import { type DhcpMux, StormDhcpError } from './storm-dhcp.js';
import { edk2Read, StormTftpError } from './storm-tftp.js';
import { hostScriptUrl, imageUrls, StormHttpError, type Fetched, type HostHttp } from './storm-http.js';

export const PHASES = ['dhcp', 'tftp', 'ipxeDhcp', 'scripts', 'images'] as const;
export type Phase = (typeof PHASES)[number];

export interface Artifact {
  readonly size: number;
  readonly sha256: string;
}

export interface HostPlan {
  readonly i: number;
  readonly mac: string;
  readonly ip: string;
  /** When it powers on, ms after the storm starts. */
  readonly startMs: number;
}

export interface StormSettings {
  readonly serverIp: string;
  readonly tftpFile: string;
  readonly tftp: Artifact;
  readonly kernel: Artifact;
  readonly initramfs: Artifact;
  /** Hash kernel and initramfs as they stream (costs client CPU); sizes are always checked. */
  readonly hashImages: boolean;
  /** EDK2: 4, 8, 16, 32 s. */
  readonly firmwareDhcpScheduleMs: readonly number[];
  /** iPXE: 1, 2, 4, 8 s. */
  readonly ipxeDhcpScheduleMs: readonly number[];
  readonly tftpTimeoutMs: number;
  readonly tftpRetries: number;
  readonly tftpDeadlineMs: number;
  /** iPXE `kernel --timeout 60000 … || goto retry` (sleep 5): retries of a failed GET. */
  readonly httpIdleTimeoutMs: number;
  readonly httpRetries: number;
  readonly httpRetryDelayMs: number;
}

export interface PhaseResult {
  readonly startMs: number;
  readonly ms: number;
  /** DHCP/TFTP resends or HTTP retries in this phase. */
  readonly resends: number;
  /** HTTP phases: per request, ms to connect (new connection), to the response head, to the last byte. */
  readonly requests?: readonly {
    readonly what: string;
    readonly connectMs?: number;
    readonly headMs: number;
    readonly ms: number;
  }[];
}

/** What a host has done so far, readable while it boots (for hosts cut off by the client's deadline). */
export interface HostProgress {
  phase: Phase | undefined;
  readonly phases: Partial<Record<Phase, PhaseResult>>;
}

export interface HostResult {
  readonly i: number;
  readonly mac: string;
  readonly ok: boolean;
  readonly startMs: number;
  /** Power-on to the last initramfs byte (successful hosts). */
  readonly totalMs?: number;
  readonly phases: Partial<Record<Phase, PhaseResult>>;
  readonly failedPhase?: Phase;
  readonly error?: string;
  readonly imageBytes: number;
}

class PhaseError extends Error {
  constructor(
    readonly phase: Phase,
    override readonly cause: Error,
    readonly resends: number,
  ) {
    super(`${phase}: ${cause.message}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `f` with up to `retries` retries after `delayMs`; resolves with the value and the retry count. */
async function withRetries<T>(
  retries: number,
  delayMs: number,
  f: () => Promise<T>,
): Promise<{ value: T; retries: number }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { value: await f(), retries: attempt };
    } catch (err) {
      if (attempt >= retries) throw Object.assign(err as Error, { retries: attempt });
      await sleep(delayMs);
    }
  }
}

/**
 * Boots one host; never throws (failures are in the result). `now()` is ms since the storm
 * started; the host has already waited for its start time. `http` gives the host's HTTP client
 * (in the client process, one in a worker thread). `progress`, when given, is kept current.
 */
export async function bootHost(
  plan: HostPlan,
  s: StormSettings,
  io: { readonly mux: DhcpMux; readonly http: (localAddress: string) => HostHttp; readonly now: () => number },
  progress?: HostProgress,
): Promise<HostResult> {
  const { mux, now } = io;
  const phases: Partial<Record<Phase, PhaseResult>> = progress?.phases ?? {};
  const started = now();
  let imageBytes = 0;
  const http = io.http(plan.ip);
  const requests: NonNullable<PhaseResult['requests']>[number][] = [];
  const timed = (what: string, f: Fetched): Fetched => {
    requests.push({
      what,
      headMs: Math.round(f.headMs),
      ms: Math.round(f.ms),
      ...(f.connectMs === undefined ? {} : { connectMs: Math.round(f.connectMs) }),
    });
    return f;
  };
  const run = async <T>(phase: Phase, f: () => Promise<{ value: T; resends: number }>): Promise<T> => {
    const t0 = now();
    if (progress !== undefined) progress.phase = phase;
    requests.length = 0;
    try {
      const { value, resends } = await f();
      phases[phase] = {
        startMs: t0,
        ms: now() - t0,
        resends,
        ...(requests.length > 0 ? { requests: [...requests] } : {}),
      };
      return value;
    } catch (err) {
      const e = err as Error & { resends?: number; retries?: number };
      throw new PhaseError(phase, e, e.resends ?? e.retries ?? 0);
    }
  };
  // Option 97 is the machine's SMBIOS UUID: unique per host.
  const uuid = Uint8Array.of(
    0,
    ...Array.from({ length: 16 }, (_, k) => (k < 12 ? k + 1 : (plan.i >> (8 * (15 - k))) & 0xff)),
  );
  const firmwareOptions = [...UEFI_PXE.filter(([code]) => code !== OPT.CLIENT_UUID), [OPT.CLIENT_UUID, uuid] as const];
  try {
    const lease = await run('dhcp', async () => {
      const r = await mux.dora(plan.mac, firmwareOptions, s.firmwareDhcpScheduleMs);
      if (r.ip !== plan.ip) throw new Error(`lease ${r.ip}, expected ${plan.ip}`);
      if (r.bootFile !== s.tftpFile) throw new Error(`boot file ${JSON.stringify(r.bootFile)}, expected ${s.tftpFile}`);
      return { value: r, resends: r.resends };
    });
    const tftpServer = lease.siaddr !== '0.0.0.0' ? lease.siaddr : s.serverIp;
    await run('tftp', async () => {
      const r = await edk2Read({
        localAddress: plan.ip,
        server: tftpServer,
        file: s.tftpFile,
        blksize: 1468,
        windowsize: 4,
        timeoutMs: s.tftpTimeoutMs,
        retries: s.tftpRetries,
        deadlineMs: s.tftpDeadlineMs,
      });
      if (r.bytes !== s.tftp.size || r.sha256 !== s.tftp.sha256)
        throw new Error(`${s.tftpFile}: ${r.bytes} bytes, sha256 ${r.sha256.slice(0, 12)}…, expected ${s.tftp.size}`);
      if (r.probedSize !== s.tftp.size) throw new Error(`tsize ${r.probedSize}, expected ${s.tftp.size}`);
      return { value: r, resends: r.resends };
    });
    const ipxeLease = await run('ipxeDhcp', async () => {
      const r = await mux.dora(plan.mac, IPXE, s.ipxeDhcpScheduleMs);
      if (!/^https?:\/\/.*\/boot\.ipxe$/.test(r.bootFile))
        throw new Error(`iPXE boot file ${JSON.stringify(r.bootFile)}`);
      return { value: r, resends: r.resends };
    });
    const images = await run('scripts', async () => {
      const get = async (what: string, url: string) =>
        timed(what, await http.get(url, { keepText: true, idleTimeoutMs: s.httpIdleTimeoutMs }));
      const boot = await withRetries(s.httpRetries, s.httpRetryDelayMs, () => get('boot.ipxe', ipxeLease.bootFile));
      const hostUrl = hostScriptUrl(boot.value.text ?? '', plan.mac);
      const script = await withRetries(s.httpRetries, s.httpRetryDelayMs, () => get('host script', hostUrl));
      return { value: imageUrls(script.value.text ?? ''), resends: boot.retries + script.retries };
    });
    await run('images', async () => {
      // The inspector script: `kernel … || goto retry`, `initrd … || goto retry`, retry = sleep 5
      // and start again from the kernel.
      const r = await withRetries(s.httpRetries, s.httpRetryDelayMs, async () => {
        const k = timed(
          'kernel',
          await http.get(images.kernel, { hash: s.hashImages, idleTimeoutMs: s.httpIdleTimeoutMs }),
        );
        imageBytes += k.bytes;
        if (k.bytes !== s.kernel.size || (k.sha256 !== undefined && k.sha256 !== s.kernel.sha256))
          throw new StormHttpError(
            'STORM_HTTP_SHORT',
            `kernel: ${k.bytes} bytes, checksum ${k.sha256 === undefined ? 'not checked' : k.sha256 === s.kernel.sha256 ? 'ok' : 'wrong'}`,
          );
        const i = timed(
          'initramfs',
          await http.get(images.initrd, { hash: s.hashImages, idleTimeoutMs: s.httpIdleTimeoutMs }),
        );
        imageBytes += i.bytes;
        if (i.bytes !== s.initramfs.size || (i.sha256 !== undefined && i.sha256 !== s.initramfs.sha256))
          throw new StormHttpError(
            'STORM_HTTP_SHORT',
            `initramfs: ${i.bytes} bytes, checksum ${i.sha256 === undefined ? 'not checked' : i.sha256 === s.initramfs.sha256 ? 'ok' : 'wrong'}`,
          );
      });
      return { value: undefined, resends: r.retries };
    });
    return { i: plan.i, mac: plan.mac, ok: true, startMs: started, totalMs: now() - started, phases, imageBytes };
  } catch (err) {
    const pe = err instanceof PhaseError ? err : undefined;
    if (pe !== undefined) phases[pe.phase] = { startMs: NaN, ms: NaN, resends: pe.resends };
    const cause = pe?.cause ?? (err as Error);
    const code =
      cause instanceof StormDhcpError || cause instanceof StormTftpError || cause instanceof StormHttpError
        ? `${cause.code}: `
        : '';
    return {
      i: plan.i,
      mac: plan.mac,
      ok: false,
      startMs: started,
      phases,
      imageBytes,
      ...(pe === undefined ? {} : { failedPhase: pe.phase }),
      error: `${code}${cause.message}`.slice(0, 300),
    };
  } finally {
    http.close();
  }
}
