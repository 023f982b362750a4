// Registry authentication as the distribution spec and the docker token spec describe it. The
// registry says how it wants to be addressed in `WWW-Authenticate` (on the /v2/ ping or on any 401):
// nothing (anonymous), `Basic`, or `Bearer realm=..,service=..,scope=..` (fetch a token from the
// realm, with Basic credentials when we have them). Tokens are cached per scope set until shortly
// before they expire; a 401 drops the cached token and fetches a new one once.
import type { CredentialsProvider, Credentials } from './credentials.ts';
import { RegistryAuthError, RegistryError } from './errors.ts';
import { assertTransport, errorFromResponse, readBody, type HttpClient } from './http.ts';

export interface Challenge {
  /** Lower-case: `basic`, `bearer`. */
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header into its challenges (there may be several, comma-separated). */
function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const token = /\s*,?\s*([A-Za-z][\w.-]*)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?/y;
  while (token.lastIndex < header.length) {
    const match = token.exec(header);
    if (!match) break;
    const [, name, value] = match;
    if (value === undefined) challenges.push({ scheme: name!.toLowerCase(), params: {} });
    else if (challenges.length)
      challenges.at(-1)!.params[name!.toLowerCase()] = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
  }
  return challenges;
}

/** Bearer when offered (it is what the registry prefers to be asked with), else Basic. */
function pick(header: string | undefined): Challenge | undefined {
  const challenges = header ? parseChallenges(header) : [];
  return challenges.find((c) => c.scheme === 'bearer' && c.params.realm) ?? challenges.find((c) => c.scheme === 'basic');
}

interface Token {
  token: string;
  expiresAt: number;
}

export class Authenticator {
  private challenge?: Challenge;
  private readonly tokens = new Map<string, Promise<Token>>();
  /** Scopes a 401 challenge asked for beyond ours (e.g. the source repository of a mount). */
  private readonly extraScopes = new Map<string, string[]>();

  constructor(
    private readonly http: HttpClient,
    private readonly credentials: CredentialsProvider,
    /** The registry's description, for error messages. */
    private readonly registry: string,
    private readonly insecure: boolean,
  ) {}

  /** Records the scheme a /v2/ ping answered with (undefined header: anonymous). */
  learn(header: string | undefined): void {
    this.challenge = pick(header);
  }

  /** The Authorization header for a request needing `scopes`, or undefined to go anonymous. */
  async authorization(scopes: string[]): Promise<string | undefined> {
    if (this.challenge?.scheme === 'basic') {
      const credentials = await this.credentials.get();
      return credentials && basic(credentials);
    }
    if (this.challenge?.scheme === 'bearer') return `Bearer ${(await this.bearer(scopes)).token}`;
    return undefined;
  }

  /**
   * Called on a 401. Returns true when retrying with fresh authorization can help: a new or changed
   * challenge, or an expired token. Rejected Basic credentials are not retried.
   */
  async unauthorized(header: string | undefined, scopes: string[], sentAuthorization: boolean): Promise<boolean> {
    const challenge = pick(header);
    if (!challenge) return false;
    this.challenge = challenge;
    if (challenge.scheme === 'basic') return !sentAuthorization && (await this.credentials.get()) !== undefined;
    const key = scopes.join(' ');
    const asked = challenge.params.scope?.split(' ').filter(Boolean) ?? [];
    this.extraScopes.set(
      key,
      asked.filter((s) => !scopes.includes(s)),
    );
    this.tokens.delete(key);
    return true;
  }

  private async bearer(scopes: string[]): Promise<Token> {
    const key = scopes.join(' ');
    const cached = this.tokens.get(key);
    if (cached) {
      const token = await cached.catch(() => undefined);
      if (token && token.expiresAt > Date.now()) return token;
    }
    const fetching = this.fetchToken([...scopes, ...(this.extraScopes.get(key) ?? [])]);
    this.tokens.set(key, fetching);
    fetching.catch(() => this.tokens.get(key) === fetching && this.tokens.delete(key));
    return fetching;
  }

  private async fetchToken(scopes: string[]): Promise<Token> {
    const { realm, service } = this.challenge!.params;
    const context = `${this.registry}: token for ${scopes.join(' ') || 'registry access'}`;
    let url: URL;
    try {
      url = new URL(realm!);
    } catch {
      throw new RegistryAuthError(`${this.registry}: the registry's token realm is not a URL`);
    }
    assertTransport(url, this.insecure, `${this.registry}: token realm`);
    if (service) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const credentials = await this.credentials.get();
    const headers: Record<string, string> = credentials ? { authorization: basic(credentials) } : {};
    // One attempt: this runs inside the attempt of the request that needs the token, which is retried.
    const res = await this.http.send({ method: 'GET', url, headers }, context);
    if (res.statusCode !== 200) throw await errorFromResponse(res, context);
    const body = await readBody(res, 1024 * 1024, context, this.http.options.smallBodyDeadlineMs);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw new RegistryError(`${context}: token server answered with something other than JSON`);
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== 'string' || !token) throw new RegistryAuthError(`${context}: token server returned no token`);
    // The spec's default lifetime is 60 s; renew a little early so a token never expires in flight.
    const lifetimeMs = (typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60) * 1000;
    const issued = typeof parsed.issued_at === 'string' ? Date.parse(parsed.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    return { token, expiresAt: start + lifetimeMs - Math.min(30_000, lifetimeMs / 2) };
  }
}

function basic({ username, password }: Credentials): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}
