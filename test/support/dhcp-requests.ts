/**
 * The DHCP request builders live in lab/dhcp-requests.ts (shared with bench/). This re-export
 * keeps the unit tests under src/ that import them from here working until they import lab/.
 */
export * from '../../lab/dhcp-requests.js';
