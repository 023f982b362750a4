// skopeo, run through execa, for the docker-archive format. Every run gets a private workspace: a
// temporary directory (mode 0700) that holds skopeo's own staging (`--tmpdir`; skopeo ignores
// TMPDIR and would use /var/tmp), the registry auth file (mode 0600) and, on restore, the tar. It is
// removed when the run ends, whatever happened. Credentials never appear on a command line or in a
// log: skopeo reads them from the auth file.
import { redact } from '../redact.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, ExecaError, type ResultPromise } from 'execa';
import type { ImageEndpoint, RegistryAccess } from '../model/endpoint.ts';
import { ArchiveError } from './settings.ts';

/**
 * The skopeo view of a registry endpoint (any OCI registry, or ECR's registry API), from the
 * endpoint's registryAccess capability. Credentials are asked for on every call, so ECR tokens are
 * always fresh.
 */
export async function skopeoRegistry(endpoint: ImageEndpoint): Promise<RegistryAccess> {
  if (!endpoint.registryAccess) {
    throw new ArchiveError(
      `${endpoint.description} is not a registry: the docker-archive format copies between a registry and a backup store`,
    );
  }
  return endpoint.registryAccess();
}

export class Workspace {
  private constructor(readonly dir: string) {}

  /** A new private directory under `root` (default: the OS temp directory). */
  static async create(root: string = tmpdir()): Promise<Workspace> {
    return new Workspace(await mkdtemp(join(root, 'ecr-backup-archive-')));
  }

  /** `--src-*` or `--dest-*` options for a registry: TLS, and an auth file or anonymous access. */
  async registryOptions(side: 'src' | 'dest', registry: RegistryAccess): Promise<string[]> {
    const options = [`--${side}-tls-verify=${registry.tlsVerify}`];
    if (!registry.credentials) return [...options, `--${side}-no-creds`];
    const file = join(this.dir, `${side}-auth.json`);
    const auth = Buffer.from(`${registry.credentials.username}:${registry.credentials.password}`, 'utf8').toString('base64');
    await writeFile(file, JSON.stringify({ auths: { [registry.host]: { auth } } }), { mode: 0o600, flag: 'wx' });
    return [...options, `--${side}-authfile`, file];
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * `skopeo copy` with the workspace as its staging directory. `--insecure-policy`: like the copy
 * engine, the archive path copies what the registry serves and does not enforce a signature policy
 * (and so works on machines without /etc/containers/policy.json). With `stdout`, the caller reads
 * the output through `subprocess.readable()`, which errors instead of ending when skopeo fails.
 */
export function skopeoCopy(workspace: Workspace, args: string[], options: { stdout?: boolean } = {}) {
  const skopeo = ['--tmpdir', workspace.dir, '--insecure-policy', 'copy', '-q', '--retry-times', '3', ...args];
  // node gives a child a socket, not a pipe, as stdout, and skopeo cannot open /dev/stdout on a
  // socket (ENXIO). So skopeo writes into a real pipe to `cat`; pipefail keeps skopeo's exit status.
  // Its own process group lets `stop` end skopeo and cat together.
  const [file, argv] = options.stdout ? ['bash', ['-o', 'pipefail', '-c', 'skopeo "$@" | cat', 'skopeo', ...skopeo]] : ['skopeo', skopeo];
  const subprocess = execa(file, argv as string[], {
    stdin: 'ignore',
    stdout: options.stdout ? 'pipe' : 'ignore',
    stderr: 'pipe',
    buffer: { stdout: false },
    maxBuffer: { stderr: 1024 * 1024 },
    detached: Boolean(options.stdout),
  });
  // Failures surface through the readable stream or through the caller's await; never unhandled.
  subprocess.catch(() => undefined);
  if (options.stdout && subprocess.pid !== undefined) groupLeaders.add(subprocess.pid);
  return subprocess;
}

/** Stops a subprocess that is still running (on abort); harmless when it has exited. */
/** Pids of pipelines started in their own process group. */
const groupLeaders = new Set<number>();

export async function stop(
  subprocess: (Pick<ResultPromise, 'kill' | 'exitCode' | 'signalCode' | 'pid'> & Promise<unknown>) | undefined,
): Promise<void> {
  if (!subprocess) return;
  const pid = subprocess.pid;
  const leader = pid !== undefined && groupLeaders.delete(pid);
  if (subprocess.exitCode !== null || subprocess.signalCode !== null) return;
  if (leader) {
    try {
      process.kill(-pid, 'SIGTERM'); // the group of the skopeo | cat pipeline started above
    } catch {
      subprocess.kill();
    }
  } else {
    subprocess.kill();
  }
  await subprocess.catch(() => undefined);
}

/**
 * A readable message for a failed tool run: skopeo's own fatal message (`msg="..."`), else the last
 * lines of its stderr, redacted (skopeo echoes presigned layer URLs). execa's message is not used: it
 * repeats the whole command line.
 */
export function toolError(error: unknown, what: string): Error {
  if (!(error instanceof ExecaError)) return error instanceof Error ? error : new Error(String(error));
  const stderr = typeof error.stderr === 'string' ? error.stderr : '';
  const fatal = [...stderr.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].at(-1)?.[1]?.replace(/\\(.)/g, '$1');
  const detail =
    fatal ??
    (stderr.trim().split('\n').slice(-3).join(' ').trim() || (error.signal ? `killed by ${error.signal}` : `exit code ${error.exitCode}`));
  return new ArchiveError(`${what} failed: ${redact(detail)}`);
}
