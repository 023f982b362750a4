// The `ecrBackup` configuration as `cdk synth/deploy` sees it. `-c ecrBackup='{...}'` arrives as a
// string and, for the CDK CLI, replaces cdk.json's whole object; here it is merged over cdk.json's
// object instead, so `-c ecrBackup='{"notificationEmail":"ops@example.com"}'` changes that one
// setting and keeps the prefix, tolerance and schedule of cdk.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONTEXT_KEY, type EcrBackupContext } from './stack.ts';

/** cdk.json's `context.ecrBackup` object in `dir` ({} when there is none). */
export function cdkJsonConfig(dir: string): EcrBackupContext {
  const file = path.join(dir, 'cdk.json');
  if (!fs.existsSync(file)) return {};
  const context = (JSON.parse(fs.readFileSync(file, 'utf8')) as { context?: Record<string, unknown> }).context ?? {};
  const value = context[CONTEXT_KEY];
  return value && typeof value === 'object' ? (value as EcrBackupContext) : {};
}

/** An object is taken as is (an App built in code); a string (the `-c` flag) is merged over `base`. */
export function resolveConfig(raw: EcrBackupContext | string | undefined, base: () => EcrBackupContext): EcrBackupContext {
  if (typeof raw !== 'string') return raw ?? {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`-c ${CONTEXT_KEY}: not JSON (${(error as Error).message}); quote it: -c ${CONTEXT_KEY}='{"repositories":["team/**"]}'`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`-c ${CONTEXT_KEY}: expected a JSON object`);
  return { ...base(), ...(parsed as EcrBackupContext) };
}
