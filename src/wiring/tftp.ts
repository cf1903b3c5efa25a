/** The TFTP wing: the iPXE binaries (also served over HTTP) and the TFTP server. */
import type { Config } from '../config/load.js';
import { IpxeFiles } from '../boot/ipxe-files.js';
import { TftpServer } from '../tftp/tftp-server.js';
import type { BootMilestones } from '../kube/boot-milestones.js';
import type { Wiring } from './deps.js';

export interface TftpWing {
  readonly files: IpxeFiles;
  readonly server: TftpServer | undefined;
  /** TFTP over IPv6 (tftp.listen6), a second server on the same files and limits. */
  readonly server6: TftpServer | undefined;
}

export function tftpWing(config: Config, w: Wiring, milestones: BootMilestones): TftpWing {
  const t = config.tftp;
  const { logger, registry } = w;
  const files = new IpxeFiles({ root: t.root, aliases: t.aliases, extraRoots: t.extraRoots, logger });
  const m = milestones;
  const serve = (listen: NonNullable<typeof t.listen>) =>
    new TftpServer({
      listen,
      singlePort: t.singlePort,
      files,
      maxBlksize: t.maxBlksize,
      maxWindowsize: t.maxWindowsize,
      maxTransfers: t.maxTransfers,
      maxPerClient: t.maxPerClient,
      timeoutMs: t.timeoutMs,
      retries: t.retries,
      maxTransferMs: t.maxTransferMs,
      logger,
      registry,
      onStart: (e) => m.tftpStart(e),
      onEnd: (e) => m.tftpEnd(e),
    });
  return {
    files,
    server: t.listen === undefined ? undefined : serve(t.listen),
    server6: t.listen6 === undefined ? undefined : serve(t.listen6),
  };
}
