// Measuring child processes: wall time, peak RSS (GNU time's %M, the kernel's ru_maxrss of the
// process), the peak size of directories while they run (temp space), and any file a process holds
// open for writing outside the places it is allowed to write (seen by polling /proc/<pid>/fd).
import { spawn } from 'node:child_process';
import type { Dirent } from 'node:fs';
import { readdir, readFile, readlink, lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

/** Total apparent size of the regular files under `dir`, skipping entries `skip` names (0 if absent). */
export async function treeBytes(dir: string, skip: (path: string) => boolean = () => false): Promise<number> {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (skip(path)) continue;
    if (entry.isDirectory()) total += await treeBytes(path, skip);
    else if (entry.isFile())
      total += await lstat(path).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}

/** Every descendant of `pid` (children listed under each of its threads), depth first. */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tasks) {
    const text = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const child of text.split(/\s+/).filter(Boolean).map(Number)) out.push(child, ...(await descendants(child)));
  }
  return out;
}

/** Paths of regular files `pid` has open for writing (O_WRONLY or O_RDWR). */
async function writableFiles(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const paths: string[] = [];
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (!target.startsWith('/') || target.startsWith('/dev/') || target.startsWith('/proc/')) continue;
    const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    const flags = /flags:\s*([0-7]+)/.exec(info)?.[1];
    if (flags !== undefined && (parseInt(flags, 8) & 3) !== 0) paths.push(target.replace(/ \(deleted\)$/, ''));
  }
  return paths;
}

export interface SamplerOptions {
  /** Directories whose total size is sampled; the peak of the sum is reported. */
  dirs: string[];
  /** Left out of the directory sizes (e.g. tsx's compile cache inside a TMPDIR). */
  skip?: (path: string) => boolean;
  /** Writes under these roots are expected; any other file open for writing is reported. */
  allowedWriteRoots?: string[];
  intervalMs?: number;
}

/**
 * Samples directory sizes and open-for-write files of registered processes (and their descendants)
 * every `intervalMs` until stopped.
 */
export class Sampler {
  peakDirBytes = 0;
  readonly unexpectedWrites = new Set<string>();
  private readonly pids = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly options: SamplerOptions) {}

  start(): this {
    this.timer = setInterval(() => void this.sample(), this.options.intervalMs ?? 50);
    return this;
  }

  watch(pid: number): void {
    this.pids.add(pid);
  }

  unwatch(pid: number): void {
    this.pids.delete(pid);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
    await this.sample();
  }

  /** Includes a size known exactly by other means (e.g. a finished file's stat) in the peak. */
  observe(bytes: number): void {
    this.peakDirBytes = Math.max(this.peakDirBytes, bytes);
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      let total = 0;
      for (const dir of this.options.dirs) total += await treeBytes(dir, this.options.skip);
      this.observe(total);
      if (this.options.allowedWriteRoots) {
        // Registered pids are GNU time processes (which write the RSS file): only their descendants count.
        for (const root of [...this.pids]) {
          for (const pid of await descendants(root)) {
            for (const path of await writableFiles(pid)) {
              if (
                !this.options.allowedWriteRoots.some(
                  (allowed) => path === allowed || path.startsWith(allowed.endsWith('/') ? allowed : `${allowed}/`),
                )
              ) {
                this.unexpectedWrites.add(path);
              }
            }
          }
        }
      }
    } finally {
      this.busy = false;
    }
  }
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Epoch ms when the process was spawned and when it had exited (stdio closed). */
  spawnedAt: number;
  exitedAt: number;
  /** Peak resident set size of the command in bytes (GNU time %M; for a tree, the largest process). */
  maxRssBytes: number;
  /** CPU time (user + system) of the command and its waited-for descendants (GNU time %U + %S). */
  cpuMs: number;
}

class CommandError extends Error {
  override name = 'CommandError';
}

/**
 * Runs `command args` under GNU time, registering it with `sampler` while it runs. Rejects on a
 * non-zero exit unless `allowFailure`.
 */
export async function runMeasured(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; sampler?: Sampler; rssFile: string; allowFailure?: boolean; timeoutMs?: number },
): Promise<RunResult> {
  await rm(options.rssFile, { force: true });
  const spawnedAt = Date.now();
  const started = performance.now();
  const child = spawn(GNU_TIME, ['-f', '%M %U %S', '-o', options.rssFile, command, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) options.sampler?.watch(child.pid);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => stdout.push(c));
  child.stderr.on('data', (c: Buffer) => stderr.push(c));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 900_000);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : -1)));
  });
  const wallMs = performance.now() - started;
  const exitedAt = Date.now();
  clearTimeout(timer);
  if (child.pid !== undefined) options.sampler?.unwatch(child.pid);
  const rssText = await readFile(options.rssFile, 'utf8').catch(() => '');
  // GNU time writes "Command exited with non-zero status N" before the format line on failure.
  const [rssKiB, user, system] = (rssText.trim().split('\n').pop() ?? '').split(' ').map(Number);
  const result: RunResult = {
    exitCode,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
    wallMs,
    spawnedAt,
    exitedAt,
    maxRssBytes: Number.isFinite(rssKiB) ? rssKiB! * 1024 : 0,
    cpuMs: Number.isFinite(user) && Number.isFinite(system) ? (user! + system!) * 1000 : 0,
  };
  if (exitCode !== 0 && !options.allowFailure) {
    throw new CommandError(
      `${command} ${args.join(' ')} exited ${exitCode}\nstderr: ${result.stderr.slice(-4000)}\nstdout: ${result.stdout.slice(-2000)}`,
    );
  }
  return result;
}
