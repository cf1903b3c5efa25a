/**
 * The client side of a streamed response: a client that takes no bytes for a while is cut.
 *
 * A body piped to a response stops flowing when the client stops reading (backpressure), and
 * then holds whatever feeds it: for a relay, an upstream connection, on which undici's
 * bodyTimeout does not run while the body is paused; for a cache read, a file descriptor and its
 * buffers. A client that never reads would hold them forever. So: when the response has waited
 * for `drain` and the body has sent nothing for `idleMs`, both are destroyed. A body that is
 * silent while the response could take more is waiting for its source (the upstream, whose
 * bodyTimeout covers that, or a fill), not for the client, and is left alone.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * Watches `body` piped into `response` until the response closes; calls `onStall` and destroys
 * both when the client took nothing for `idleMs`. `now` is a monotonic clock in milliseconds.
 */
export function cutStalledClient(
  response: ServerResponse,
  body: Readable,
  idleMs: number,
  onStall: () => void,
  now: () => number = () => performance.now(),
): void {
  let last = now();
  const onData = (): void => {
    last = now();
  };
  const check = (): void => {
    if (response.destroyed || response.writableFinished) {
      stop();
      return;
    }
    const quiet = now() - last;
    if (quiet >= idleMs && response.writableNeedDrain) {
      stop();
      onStall();
      body.destroy();
      response.destroy();
      return;
    }
    timer = setTimeout(check, Math.max(1, idleMs - (quiet >= idleMs ? 0 : quiet)));
    timer.unref();
  };
  const stop = (): void => {
    clearTimeout(timer);
    body.off('data', onData);
    response.off('close', stop);
  };
  if (response.destroyed || response.writableFinished) return;
  let timer = setTimeout(check, idleMs);
  timer.unref();
  body.on('data', onData);
  response.once('close', stop);
}
