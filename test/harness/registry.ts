// A real CNCF distribution registry (Debian's docker-registry) on a free loopback port, optionally
// protected by htpasswd Basic auth or by any other `auth` section (token-server.ts uses that).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort, startService, tempDir, type RunningService } from './process.ts';

export interface TestRegistry extends RunningService {
  /** `127.0.0.1:PORT`, the form skopeo's `docker://` references take. */
  host: string;
  dir: string;
  credentials?: { username: string; password: string };
}

export interface RegistryOptions {
  /** Protect the registry with htpasswd Basic auth for this user. */
  username?: string;
  password?: string;
  /** A complete top-level `auth:` YAML section for the config (instead of username/password). */
  auth?: string;
  /**
   * Accept manifests with foreign (non-distributable) layers that name http(s) `urls` (Windows base
   * layers); the CNCF registry refuses them ("invalid URL on layer") unless configured so.
   */
  allowForeignLayers?: boolean;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  if (options.auth !== undefined && (options.username || options.password))
    throw new Error('startRegistry: give either auth or username/password');
  const dir = await tempDir('registry');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let auth = options.auth ?? '';
  if (options.username && options.password) {
    const { stdout } = await execa('htpasswd', ['-Bbn', options.username, options.password]);
    await writeFile(join(dir, 'htpasswd'), `${stdout.trim()}\n`);
    auth = `auth:\n  htpasswd:\n    realm: ecr-backup-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
${options.allowForeignLayers ? 'validation:\n  manifests:\n    urls:\n      allow: ["^https?://"]\n' : ''}${auth}`;
  await writeFile(join(dir, 'config.yml'), config);
  const url = `http://${host}`;
  const service = await startService({
    name: 'registry',
    command: 'docker-registry',
    args: ['serve', join(dir, 'config.yml')],
    logDir: dir,
    removeOnStop: dir,
    url,
    ready: async () => {
      const res = await fetch(`${url}/v2/`);
      return res.status === 200 || res.status === 401;
    },
  });
  return {
    ...service,
    host,
    dir,
    credentials: options.username && options.password ? { username: options.username, password: options.password } : undefined,
  };
}
