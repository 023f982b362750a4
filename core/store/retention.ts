// Which catalog records a retention rule keeps (the rules are described in prune.ts's header).
import { retentionRuleProblem, type RetentionRule } from '../../schema/retention.ts';
import { mapLimited } from '../limiter.ts';
import { recordFormat, type CatalogKey } from './layout.ts';
import { readJson, type ObjectStore } from './object-store.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

class RetentionRuleError extends RangeError {
  override name = 'RetentionRuleError';
}

export function assertRetentionRule(rule: RetentionRule): void {
  const problem = retentionRuleProblem(rule);
  if (problem) throw new RetentionRuleError(problem);
}

/** One catalog record as retention sees it. */
export interface RetentionEntry {
  key: string;
  /** `repo\0tag` for a tag's history, `repo\0` for a repository's untagged images. */
  group: string;
  untagged: boolean;
  /** Backup time in ms (tag records: from the key; untagged: the record's backedUpAt). */
  time: number;
  /** Tag records: what the tag pointed at; consecutive records with equal values are one value. */
  value?: string;
}

const byTime = (a: RetentionEntry, b: RetentionEntry) => a.time - b.time || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** Splits entries into kept and dropped by the rule (see the file comment). */
export function applyRetention<T extends RetentionEntry>(
  entries: readonly T[],
  rule: RetentionRule,
  now: Date,
): { kept: T[]; dropped: T[] } {
  assertRetentionRule(rule);
  const groups = new Map<string, T[]>();
  for (const e of entries) {
    const list = groups.get(e.group) ?? [];
    list.push(e);
    groups.set(e.group, list);
  }
  const cutoff = rule.keepDays !== undefined ? now.getTime() - rule.keepDays * DAY_MS : undefined;
  const kept: T[] = [];
  const dropped: T[] = [];
  for (const list of groups.values()) {
    list.sort(byTime);
    // Untagged images are one value each; a tag's repeated records fold into the first of their run.
    const values: T[] = [];
    for (const e of list) {
      const previous = values.at(-1);
      if (!e.untagged && previous && e.value !== undefined && e.value === previous.value) dropped.push(e);
      else values.push(e);
    }
    const keep = new Set<T>();
    if (rule.keepLast !== undefined) for (const e of values.slice(-rule.keepLast)) keep.add(e);
    if (cutoff !== undefined) {
      for (const e of values) if (e.time > cutoff) keep.add(e);
      if (!values[0]!.untagged) {
        const atCutoff = values.filter((e) => e.time <= cutoff).at(-1);
        if (atCutoff) keep.add(atCutoff);
      }
    }
    for (const e of values) (keep.has(e) ? kept : dropped).push(e);
  }
  return { kept, dropped };
}

/**
 * A tag record's value is its digest, plus its format where the tag's previous or next record has the
 * same digest (only those records are read: a docker-archive record of an OCI-stored digest is a
 * value of its own). A record that cannot be read stays a value of its own.
 */
export async function assignTagValues(
  objects: ObjectStore,
  entries: (RetentionEntry & { parsed: CatalogKey })[],
  concurrency: number,
): Promise<void> {
  const byTag = new Map<string, (RetentionEntry & { parsed: CatalogKey })[]>();
  for (const e of entries) {
    if (e.parsed.kind !== 'tag') continue;
    e.value = e.parsed.digest;
    byTag.set(e.group, [...(byTag.get(e.group) ?? []), e]);
  }
  const repeated = new Set<RetentionEntry & { parsed: CatalogKey }>();
  for (const list of byTag.values()) {
    list.sort(byTime);
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.value === list[i - 1]!.value) repeated.add(list[i]!).add(list[i - 1]!);
    }
  }
  await mapLimited([...repeated], concurrency, async (e) => {
    try {
      e.value = `${e.parsed.digest} ${recordFormat(await readJson<{ format?: 'oci' | 'docker-archive' }>(objects, e.key))}`;
    } catch {
      e.value = undefined;
    }
  });
}
