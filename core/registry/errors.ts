// Structured errors of the registry client. The CLI and the engine decide what to print and whether
// to retry from the class and fields, never by matching message text. Messages name the registry and
// the repository:reference and carry the registry's own error code, but never credentials, tokens or
// presigned URLs (whose query strings are credentials too).

export interface RegistryErrorDetails {
  /** HTTP status, when the registry answered. */
  status?: number;
  /** The first OCI error code from the body (`MANIFEST_UNKNOWN`, `DENIED`, ...), or a network error code. */
  code?: string;
  /** Transient: 429, 5xx, connection reset, timeout. `withRetry` retries only these. */
  retryable?: boolean;
  /** What the registry asked for in Retry-After. */
  retryAfterMs?: number;
  cause?: unknown;
}

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status?: number;
  readonly code?: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(message: string, details: RegistryErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.code = details.code;
    this.retryable = details.retryable ?? false;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The repository, tag, manifest or blob does not exist (404, NAME_UNKNOWN, MANIFEST_UNKNOWN, ...). */
export class RegistryNotFoundError extends RegistryError {
  override name = 'RegistryNotFoundError';
}

/** Credentials missing, wrong or insufficient (401/403, token server refusal). */
export class RegistryAuthError extends RegistryError {
  override name = 'RegistryAuthError';
}

/** The endpoint configuration is refused before any request: bad URL, plain http to a remote host. */
export class RegistryConfigError extends Error {
  override name = 'RegistryConfigError';
}
