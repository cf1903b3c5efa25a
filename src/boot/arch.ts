/**
 * Client system architecture types (DHCP option 93), from the IANA "Processor Architecture
 * Types" registry (RFC 4578 §2.1 and its updates, including the HTTP-boot codes of UEFI 2.5+).
 * Each code says which firmware family is asking and which iPXE binary family it can run.
 */
export type Firmware = 'bios' | 'uefi' | 'uboot' | 'other';
export type Cpu =
  | 'x86'
  | 'x86_64'
  | 'ia64'
  | 'ebc'
  | 'arm32'
  | 'arm64'
  | 'riscv32'
  | 'riscv64'
  | 'riscv128'
  | 'ppc'
  | 's390'
  | 'mips32'
  | 'mips64'
  | 'sunway32'
  | 'sunway64'
  | 'loongarch32'
  | 'loongarch64'
  | 'other';

export interface ArchInfo {
  readonly code: number;
  readonly name: string;
  readonly firmware: Firmware;
  readonly cpu: Cpu;
  /** True for the UEFI HTTP-boot codes: the client wants a URL, not a TFTP path. */
  readonly http: boolean;
}

const A = (code: number, name: string, firmware: Firmware, cpu: Cpu, http = false): ArchInfo => ({
  code,
  name,
  firmware,
  cpu,
  http,
});

export const ARCH_TABLE: readonly ArchInfo[] = [
  A(0, 'x86 BIOS', 'bios', 'x86'),
  A(1, 'NEC/PC98', 'other', 'other'),
  A(2, 'Itanium', 'uefi', 'ia64'),
  A(3, 'DEC Alpha', 'other', 'other'),
  A(4, 'Arc x86', 'other', 'other'),
  A(5, 'Intel Lean Client', 'other', 'other'),
  A(6, 'x86 UEFI', 'uefi', 'x86'),
  A(7, 'x64 UEFI', 'uefi', 'x86_64'),
  A(8, 'EFI Xscale', 'other', 'other'),
  // Code 9 is EFI Byte Code in the registry, but many x64 UEFI firmwares send it; dnsmasq and
  // Ironic treat it as x64 UEFI, and so do we.
  A(9, 'EBC (x64 UEFI in practice)', 'uefi', 'x86_64'),
  A(10, 'ARM 32-bit UEFI', 'uefi', 'arm32'),
  A(11, 'ARM 64-bit UEFI', 'uefi', 'arm64'),
  A(12, 'PowerPC Open Firmware', 'other', 'ppc'),
  A(13, 'PowerPC ePAPR', 'other', 'ppc'),
  A(14, 'POWER OPAL v3', 'other', 'ppc'),
  A(15, 'x86 UEFI HTTP', 'uefi', 'x86', true),
  A(16, 'x64 UEFI HTTP', 'uefi', 'x86_64', true),
  A(17, 'EBC UEFI HTTP', 'uefi', 'ebc', true),
  A(18, 'ARM 32-bit UEFI HTTP', 'uefi', 'arm32', true),
  A(19, 'ARM 64-bit UEFI HTTP', 'uefi', 'arm64', true),
  A(20, 'x86 BIOS HTTP', 'bios', 'x86', true),
  A(21, 'ARM 32-bit U-Boot', 'uboot', 'arm32'),
  A(22, 'ARM 64-bit U-Boot', 'uboot', 'arm64'),
  A(23, 'ARM 32-bit U-Boot HTTP', 'uboot', 'arm32', true),
  A(24, 'ARM 64-bit U-Boot HTTP', 'uboot', 'arm64', true),
  A(25, 'RISC-V 32-bit UEFI', 'uefi', 'riscv32'),
  A(26, 'RISC-V 32-bit UEFI HTTP', 'uefi', 'riscv32', true),
  A(27, 'RISC-V 64-bit UEFI', 'uefi', 'riscv64'),
  A(28, 'RISC-V 64-bit UEFI HTTP', 'uefi', 'riscv64', true),
  A(29, 'RISC-V 128-bit UEFI', 'uefi', 'riscv128'),
  A(30, 'RISC-V 128-bit UEFI HTTP', 'uefi', 'riscv128', true),
  A(31, 's390 Basic', 'other', 's390'),
  A(32, 's390 Extended', 'other', 's390'),
  A(33, 'MIPS 32-bit UEFI', 'uefi', 'mips32'),
  A(34, 'MIPS 64-bit UEFI', 'uefi', 'mips64'),
  A(35, 'Sunway 32-bit UEFI', 'uefi', 'sunway32'),
  A(36, 'Sunway 64-bit UEFI', 'uefi', 'sunway64'),
  A(37, 'LoongArch 32-bit UEFI', 'uefi', 'loongarch32'),
  A(38, 'LoongArch 32-bit UEFI HTTP', 'uefi', 'loongarch32', true),
  A(39, 'LoongArch 64-bit UEFI', 'uefi', 'loongarch64'),
  A(40, 'LoongArch 64-bit UEFI HTTP', 'uefi', 'loongarch64', true),
  A(41, 'ARM rpiboot', 'other', 'arm64'),
];

const BY_CODE = new Map(ARCH_TABLE.map((a) => [a.code, a]));

export function archInfo(code: number): ArchInfo | undefined {
  return BY_CODE.get(code);
}

/**
 * The key of the boot-file table an architecture uses: `bios`, `uefi-x86_64`, `uefi-arm64`, …
 * HTTP and TFTP variants of one family share a key: they run the same iPXE binary.
 */
export function bootFileKey(arch: ArchInfo): string {
  return arch.firmware === 'bios' ? 'bios' : `${arch.firmware}-${arch.cpu}`;
}
