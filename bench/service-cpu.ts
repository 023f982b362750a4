// CPU time the registry and moto spent during a measured run (from /proc/<pid>/stat), so a figure can
// be read against the service cost on the same cores.
import { readFile } from 'node:fs/promises';
import type { ServiceCpu } from './report.ts';

/** The pids of the running services (undefined when not started). */
interface ServicePids {
  registry?: number;
  moto?: number;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime of a process in ms (0 when it cannot be read). */
async function processCpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND || 0;
}

export async function serviceCpu(pids: ServicePids): Promise<ServiceCpu> {
  return { registryMs: await processCpuMs(pids.registry), motoMs: await processCpuMs(pids.moto) };
}

export async function serviceCpuSince(pids: ServicePids, before: ServiceCpu): Promise<ServiceCpu> {
  const now = await serviceCpu(pids);
  return { registryMs: now.registryMs - before.registryMs, motoMs: now.motoMs - before.motoMs };
}
