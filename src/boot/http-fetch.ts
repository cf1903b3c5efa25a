/**
 * The two HTTP fetches the boot wing makes, bounded by timeouts and sizes: Ironic's per-node
 * configuration (iPXE and GRUB), and an image for a TFTP client (GRUB on the Secure Boot chain
 * has no HTTP, so metalboot's TFTP server fetches the kernel and initramfs through the image
 * proxy). 404 is "none", not an error.
 */
import { request as undiciRequest } from 'undici';

export type Fetched =
  | { readonly kind: 'data'; readonly data: Buffer }
  | { readonly kind: 'none' }
  | { readonly kind: 'error'; readonly reason: string };

export async function fetchBounded(url: string, timeoutMs: number, maxBytes: number): Promise<Fetched> {
  try {
    const res = await undiciRequest(url, {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      maxRedirections: 0,
    } as Parameters<typeof undiciRequest>[1]);
    if (res.statusCode === 404) {
      await res.body.dump();
      return { kind: 'none' };
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { kind: 'error', reason: `HTTP ${res.statusCode}` };
    }
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        res.body.destroy();
        return { kind: 'error', reason: `larger than ${maxBytes} bytes` };
      }
      chunks.push(chunk as Buffer);
    }
    return { kind: 'data', data: Buffer.concat(chunks) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { kind: 'error', reason: e.code ?? e.message };
  }
}

/** A text file (Ironic's per-node config) as config / none / error. */
export async function fetchConfigText(
  url: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<{ kind: 'config'; text: string } | { kind: 'none' } | { kind: 'error'; reason: string }> {
  const r = await fetchBounded(url, timeoutMs, maxBytes);
  if (r.kind !== 'data') return r.kind === 'none' ? r : { kind: 'error', reason: r.reason };
  return { kind: 'config', text: r.data.toString('utf8') };
}
