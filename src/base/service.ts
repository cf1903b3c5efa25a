/**
 * Every long-running part of metalboot (DHCP, TFTP, HTTP, callback listener, source watchers)
 * is a Service: the composition root starts them in order, and closes them in reverse on
 * SIGTERM or when one fails to start. A service that can be not ready says so itself, under
 * the name /readyz shows.
 */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Stops accepting work and lets in-flight work finish within the service's own bound. */
  close(): Promise<void>;
  /** What /readyz reports of this service; none: it is ready once started. */
  readonly readiness?: readonly ReadinessCheck[];
}

export interface Readiness {
  readonly ok: boolean;
  readonly detail: string;
}

/** One readiness condition: a service's sockets bound, a source's first load done… */
export interface ReadinessCheck {
  readonly name: string;
  check(): Readiness;
}

/** A listener's readiness: ok while `address()` answers (it throws when not listening). */
export function listening(name: string, s: { address(): unknown }): ReadinessCheck {
  return {
    name,
    check: () => {
      try {
        s.address();
        return { ok: true, detail: 'listening' };
      } catch {
        return { ok: false, detail: 'not listening' };
      }
    },
  };
}

/** Starts services in order; if one fails, closes those already started (reverse order) and rethrows. */
export async function startAll(services: readonly Service[]): Promise<void> {
  const started: Service[] = [];
  try {
    for (const s of services) {
      await s.start();
      started.push(s);
    }
  } catch (err) {
    await closeAll(started);
    throw err;
  }
}

export async function closeAll(services: readonly Service[]): Promise<void> {
  for (const s of [...services].reverse()) {
    try {
      await s.close();
    } catch {
      // Closing is best effort: one stuck service must not keep the others open.
    }
  }
}
