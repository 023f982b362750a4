// A docker-registry behind docker token auth (what Docker Hub, GHCR, Harbor and Quay speak): a tiny
// loopback token server signs RS256 JWTs with a throw-away self-signed certificate that the registry
// trusts as its root, and grants every requested action to one user. The registry itself is
// `startRegistry`'s, given a token `auth` section.
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort, tempDir, type RunningService } from './process.ts';
import { startRegistry } from './registry.ts';

export interface TokenRegistry extends RunningService {
  host: string;
  /** Every token request: the scopes asked for and whether the credentials were accepted. */
  tokenRequests: { scopes: string[]; user?: string }[];
  /** Issue this many tokens that grant nothing (the registry then answers 401), to test renewal. */
  denyNext: number;
}

const SERVICE = 'ecr-backup-test';
const ISSUER = 'ecr-backup-test-issuer';

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export async function startTokenRegistry(username: string, password: string): Promise<TokenRegistry> {
  const dir = await tempDir('token-auth');
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=ecr-backup-test-token',
  ]);
  const key = await readFile(join(dir, 'key.pem'), 'utf8');
  const certificate = new X509Certificate(await readFile(join(dir, 'cert.pem')));

  const sign = (access: unknown[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certificate.raw.toString('base64')] }));
    const claims = base64url(
      JSON.stringify({ iss: ISSUER, sub: username, aud: SERVICE, iat: now, nbf: now - 10, exp: now + 300, jti: randomUUID(), access }),
    );
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
    return `${header}.${claims}.${base64url(signature)}`;
  };

  const state = { tokenRequests: [] as TokenRegistry['tokenRequests'], denyNext: 0 };
  const tokenServer = createServer((req, res) => {
    const url = new URL(req.url!, 'http://token');
    const scopes = url.searchParams.getAll('scope');
    const presented = req.headers.authorization?.startsWith('Basic ')
      ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString('utf8')
      : undefined;
    if (presented !== undefined && presented !== `${username}:${password}`) {
      state.tokenRequests.push({ scopes });
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    state.tokenRequests.push({ scopes, user: presented && username });
    // Anonymous callers get a token that grants nothing, as a private registry would.
    const grant = presented !== undefined && state.denyNext-- <= 0;
    const access = grant
      ? scopes.map((scope) => {
          const [type, ...rest] = scope.split(':');
          const actions = rest.pop()!;
          return { type, name: rest.join(':'), actions: actions.split(',') };
        })
      : [];
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: sign(access), expires_in: 300, issued_at: new Date().toISOString() }));
  });
  const tokenPort = await freePort();
  await new Promise<void>((resolve) => tokenServer.listen(tokenPort, '127.0.0.1', resolve));

  const registry = await startRegistry({
    auth: `auth:
  token:
    realm: http://127.0.0.1:${tokenPort}/token
    service: ${SERVICE}
    issuer: ${ISSUER}
    rootcertbundle: ${join(dir, 'cert.pem')}
`,
  });
  return Object.assign(state, {
    url: registry.url,
    pid: registry.pid,
    host: registry.host,
    async stop() {
      tokenServer.closeAllConnections();
      await new Promise((resolve) => tokenServer.close(resolve));
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}
