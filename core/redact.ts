// The one redaction function. Every error text that can reach an output (CLI text and --json, run
// reports, logs, SNS, an execution's failure cause) passes through `redact`, including the stderr of
// child processes: a registry, skopeo or an SDK may echo a presigned URL (its X-Amz-* query string
// is a credential), an Authorization header, a token or a password, and none of it may be printed.
// Replacements never contain `"`, `\` or whitespace changes, so redacting serialised JSON keeps it valid.
const REDACTED = '[REDACTED]';

const RULES: [RegExp, string][] = [
  // Presigned URL and SigV4 parameters, in a query string or a header: X-Amz-Signature=..., Signature=...
  [
    /((?:X-Amz-(?:Security-Token|Signature|Credential)|Signature|AWSAccessKeyId|access_token|refresh_token|client_secret|sig)["']?\s*[:=]\s*["']?)[^&\s"'<>\\,;]+/gi,
    `$1${REDACTED}`,
  ],
  // Authorization: Basic ... / Bearer ... / AWS4-HMAC-SHA256 ... (header text, or a JSON field)
  [/(authorization["']?\s*[:=]\s*["']?)(?:(?:basic|bearer|aws4-hmac-sha256)\s+)?[^\s"'\\,;]+/gi, `$1${REDACTED}`],
  [/\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]{8,}/g, `$1 ${REDACTED}`],
  // Credentials embedded in a URL: scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'\\]+@/gi, `$1${REDACTED}@`],
  // password=..., "token": "...", auth: ..., secret=... (config dumps, docker auth files, form bodies)
  [/(\b(?:password|passwd|secret|token|identitytoken|registrytoken)["']?\s*[:=]\s*["']?)[^\s"'\\,;&}]+/gi, `$1${REDACTED}`],
  [/("auth"\s*:\s*")[^"]+/gi, `$1${REDACTED}`],
  // Bare JWTs (registry bearer tokens) and AWS access key ids.
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, REDACTED],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, REDACTED],
];

/** The text with every credential-shaped value replaced by `[REDACTED]`. */
export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement);
  return out;
}

/** An error's message (or the value as text), redacted: what every output prints for a failure. */
export function errorText(error: unknown): string {
  return redact(error instanceof Error ? error.message : String(error));
}

/**
 * Wraps a Lambda handler so that an error it throws (an execution's failure cause) is redacted: the
 * same error, with its message and stack passed through `redact`.
 */
export function redactingErrors<A extends unknown[], R>(handler: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await handler(...args);
    } catch (error) {
      if (error instanceof Error) {
        error.message = redact(error.message);
        if (error.stack) error.stack = redact(error.stack);
        throw error;
      }
      throw new Error(errorText(error));
    }
  };
}
