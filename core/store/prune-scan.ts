// What prune reads, at a cost that stays flat per image as the store grows:
//
//   Listings: blobs/ as 16 parallel listings (one per first hex digit of the digest) and catalog/ as
//   36 (one per first character a repository name can start with), so one pass over a store of a
//   million blobs is ~1,000 LIST requests spread over 16 connections, not 1,000 in a row.
//
//   Marking: one tree walk per DISTINCT root digest, however many records (tags, history values,
//   overlapping runs) name it, and each manifest read once (ReferenceWalker, one GET, no HEAD). The
//   record key says the digest and the storage format (layout.ts), so an oci tag record is marked
//   without reading it at all: the key is the truth and the manifest bytes say what it references.
//   A record's body is read only where the key cannot answer: a docker-archive key (stored outside
//   blobs/ unless the same digest is also stored as oci), or an oci key whose manifest is missing (a
//   record written before formats were in keys may be a docker-archive one).
//
// References are never taken from a catalog record's body: whoever can write catalog/ could then
// name fewer blobs than the manifest needs and make prune delete live data, and checking such a
// list against the manifest costs the same read as walking the manifest.
import { mapLimited } from '../limiter.ts';
import { BLOBS_PREFIX, blobKey, CATALOG_PREFIX, isArchiveRecord, parseCatalogKey, type CatalogKey } from './layout.ts';
import type { ObjectInfo, ObjectStore } from './object-store.ts';
import { readRecordJson } from './record.ts';
import type { ReferenceWalker, TreeProblem } from './references.ts';

const HEX = /^[a-f0-9]{64}$/;
const HEX_DIGITS = '0123456789abcdef';
/** Characters a repository name can start with (schema/names.ts), in ascending order. */
const NAME_STARTS = '0123456789abcdefghijklmnopqrstuvwxyz';

export interface BlobInfo {
  key: string;
  digest: string;
  size: number;
  lastModified: Date;
}

export interface PruneProblem extends TreeProblem {
  /** The catalog record whose image cannot be walked. */
  record: string;
}

export const digestOfBlobKey = (key: string): string | undefined => {
  const hex = key.slice(BLOBS_PREFIX.length);
  return key.startsWith(BLOBS_PREFIX) && HEX.test(hex) ? `sha256:${hex}` : undefined;
};

/** Every object under `prefix`, listed as one parallel listing per next character, in key order. */
async function listSharded<T>(
  objects: ObjectStore,
  prefix: string,
  alphabet: string,
  pick: (object: ObjectInfo) => T | undefined,
): Promise<T[]> {
  const shards = await mapLimited([...alphabet], alphabet.length, async (c) => {
    const found: T[] = [];
    for await (const object of objects.list(`${prefix}${c}`)) {
      const picked = pick(object);
      if (picked !== undefined) found.push(picked);
    }
    return found;
  });
  return shards.flat();
}

/** Every content blob (blobs/sha256/<hex>) with its size and time. */
export const listBlobs = (objects: ObjectStore): Promise<BlobInfo[]> =>
  listSharded(objects, BLOBS_PREFIX, HEX_DIGITS, (o) => {
    const digest = digestOfBlobKey(o.key);
    return digest ? { key: o.key, digest, size: o.size, lastModified: o.lastModified } : undefined;
  });

/** Every image record of the catalog (tag and untagged), parsed from its key. */
export const listRecords = (objects: ObjectStore): Promise<CatalogKey[]> =>
  listSharded(objects, CATALOG_PREFIX, NAME_STARTS, (o) => parseCatalogKey(o.key));

/** A record body that stores its image somewhere other than blobs/ (a format this walk cannot follow). */
function storedOutsideBlobs(raw: unknown): boolean {
  const r = raw as { archive?: unknown; format?: unknown } | null;
  return r !== null && typeof r === 'object' && (r.archive !== undefined || (typeof r.format === 'string' && r.format !== 'oci'));
}

/** The marked set: every digest some remaining record, or a fresh manifest, needs. */
export class Marker {
  readonly marked = new Set<string>();

  constructor(
    private readonly objects: ObjectStore,
    private readonly walker: ReferenceWalker,
    private readonly concurrency: number,
  ) {}

  /**
   * Marks what these records' images reference (one walk per distinct root digest). Returns, per
   * record key, the digests its image needs (for the conflict check) and the records whose image
   * cannot be walked.
   */
  async markRecords(records: readonly CatalogKey[]): Promise<{ refsOf: Map<string, string[]>; problems: PruneProblem[] }> {
    const byDigest = new Map<string, CatalogKey[]>();
    for (const k of records) {
      const keys = byDigest.get(k.digest);
      if (keys) keys.push(k);
      else byDigest.set(k.digest, [k]);
    }
    const refsOf = new Map<string, string[]>();
    const problems: PruneProblem[] = [];
    await mapLimited([...byDigest], this.concurrency, async ([digest, keys]) => {
      const archiveOnly = keys.every((k) => k.kind === 'tag' && isArchiveRecord(k));
      // A docker-archive value keeps its tar, not blobs; unless this digest is also stored as oci.
      if (archiveOnly && !(await this.objects.head(blobKey(digest)))) {
        for (const k of keys) refsOf.set(k.key, []);
        return;
      }
      const tree = await this.walker.tree({ digest });
      for (const d of tree.refs.keys()) this.marked.add(d);
      let rootProblems = tree.problems;
      if (tree.problems.some((p) => p.digest === digest && p.problem === 'missing') && (await this.allStoredOutsideBlobs(keys))) {
        rootProblems = []; // records written before the format was in the key: their tar is the image
      }
      for (const k of keys) {
        refsOf.set(k.key, [...tree.refs.keys()]);
        problems.push(...rootProblems.map((p) => ({ ...p, record: k.key })));
      }
    });
    return { refsOf, problems };
  }

  /** Marks fresh blobs that are manifests (images a running backup stored but has not recorded yet); returns each one's references. */
  async markFresh(digests: readonly string[]): Promise<Map<string, string[]>> {
    const refsOf = new Map<string, string[]>();
    await mapLimited(digests, this.concurrency, async (digest) => {
      const tree = await this.walker.tree({ digest });
      if (tree.refs.size === 0) return; // not a manifest (a layer or config), or gone
      for (const d of tree.refs.keys()) this.marked.add(d);
      refsOf.set(digest, [...tree.refs.keys()]);
    });
    return refsOf;
  }

  /** Marks what a manifest that stays (locked, or its delete failed) references. */
  async markKept(digest: string): Promise<void> {
    for (const ref of (await this.walker.tree({ digest })).refs.keys()) this.marked.add(ref);
  }

  private async allStoredOutsideBlobs(keys: readonly CatalogKey[]): Promise<boolean> {
    const answers = await mapLimited(keys, this.concurrency, async (k) => {
      try {
        return storedOutsideBlobs(await readRecordJson(this.objects, k.key));
      } catch {
        return false; // unreadable: its key names an image that is not there, a problem
      }
    });
    return answers.every(Boolean);
  }
}
