/**
 * Kernel parameters that IPA silently ignores. Catching them at start-up turns "my host is stuck
 * in inspecting" into an error message with the fix.
 */
const IGNORED: Readonly<Record<string, string>> = {
  'ipa-inspector-collectors': 'ipa-inspection-collectors',
  'ipa-inspector-callback-url': 'ipa-inspection-callback-url',
  'ipa-inspector-dhcp-all-interfaces': 'ipa-inspection-dhcp-all-interfaces',
  'ipa-inspection-collector': 'ipa-inspection-collectors',
  ipa_inspection_collectors: 'ipa-inspection-collectors',
  'ipa-api-uri': 'ipa-api-url',
};

/** A sentence explaining why `param` would be ignored by IPA, or undefined if it is fine. */
export function findIgnoredKernelParam(param: string): string | undefined {
  const name = param.split('=')[0]!;
  const fix = IGNORED[name];
  return fix === undefined ? undefined : `is ignored by IPA: the parameter is spelled "${fix}"`;
}
