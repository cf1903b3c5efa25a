/** The TFTP wing: the iPXE binaries (also served over HTTP) and the TFTP server. */
import type { Config } from '../config/load.js';
import { IpxeFiles } from '../boot/ipxe-files.js';
import { TftpServer } from '../tftp/tftp-server.js';
import type { BootMilestones } from '../kube/boot-milestones.js';
import type { Wiring } from './deps.js';

export interface TftpWing {
  readonly files: IpxeFiles;
  readonly server: TftpServer | undefined;
}

export function tftpWing(config: Config, w: Wiring, milestones: BootMilestones): TftpWing {
  const t = config.tftp;
  const { logger, registry } = w;
  const files = new IpxeFiles({ root: t.root, aliases: t.aliases, extraRoots: t.extraRoots, logger });
  if (t.listen === undefined) return { files, server: undefined };
  const m = milestones;
  const server = new TftpServer({
    listen: t.listen,
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
  return { files, server };
}
