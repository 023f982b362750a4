// Starting and stopping the real services tests run against. Each service runs as a child process
// on a free loopback port and is stopped by its own pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** This test file's temporary directories, removed after its last hook (test/harness/temp-cleanup.ts). */
const tempDirs: string[] = [];

export async function removeTempDirs(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `ecr-backup-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

export interface RunningService {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Spawns `command`, logging to a file in `logDir`, and waits until `ready()` resolves true. */
export async function startService(options: {
  name: string;
  command: string;
  args: string[];
  logDir: string;
  url: string;
  ready: () => Promise<boolean>;
  timeoutMs?: number;
  /** Removed with everything in it once the process has exited. */
  removeOnStop?: string;
}): Promise<RunningService> {
  const log = await open(join(options.logDir, `${options.name}.log`), 'a');
  const child: ChildProcess = spawn(options.command, options.args, { stdio: ['ignore', log.fd, log.fd], detached: false });
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!(await options.ready().catch(() => false))) {
    if (exited) throw new Error(`${options.name} ${exited}; see ${join(options.logDir, `${options.name}.log`)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not become ready at ${options.url}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: options.url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
      await log.close();
      if (options.removeOnStop) await rm(options.removeOnStop, { recursive: true, force: true });
    },
  };
}
