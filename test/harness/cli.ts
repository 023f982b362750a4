// Runs the real `ecr-backup` CLI as a child process, the way a user does (minus the npm wrapper): the
// bundle the global setup built for this run (global-setup.ts), as `npx ecr-backup` runs it.
import { execa } from 'execa';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Starts the CLI (never rejects: the exit code is the result); for tests that kill it mid-run. */
export function startCli(args: string[], options: { env?: Record<string, string | undefined>; input?: string } = {}) {
  return execa('node', [inject('cliBundle'), ...args], {
    cwd: ROOT,
    env: { NODE_NO_WARNINGS: '1', ...options.env },
    input: options.input,
    reject: false,
    timeout: 300_000,
  });
}

export async function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string } = {},
): Promise<CliResult> {
  const result = await startCli(args, options);
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the CLI with --json and returns the parsed summary, failing loudly with stderr otherwise. */
export async function runCliJson<T = Record<string, unknown>>(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string } = {},
) {
  const result = await runCli([...args, '--json'], options);
  let json: T;
  try {
    json = JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `ecr-backup ${args.join(' ')} exited ${result.exitCode} without JSON.\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
  return { ...result, json };
}

/** Total bytes of the files under `dir` (0 when it does not exist). */
export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
