/**
 * The TFTP wing: the files (iPXE binaries, the signed Secure Boot files; also served over HTTP),
 * the files made per request for GRUB (its configurations, images through the image proxy), and
 * the TFTP server.
 */
import type { Config } from '../config/load.js';
import { IpxeFiles } from '../boot/ipxe-files.js';
import { BootFiles } from '../boot/boot-files-source.js';
import { secureBootServedFiles } from '../boot/secure-boot.js';
import { GrubTemplates, type GrubConfigOptions } from '../boot/grub-configs.js';
import { madeFiles } from '../boot/made-files.js';
import { fetchBounded, fetchConfigText } from '../boot/http-fetch.js';
import { macHexHyp } from '../net/mac.js';
import { TftpServer } from '../tftp/tftp-server.js';
import { Metrics as TftpMetrics } from '../tftp/tftp-metrics.js';
import type { BootMilestones } from '../kube/boot-milestones.js';
import type { HostIndex } from '../leases/host-index.js';
import type { Wiring } from './deps.js';

export interface TftpWing {
  readonly files: BootFiles;
  readonly server: TftpServer | undefined;
  /** TFTP over IPv6 (tftp.listen6), a second server on the same files and limits. */
  readonly server6: TftpServer | undefined;
  /** What GRUB on the Secure Boot chain is told (also served over HTTP). */
  readonly grub: GrubConfigOptions;
}

const IRONIC_CONFIG_MAX_BYTES = 256 * 1024;
/**
 * Images fetched for TFTP clients (the Secure Boot chain's GRUB) are held in memory whole, all
 * of them within this budget: an IPA kernel and a ~500 MiB initramfs fit with room for a second
 * pair, and the main process stays far from its memory limit. A larger image is refused.
 */
const TFTP_IMAGE_BUDGET_BYTES = 1.5 * 2 ** 30;

export function tftpWing(config: Config, w: Wiring, milestones: BootMilestones, index: HostIndex): TftpWing {
  const t = config.tftp;
  const { logger, registry } = w;
  const ipxe = new IpxeFiles({ root: t.root, aliases: t.aliases, extraRoots: t.extraRoots, logger });
  const files = new BootFiles(ipxe, secureBootServedFiles(config.secureBoot.files), logger);
  const ironicHttpUrl = config.proxy.ironicHttpUrl;
  const grub: GrubConfigOptions = {
    templates: new GrubTemplates(config.http.templatesDir),
    index,
    baseUrl: config.http.advertiseUrl,
    apiUrl: config.proxy.apiAdvertiseUrl,
    annotationPrefix: config.sources.annotationPrefix,
    inspector: config.inspector,
    installer: config.installer,
    ironicHttpUrl,
    ironicApiUrl: config.proxy.ironicApiUrl,
    fetchIronic: async (mac) =>
      ironicHttpUrl === undefined
        ? { kind: 'none' }
        : fetchConfigText(`${ironicHttpUrl}/grub.cfg-01-${macHexHyp(mac)}`, 10_000, IRONIC_CONFIG_MAX_BYTES),
  };
  const log = logger.child({ component: 'tftp' });
  const m = milestones;
  const dynamic = madeFiles({
    grub,
    imageBaseUrl: config.http.imageAdvertiseUrl,
    fetchImage: (url) => fetchBounded(url, 60_000, TFTP_IMAGE_BUDGET_BYTES),
    keepBytes: TFTP_IMAGE_BUDGET_BYTES,
    onGrubConfig: (peer, file, c) => {
      log.info({ peer, file, mac: c.mac, host: c.host?.origin.name, config: c.kind }, 'grub config served');
      m.http({ host: c.host, mac: c.mac, what: 'script', name: c.kind, peer });
    },
    onImageError: (peer, file, reason) => log.warn({ peer, file, reason }, 'image for TFTP unavailable'),
  });
  // One set of metrics for both servers (IPv4, IPv6): they count together.
  const metrics = new TftpMetrics(registry);
  const serve = (listen: NonNullable<typeof t.listen>) =>
    new TftpServer({
      listen,
      singlePort: t.singlePort,
      files,
      dynamic,
      maxBlksize: t.maxBlksize,
      maxWindowsize: t.maxWindowsize,
      maxTransfers: t.maxTransfers,
      maxPerClient: t.maxPerClient,
      timeoutMs: t.timeoutMs,
      retries: t.retries,
      maxTransferMs: t.maxTransferMs,
      logger,
      registry,
      metrics,
      onStart: (e) => m.tftpStart(e),
      onEnd: (e) => m.tftpEnd(e),
    });
  return {
    files,
    server: t.listen === undefined ? undefined : serve(t.listen),
    server6: t.listen6 === undefined ? undefined : serve(t.listen6),
    grub,
  };
}
