// A repository's catalog index, from ONE listing of `catalog/<repository>/` and no object reads.
//
// Record keys carry the tag, the time, the manifest digest and the storage format (layout.ts), and
// tombstones carry the time a tag was seen deleted at the source, so the key listing alone answers
// "what is already backed up, and what was deleted" for every tag of a repository: about one LIST
// request per 1,000 keys, whatever the number of tags.
//
// Consistency: every entry is its own immutable object, created with a create-if-absent put and
// never rewritten, and S3 LIST is strongly consistent (read-after-write, including overlapping
// writers). Two runs that overlap can therefore never lose each other's entries: there is no shared
// object to read-modify-write, so no conditional update is needed and none can be lost. What
// overlapping runs CAN do is both record the same value of a tag at two times; `tagStates` reads
// consecutive records of the same digest and format as one value (the earliest one), so a
// duplicate changes neither the current value nor any point-in-time answer.
import {
  CATALOG_PREFIX,
  isArchiveRecord,
  parseCatalogKey,
  parseCompactTime,
  parseSettingsCheckedKey,
  parseSettingsKey,
  parseTombstoneKey,
  tagPrefix,
  type CatalogKey,
} from './layout.ts';
import type { ObjectStore } from './object-store.ts';
import { isFutureTime } from './record.ts';

export type TagRecordKey = Extract<CatalogKey, { kind: 'tag' }>;
type DigestRecordKey = Extract<CatalogKey, { kind: 'digest' }>;

/** One entry of a tag's history: a value (record) or a deletion at the source (tombstone). */
export type TagEntry = { kind: 'value'; record: TagRecordKey } | { kind: 'deleted'; key: string; time: string };

export interface CatalogIndex {
  repository: string;
  /** Each tag's entries, oldest first, with consecutive duplicate values read as one. */
  tags: Map<string, TagEntry[]>;
  /** Untagged images (digest records). */
  digests: DigestRecordKey[];
  /** Settings record keys, oldest first. */
  settings: { key: string; time: string }[];
  /** Full settings reads (layout.ts `checked_<time>_<hash>.json`). */
  settingsChecked: { describedHash: string; at: Date }[];
  /**
   * Tag records and tombstones dated beyond the allowed clock skew (record.ts): left out of `tags`,
   * because one dated 9999 would pin the tag and hide every later backup.
   */
  future: { key: string; tag: string }[];
}

/** Lists `catalog/<repository>/` once and parses it (keys of nested repositories are skipped). */
export function readCatalogIndex(objects: ObjectStore, repository: string): Promise<CatalogIndex> {
  return collect(objects, `${CATALOG_PREFIX}${repository}/`, repository);
}

/** One tag's entries (oldest first), from one listing of its folder. */
export async function readTagEntries(objects: ObjectStore, repository: string, tag: string): Promise<TagEntry[]> {
  return (await collect(objects, tagPrefix(repository, tag), repository)).tags.get(tag) ?? [];
}

async function collect(objects: ObjectStore, prefix: string, repository: string): Promise<CatalogIndex> {
  const byTag = new Map<string, { key: string; time: string; entry: TagEntry }[]>();
  const digests: DigestRecordKey[] = [];
  const settings: { key: string; time: string }[] = [];
  const settingsChecked: { describedHash: string; at: Date }[] = [];
  const future: { key: string; tag: string }[] = [];
  const now = new Date();
  const add = (tag: string, key: string, time: string, entry: TagEntry) => {
    if (isFutureTime(parseCompactTime(time), now)) {
      future.push({ key, tag });
      return;
    }
    const list = byTag.get(tag) ?? [];
    list.push({ key, time, entry });
    byTag.set(tag, list);
  };
  for await (const object of objects.list(prefix)) {
    const parsed = parseCatalogKey(object.key);
    if (parsed) {
      if (parsed.repository !== repository) continue;
      if (parsed.kind === 'digest') digests.push(parsed);
      else add(parsed.tag, parsed.key, parsed.time, { kind: 'value', record: parsed });
      continue;
    }
    const tombstone = parseTombstoneKey(object.key);
    if (tombstone?.repository === repository) {
      add(tombstone.tag, tombstone.key, tombstone.time, { kind: 'deleted', key: tombstone.key, time: tombstone.time });
      continue;
    }
    const setting = parseSettingsKey(object.key, repository);
    if (setting) settings.push({ key: setting.key, time: setting.time });
    const checked = parseSettingsCheckedKey(object.key, repository);
    if (checked) settingsChecked.push({ describedHash: checked.describedHash, at: parseCompactTime(checked.time) });
  }
  const tags = new Map<string, TagEntry[]>();
  for (const [tag, list] of byTag) {
    // Keys of one tag sort by their time prefix; the listing's order is the same, but a directory
    // backend need not promise it for every file system.
    list.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.key < b.key ? -1 : 1));
    const entries: TagEntry[] = [];
    for (const { entry } of list) {
      const previous = entries.at(-1);
      if (previous && sameEntry(previous, entry)) continue;
      entries.push(entry);
    }
    tags.set(tag, entries);
  }
  settings.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { repository, tags, digests, settings, settingsChecked, future };
}

function sameEntry(a: TagEntry, b: TagEntry): boolean {
  if (a.kind === 'deleted' || b.kind === 'deleted') return a.kind === b.kind;
  // A docker-archive record of the same source digest can still name another tar (new platform,
  // label or compression): each one is a value of its own, the newest the current one.
  if (isArchiveRecord(a.record) || isArchiveRecord(b.record)) return false;
  return a.record.digest === b.record.digest && a.record.format === b.record.format;
}

const entryTime = (entry: TagEntry): string => (entry.kind === 'value' ? entry.record.time : entry.time);

/** The tag's latest entry at `asOf` (every entry when undefined), or undefined when it had none yet. */
function entryAt(entries: readonly TagEntry[], asOf?: Date): TagEntry | undefined {
  if (asOf === undefined) return entries.at(-1);
  const limit = asOf.getTime();
  for (let i = entries.length - 1; i >= 0; i--) {
    if (parseCompactTime(entryTime(entries[i]!)).getTime() <= limit) return entries[i];
  }
  return undefined;
}

/** The tag's current record at `asOf`: undefined when it had no value yet or was deleted at the source. */
export function currentRecord(entries: readonly TagEntry[], asOf?: Date): TagRecordKey | undefined {
  const entry = entryAt(entries, asOf);
  return entry?.kind === 'value' ? entry.record : undefined;
}

/** The earliest time after the tag's latest entry: a tag's history stays strictly ordered when the clock stands still or steps back. */
export function timeAfter(entries: readonly TagEntry[], now: Date): Date {
  const latest = entries.at(-1);
  if (!latest) return now;
  const after = parseCompactTime(entryTime(latest)).getTime() + 1;
  return now.getTime() < after ? new Date(after) : now;
}
