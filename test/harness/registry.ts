// A real CNCF distribution registry (Debian's docker-registry) on a free loopback port, optionally
// protected by htpasswd Basic auth.
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

export async function startRegistry(options: { username?: string; password?: string } = {}): Promise<TestRegistry> {
  const dir = await tempDir('registry');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let auth = '';
  if (options.username && options.password) {
    const { stdout } = await execa('htpasswd', ['-Bbn', options.username, options.password]);
    await writeFile(join(dir, 'htpasswd'), stdout.trim() + '\n');
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
${auth}`;
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
