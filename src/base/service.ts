/**
 * Every long-running part of metalboot (DHCP, TFTP, HTTP, callback listener, source watchers)
 * is a Service: main.ts starts them in order, and closes them in reverse on SIGTERM or when
 * one fails to start.
 */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Stops accepting work and lets in-flight work finish within the service's own bound. */
  close(): Promise<void>;
}
