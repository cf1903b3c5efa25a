/**
 * Rewrites Ironic's per-node iPXE config (pxelinux.cfg/<mac-hyphen>, from ipxe_config.template)
 * so that a host on the provisioning network needs nothing but metalboot: every Ironic HTTP URL
 * becomes the image proxy URL, every Ironic API URL and every ipa-api-url the API proxy URL,
 * and the installer's extra kernel parameters are appended to each `kernel` line. Pure.
 */
export interface IronicRewrite {
  readonly ironicHttpUrl: string | undefined;
  readonly ironicApiUrl: string | undefined;
  /** Our image proxy base URL (the HTTP advertise URL). */
  readonly httpUrl: string;
  readonly apiUrl: string;
  readonly extraParams: readonly string[];
}

function replaceAllLiteral(text: string, from: string, to: string): string {
  return from === '' ? text : text.split(from).join(to);
}

export function rewriteIronicConfig(script: string, r: IronicRewrite): string {
  let out = script;
  if (r.ironicHttpUrl !== undefined) out = replaceAllLiteral(out, r.ironicHttpUrl, r.httpUrl);
  if (r.ironicApiUrl !== undefined) out = replaceAllLiteral(out, r.ironicApiUrl, r.apiUrl);
  out = out.replace(/(^|\s)ipa-api-url=\S+/g, (_m, lead: string) => `${lead}ipa-api-url=${r.apiUrl}`);
  if (r.extraParams.length > 0) {
    const extra = r.extraParams.join(' ');
    out = out.replace(
      /^(\s*kernel\s[^\n]*?)(\s+\|\|[^\n]*)?$/gm,
      (_m, cmd: string, tail: string | undefined) => `${cmd} ${extra}${tail ?? ''}`,
    );
  }
  return out;
}
