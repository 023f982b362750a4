// Where registry credentials come from. A provider is asked each time a Basic header or a token is
// needed, so providers whose secrets expire (ECR's 12-hour tokens) can refresh behind it.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}

export interface CredentialsProvider {
  /** Credentials for the registry, or undefined to go anonymous. */
  get(): Promise<Credentials | undefined>;
}

export function staticCredentials(credentials: Credentials): CredentialsProvider {
  return { get: async () => credentials };
}

/** The auth files podman/skopeo and docker use, in the order containers tools consult them. */
export function authFilePaths(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string[] {
  return [
    ...(env.REGISTRY_AUTH_FILE ? [env.REGISTRY_AUTH_FILE] : []),
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')] : []),
    join(env.DOCKER_CONFIG ?? join(home, '.docker'), 'config.json'),
  ];
}

/**
 * Credentials for `host` (`host[:port]`) from the first auth file that has an `auths` entry for it
 * with an inline base64 `auth` (credential helpers and identity tokens are not supported). Keys
 * may be written as a bare host or as a URL (`https://host/v1/`). Files are read once, lazily.
 */
export function authFileCredentials(host: string, paths: string[] = authFilePaths()): CredentialsProvider {
  let found: Promise<Credentials | undefined> | undefined;
  return { get: () => (found ??= lookUp(host, paths)) };
}

async function lookUp(host: string, paths: string[]): Promise<Credentials | undefined> {
  const wanted = aliases(host);
  for (const path of paths) {
    let auths: Record<string, { auth?: unknown }> | undefined;
    try {
      auths = (JSON.parse(await readFile(path, 'utf8')) as { auths?: Record<string, { auth?: unknown }> }).auths;
    } catch {
      continue; // missing or unreadable files are skipped, as docker and podman do
    }
    for (const [key, entry] of Object.entries(auths ?? {})) {
      if (!wanted.has(keyHost(key)) || typeof entry?.auth !== 'string') continue;
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}

function keyHost(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//, '')
    .split('/')[0]!
    .toLowerCase();
}

/** Docker Hub is stored under its legacy index name. */
function aliases(host: string): Set<string> {
  const lower = host.toLowerCase();
  const hub = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];
  return new Set(hub.includes(lower) ? hub : [lower]);
}
