// The machine and tool versions a bench run reports, so its figures can be compared with another run's.
import { execFile } from 'node:child_process';
import { cpus, freemem, release, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { AWS_CLI } from './baseline.ts';
import { mib, secs } from './report.ts';

const exec = promisify(execFile);

export async function version(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec(command, args, { timeout: 20_000 });
    return (stdout || stderr).trim().split('\n')[0]!;
  } catch {
    return 'unavailable';
  }
}

export async function machineFacts(run: { startedAt: Date; quick: boolean; needS3: boolean; load: number[] }): Promise<[string, string][]> {
  const { startedAt, needS3, load } = run;
  return [
    ['Date', startedAt.toISOString()],
    ['Mode', run.quick ? 'quick (`--quick`: reduced sizes)' : 'full'],
    ['CPU', `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'} (nproc ${(await version('nproc', [])) || '?'})`],
    ['Memory', `${mib(totalmem())} total, ${mib(freemem())} free at the end`],
    ['OS', `Linux ${release()}`],
    ['Node', process.version],
    ['Registry', await version('docker-registry', ['--version'])],
    ['skopeo', await version('skopeo', ['--version'])],
    ['aws CLI', await version(AWS_CLI, ['--version'])],
    [
      'moto',
      needS3
        ? await version(process.env.MOTO_PYTHON ?? '/root/.pyenv/versions/3.11.7/bin/python', [
            '-c',
            'import moto; print(moto.__version__)',
          ])
        : 'not used',
    ],
    ['Load average (1 min) start / end', load.map((l) => l.toFixed(2)).join(' / ')],
    ['Total bench time', secs(Date.now() - startedAt.getTime())],
  ];
}
