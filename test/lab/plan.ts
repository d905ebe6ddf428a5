// The lab's address plan: pure, so it can be checked without touching the machine.
// Backends sit low in the subnet, the web hosts in an aligned block of their own (so that
// block is a CIDR Postgres can be told about), and the outsider below that block.
import ipaddr from 'ipaddr.js';

export type Role = 'primary' | 'standby' | 'web' | 'outsider';

export interface PlannedHost {
  name: string;
  role: Role;
  address: string;
  /** Root-namespace end of this host's veth pair (max 15 characters, a kernel limit). */
  veth: string;
  /** Network namespace name. */
  netns: string;
}

export interface LabPlan {
  name: string;
  subnet: string; // normalised network/prefix
  prefix: number;
  bridge: string;
  gateway: string; // the bridge's own address
  webSubnet: string;
  hosts: PlannedHost[];
}

export interface PlanInput {
  name: string;
  subnet: string;
  bridge?: string;
  webHosts: number;
  standby: boolean;
  /** No web hosts of their own is fine when the primary's machine runs the web app (webOnPrimary). */
  allowNoWebHosts?: boolean;
}

export const MAX_WEB_HOSTS = 200;
const IFNAMSIZ = 15;

export function validateLabName(name: string): void {
  // Interface names are `${name}br0` and `${name}v${n}`: 10 characters leaves room for both.
  if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) {
    throw new Error(`lab: name ${JSON.stringify(name)} must be 1-10 lowercase letters/digits, starting with a letter`);
  }
}

const toInt = (a: string): number =>
  ipaddr.IPv4.parse(a).octets.reduce((n, o) => n * 256 + o, 0);
const toAddr = (n: number): string =>
  [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** Smallest aligned block that holds `count` hosts plus its network and broadcast addresses, at least a /26. */
export function webBlockSize(count: number): number {
  let size = 64;
  while (size < count + 2) size *= 2;
  return size;
}

export function planLab(input: PlanInput): LabPlan {
  validateLabName(input.name);
  const bridge = input.bridge ?? `${input.name}br0`;
  if (bridge.length > IFNAMSIZ || !/^[A-Za-z0-9_.-]+$/.test(bridge)) {
    throw new Error(`lab: bridge name ${JSON.stringify(bridge)} must be at most ${IFNAMSIZ} characters of [A-Za-z0-9_.-]`);
  }
  const minWeb = input.allowNoWebHosts ? 0 : 1;
  if (!Number.isInteger(input.webHosts) || input.webHosts < minWeb || input.webHosts > MAX_WEB_HOSTS) {
    throw new Error(`lab: webHosts must be an integer from ${minWeb} to ${MAX_WEB_HOSTS}, not ${input.webHosts}`);
  }
  let net: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    net = ipaddr.parseCIDR(input.subnet);
  } catch {
    throw new Error(`lab: subnet ${JSON.stringify(input.subnet)} is not a CIDR such as 10.231.0.0/24`);
  }
  if (net[0].kind() !== 'ipv4') throw new Error('lab: subnet must be IPv4');
  const prefix = net[1];
  const size = 2 ** (32 - prefix);
  const base = toInt(ipaddr.IPv4.networkAddressFromCIDR(input.subnet).toString());
  const block = webBlockSize(input.webHosts);
  // The web block is the second aligned block of its size: the first holds gateway, backends, outsider.
  if (size < 2 * block) {
    const need = 32 - Math.log2(2 * block);
    throw new Error(
      `lab: ${input.webHosts} web hosts need a /${32 - Math.log2(block)} block of their own, so the subnet must be /${need} or larger (got ${input.subnet})`,
    );
  }
  const webBase = base + block;
  const at = (offset: number): string => toAddr(base + offset);
  const hosts: Omit<PlannedHost, 'veth' | 'netns'>[] = [
    { name: 'pg-primary', role: 'primary', address: at(10) },
    ...(input.standby ? [{ name: 'pg-standby', role: 'standby' as const, address: at(11) }] : []),
    ...Array.from({ length: input.webHosts }, (_, i) => ({
      name: `web-${i + 1}`,
      role: 'web' as const,
      address: toAddr(webBase + 1 + i),
    })),
    { name: 'outsider', role: 'outsider', address: at(20) },
  ];
  return {
    name: input.name,
    subnet: `${toAddr(base)}/${prefix}`,
    prefix,
    bridge,
    gateway: at(1),
    webSubnet: `${toAddr(webBase)}/${32 - Math.log2(block)}`,
    hosts: hosts.map((h, i) => ({ ...h, veth: `${input.name}v${i}`, netns: `${input.name}-${h.name}` })),
  };
}
