// Repository settings as the core model sees them: what preparing a restore target did, and how two
// recordings compare. Reading and applying them is the ECR endpoint's job (core/registry/).
import type { RepositorySettings } from '../../schema/repository-settings.ts';

/** What preparing a restore target repository did. */
export interface RepositoryPreparation {
  /** `created`: the repository was missing and was created; `exists`: it was there and was left unchanged. */
  action: 'created' | 'exists';
  /** `created`: the repository got the recorded settings (false: none were recorded). */
  settingsApplied?: boolean;
  /** `exists`: how the repository differs from the recorded settings, one line each. */
  differences?: string[];
  /** Recorded settings deliberately not applied (`--skip-policies`). */
  skipped?: string[];
  /** Settings that could not be applied or compared, with the cause. */
  problems?: string[];
}

export interface ApplyOptions {
  /** Leave the lifecycle policy and the repository policy out (create), and out of the comparison (exists). */
  skipPolicies?: boolean;
}

/**
 * How an existing repository's settings differ from the recorded ones, one human-readable line each
 * (empty when they agree). Policies are compared as JSON, tags as a map. `ignorePolicies` leaves the
 * lifecycle and repository policies out. A recorded KMS key is compared only when both name one.
 */
export function diffRepositorySettings(
  existing: RepositorySettings,
  recorded: RepositorySettings,
  options: { ignorePolicies?: boolean } = {},
): string[] {
  const differences: string[] = [];
  if (existing.imageTagMutability !== recorded.imageTagMutability) {
    differences.push(`tag mutability: backup ${recorded.imageTagMutability}, repository ${existing.imageTagMutability}`);
  }
  if (describeExclusions(existing.imageTagMutabilityExclusionFilters) !== describeExclusions(recorded.imageTagMutabilityExclusionFilters)) {
    differences.push(
      `tag mutability exclusions: backup ${describeExclusions(recorded.imageTagMutabilityExclusionFilters)}, repository ${describeExclusions(existing.imageTagMutabilityExclusionFilters)}`,
    );
  }
  if (existing.scanOnPush !== recorded.scanOnPush) {
    differences.push(`scan on push: backup ${recorded.scanOnPush ? 'on' : 'off'}, repository ${existing.scanOnPush ? 'on' : 'off'}`);
  }
  const keysDiffer = Boolean(
    existing.encryption.kmsKey && recorded.encryption.kmsKey && existing.encryption.kmsKey !== recorded.encryption.kmsKey,
  );
  if (existing.encryption.type !== recorded.encryption.type || keysDiffer) {
    differences.push(
      `encryption: backup ${describeEncryption(recorded.encryption)}, repository ${describeEncryption(existing.encryption)}`,
    );
  }
  if (!options.ignorePolicies) {
    for (const [label, mine, theirs] of [
      ['lifecycle policy', recorded.lifecyclePolicy, existing.lifecyclePolicy],
      ['repository policy', recorded.repositoryPolicy, existing.repositoryPolicy],
    ] as const) {
      if (mine === undefined && theirs === undefined) continue;
      if (mine !== undefined && theirs === undefined) differences.push(`${label}: in the backup, missing from the repository`);
      else if (mine === undefined) differences.push(`${label}: the repository has one, the backup has none`);
      else if (canonicalJson(mine) !== canonicalJson(theirs!)) differences.push(`${label}: differs from the backup`);
    }
  }
  const keys = [...new Set([...Object.keys(recorded.tags), ...Object.keys(existing.tags)])].sort();
  for (const key of keys) {
    const mine = recorded.tags[key];
    const theirs = existing.tags[key];
    if (mine === theirs) continue;
    if (theirs === undefined) differences.push(`tag ${key}: backup ${JSON.stringify(mine)}, missing from the repository`);
    else if (mine === undefined) differences.push(`tag ${key}: repository ${JSON.stringify(theirs)}, not in the backup`);
    else differences.push(`tag ${key}: backup ${JSON.stringify(mine)}, repository ${JSON.stringify(theirs)}`);
  }
  return differences;
}

/** True when two recordings say the same (what a backup compares before writing a new record). */
export function sameRepositorySettings(a: RepositorySettings, b: RepositorySettings): boolean {
  if (a.encryption.kmsKey !== b.encryption.kmsKey) return false;
  return diffRepositorySettings(a, b).length === 0;
}

function canonicalJson(text: string): string {
  try {
    return JSON.stringify(sortKeys(JSON.parse(text)));
  } catch {
    return text.trim();
  }
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

const describeEncryption = (e: RepositorySettings['encryption']) => (e.kmsKey ? `${e.type} (${e.kmsKey})` : e.type);
const describeExclusions = (filters: RepositorySettings['imageTagMutabilityExclusionFilters']) =>
  (filters ?? []).length ? (filters ?? []).map((f) => `${f.filterType}:${f.filter}`).join(', ') : 'none';
