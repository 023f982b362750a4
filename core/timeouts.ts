// The read deadline shared by the registry client and the S3 store: the longest silence while a
// response (headers or body) is awaited before the read is abandoned, then retried or resumed from
// the byte it reached. A silence, not a total: a big blob that keeps flowing never times out.
import { ENV } from '../schema/environment.ts';

export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** ECR_BACKUP_IDLE_TIMEOUT_MS when set (a whole number of ms, at least 100), else 60 s. */
export function idleTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[ENV.IDLE_TIMEOUT_MS];
  if (raw === undefined || raw.trim() === '') return DEFAULT_IDLE_TIMEOUT_MS;
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms) || ms < 100)
    throw new RangeError(`${ENV.IDLE_TIMEOUT_MS} must be a whole number of milliseconds (at least 100), got ${JSON.stringify(raw)}`);
  return ms;
}
